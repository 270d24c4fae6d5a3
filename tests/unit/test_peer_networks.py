"""Allow-lists of peer addresses, shared by SIP, AudioSocket and Exotel."""

from __future__ import annotations

import pytest

from telephony_bridge.carriers.exotel_carrier import ExotelCarrier
from telephony_bridge.carriers.peer_networks import parse_networks, peer_address, peer_in


def test_a_peer_matches_however_the_socket_writes_its_address() -> None:
    lan = parse_networks("10.0.0.0/8, 192.0.2.7, fe80::/10", "X_ALLOW")
    assert peer_in(lan, "10.1.2.3") and peer_in(lan, "192.0.2.7")
    assert peer_in(lan, "::ffff:10.1.2.3")  # a dual-stack listener's view of an IPv4 peer
    assert peer_in(lan, "fe80::1%eth0")  # a link-local peer with its zone
    assert not peer_in(lan, "192.0.2.8") and not peer_in(lan, "11.0.0.1")
    assert not peer_in(lan, None) and not peer_in(lan, "") and not peer_in(lan, "not-an-address")
    assert peer_address("::ffff:127.0.0.1") is not None and peer_address("::ffff:127.0.0.1").is_loopback  # type: ignore[union-attr]


def test_a_bad_entry_names_the_setting_and_the_entry() -> None:
    assert parse_networks("", "X_ALLOW") == () and parse_networks(None, "X_ALLOW") == ()
    with pytest.raises(ValueError, match=r"X_ALLOW: '10\.0\.0\.0/33' is not an address or CIDR"):
        parse_networks("10.0.0.0/8, 10.0.0.0/33", "X_ALLOW")


def test_exotel_admits_an_ipv4_peer_seen_through_a_dual_stack_socket() -> None:
    carrier = ExotelCarrier({"EXOTEL_ALLOW": "203.0.113.0/24"})
    assert carrier._client_allowed("::ffff:203.0.113.9")  # refused before the lists were shared
    assert not carrier._client_allowed("::ffff:198.51.100.1")
    with pytest.raises(ValueError, match="EXOTEL_ALLOW"):
        ExotelCarrier({"EXOTEL_ALLOW": "nonsense"})
