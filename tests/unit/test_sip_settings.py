"""SIP configuration: `serve --sip` and the SIP_* settings are checked at start-up, naming the bad
one and never a password; the carrier's admission rules read from them."""

from __future__ import annotations

import pytest

from telephony_bridge.carriers.registry import CARRIERS
from telephony_bridge.carriers.sip.carrier import SipCarrier, parse_sip_listen
from telephony_bridge.cli import main
from telephony_bridge.server.settings import Settings

pytestmark = pytest.mark.usefixtures("cli_logging_untouched")


def test_listener_specs() -> None:
    assert str(parse_sip_listen("udp:0.0.0.0:5060")) == "udp:0.0.0.0:5060"
    assert parse_sip_listen("TCP:[::1]:5070").host == "::1"
    for bad in ("0.0.0.0:5060", "tls:1.2.3.4:5061", "udp:host", "udp::5060", "udp:h:99999", "udp:h:5²"):
        with pytest.raises(ValueError, match="SIP_LISTEN"):
            parse_sip_listen(bad)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SIP_LISTEN": "udp:127.0.0.1"}, "SIP_LISTEN"),
        ({"SIP_LISTEN": "udp:127.0.0.1:5060", "SIP_ALLOW": "10.0.0.0/33"}, "SIP_ALLOW"),
        ({"SIP_LISTEN": "udp:127.0.0.1:5060", "SIP_USERS": "alice:pw,bob"}, "SIP_USERS"),
        ({"SIP_LISTEN": "udp:127.0.0.1:5060", "RTP_PORTS": "30000"}, "RTP_PORTS"),
        ({"SIP_LISTEN": "udp:127.0.0.1:5060", "SIP_DIGEST_ALGORITHMS": "SHA-1"}, "SIP_DIGEST_ALGORITHMS"),
        ({"SIP_LISTEN": "udp:127.0.0.1:5060", "SIP_INVITE_RATE": "-1"}, "SIP_INVITE_RATE"),
        ({"SIP_LISTEN": "udp:127.0.0.1:5060", "SIP_OUTBOUND": "http://alice:pw@trunk"}, "SIP_OUTBOUND"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named) as refused:
        Settings.from_environ(environ)
    assert "pw" not in str(refused.value)


def test_serve_refuses_a_bad_sip_listener_before_binding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--sip", "sctp:127.0.0.1:5060"]) == 2
    assert "SIP_LISTEN" in capsys.readouterr().err
    assert main(["serve", "--sip", "udp:127.0.0.1:0", "--workers", "2"]) == 2
    assert "--sip works with one worker only" in capsys.readouterr().err


def test_admission_rules_and_capabilities() -> None:
    assert SipCarrier in CARRIERS and SipCarrier.prefixes == ()
    carrier = SipCarrier({"SIP_ALLOW": "198.51.100.0/28, 2001:db8::/32", "SIP_USERS": "alice:pw"})
    assert carrier.secured and carrier.users == {"alice": "pw"}
    assert carrier.allows("198.51.100.7") and carrier.allows("::ffff:198.51.100.7") and carrier.allows("2001:db8::1")
    assert not carrier.allows("198.51.100.16") and not carrier.allows("not an address") and not carrier.allows(None)
    assert not SipCarrier({}).secured  # nothing configured: nothing accepted
    capabilities = SipCarrier.capabilities
    assert capabilities.dtmf_out and capabilities.hangup and capabilities.transfer and capabilities.dial
