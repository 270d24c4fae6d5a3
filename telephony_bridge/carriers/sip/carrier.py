"""SIP trunks as a carrier in the seam: configuration, admission rules, capabilities.

- Answer: no webhook. A trunk sends INVITE to the bridge's SIP listener (server/sip_listener.py),
  which admits it by source address (``SIP_ALLOW``, CIDRs) or digest credentials (``SIP_USERS``,
  ``user:password`` pairs; RFC 8760 SHA-256 and MD5). Neither configured: nothing is accepted,
  and the server says so at start-up. The dialed number (Request-URI user, else To) goes through
  routes.toml like any other; From's user is the caller; ``X-*`` headers are the custom data.
- Binding: the INVITE's transaction is the call; the scenario is routed by the listener from the
  admitted INVITE, never read from the media.
- Playout: G.711 at 8 kHz (PCMU or PCMA, whichever the offer prefers). The RTP stream
  (server/sip_media.py) paces the packets itself and echoes each mark when its audio has played by
  its clock: sent + RTT/2 (RTCP) + ``SIP_JITTER_ALLOWANCE_MS``; a clear drops its queue.
- Control: answer (200 OK), hang-up (BYE, or a final error before the answer), blind transfer
  (REFER) and DTMF out (RFC 4733) — all on the call's own dialog (`call_control`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from telephony_bridge.carriers import peer_networks
from telephony_bridge.carriers.base import (
    CallControl,
    ListenerCarrier,
)
from telephony_bridge.carriers.peer_networks import IpNetwork, peer_in
from telephony_bridge.carriers.sip.codec import SIP_CAPABILITIES, SipCodec
from telephony_bridge.carriers.sip.fields import SipUri, parse_uri
from telephony_bridge.carriers.sip.message import SipParseError

__all__ = [
    "ALLOW_ENV",
    "DIGEST_ENV",
    "INVITE_RATE_ENV",
    "LISTEN_ENV",
    "OUTBOUND_ENV",
    "PUBLIC_ADDRESS_ENV",
    "USERS_ENV",
    "SipCarrier",
    "SipListenerSpec",
    "parse_digest_algorithms",
    "parse_invite_rate",
    "parse_networks",
    "parse_outbound",
    "parse_sip_listen",
    "parse_users",
]

LISTEN_ENV: Final = "SIP_LISTEN"
ALLOW_ENV: Final = "SIP_ALLOW"
USERS_ENV: Final = "SIP_USERS"
PUBLIC_ADDRESS_ENV: Final = "SIP_PUBLIC_ADDRESS"
OUTBOUND_ENV: Final = "SIP_OUTBOUND"
# The digest algorithms offered, most preferred first (RFC 8760: SHA-256, then MD5 for old peers).
# Some UACs answer only the first challenge they see (SIPp does, and can only do MD5): "MD5" for them.
DIGEST_ENV: Final = "SIP_DIGEST_ALGORITHMS"
# INVITEs a second one source address may send (a burst of three seconds' worth is allowed): a
# trunk places a few calls a second at peak; a flood is hundreds.
INVITE_RATE_ENV: Final = "SIP_INVITE_RATE"
DEFAULT_INVITE_RATE: Final = 10.0


@dataclass(frozen=True, slots=True)
class SipListenerSpec:
    """`udp:HOST:PORT` or `tcp:HOST:PORT` (`udp:[::1]:5060` for IPv6)."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def parse_sip_listen(spec: str) -> SipListenerSpec:
    transport, sep, address = spec.strip().partition(":")
    host, colon, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if (
        not sep
        or transport.lower() not in ("udp", "tcp")
        or not colon
        or not host
        or not (port_text.isascii() and port_text.isdigit())
        or int(port_text) > 65535
    ):
        raise ValueError(f"{LISTEN_ENV}: {spec!r} is not udp:HOST:PORT or tcp:HOST:PORT")
    return SipListenerSpec(transport.lower(), host, int(port_text))


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """SIP_ALLOW's networks (carriers/peer_networks.py)."""
    return peer_networks.parse_networks(text, ALLOW_ENV)


def parse_users(text: str) -> dict[str, str]:
    """`alice:pw1,bob:pw2`; the error names the entry's position, never its password."""
    users: dict[str, str] = {}
    for index, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        user, colon, password = item.partition(":")
        if not colon or not user.strip() or not password:
            raise ValueError(f"{USERS_ENV}: entry {index + 1} is not user:password")
        users[user.strip()] = password
    return users


def parse_outbound(text: str) -> tuple[SipUri, str] | None:
    """``SIP_OUTBOUND`` (``sip:USER:PASSWORD@HOST[:PORT]``): the trunk URI and the password, or None
    when unset; ValueError naming the setting, never its password."""
    text = text.strip()
    if not text:
        return None
    try:
        uri = parse_uri(text)
    except SipParseError:
        raise ValueError(f"{OUTBOUND_ENV} is not a sip:USER:PASSWORD@HOST[:PORT] URI") from None
    if uri.scheme == "tel" or not uri.user:
        raise ValueError(f"{OUTBOUND_ENV} names no user: sip:USER:PASSWORD@HOST[:PORT]")
    userinfo = text.split(":", 1)[1].rsplit("@", 1)[0]
    return uri, userinfo.split(":", 1)[1] if ":" in userinfo else ""


def parse_invite_rate(text: str) -> float:
    if not text.strip():
        return DEFAULT_INVITE_RATE
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 100_000:
        raise ValueError(f"{INVITE_RATE_ENV}: {text!r} is not a number of INVITEs a second")
    return rate


def parse_digest_algorithms(text: str) -> tuple[str, ...]:
    names = tuple(item.strip().upper() for item in text.split(",") if item.strip())
    if not names:
        return ("SHA-256", "MD5")
    if not set(names) <= {"SHA-256", "MD5"}:
        raise ValueError(f"{DIGEST_ENV}: {text!r}: SHA-256 and/or MD5")
    return names


class SipCarrier(ListenerCarrier):
    """The registry's instance names the carrier; the listener makes one per call, holding the
    call's control (its dialog) and the media side's codec factory."""

    name = "sip"
    how_calls_come = "the SIP listener (server/sip_listener.py), which admits INVITEs itself"
    signature_header = f"source address ({ALLOW_ENV}) or digest ({USERS_ENV})"
    secret_names = (ALLOW_ENV, USERS_ENV)
    # The media side's (carriers/sip/codec.py: the RTP stream echoes marks by its clock and clears
    # its queue), with the control the call's dialog gives.
    capabilities = replace(SIP_CAPABILITIES, hangup=True, transfer=True, dial=True)

    def __init__(self, config: Mapping[str, str], control: CallControl | None = None) -> None:
        super().__init__(config)
        self.allow = parse_networks(config.get(ALLOW_ENV, ""))
        self.users = parse_users(config.get(USERS_ENV, ""))
        self.digest_algorithms = parse_digest_algorithms(config.get(DIGEST_ENV, ""))
        self.invite_rate = parse_invite_rate(config.get(INVITE_RATE_ENV, ""))
        self._control = control

    @property
    def secured(self) -> bool:
        return bool(self.allow or self.users)

    def allows(self, host: str | None) -> bool:
        return peer_in(self.allow, host)

    def new_codec(self) -> SipCodec:
        return SipCodec()

    def call_control(self) -> CallControl | None:
        return self._control
