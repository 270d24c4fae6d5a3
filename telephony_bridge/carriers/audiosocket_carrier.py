"""Asterisk AudioSocket as a carrier in the seam: no answer request, an allow-list, a clock.

- Answer: there is none. Asterisk's dialplan runs `AudioSocket(uuid,host:port)` and the bridge's
  TCP listener (server/audiosocket.py) gets a connection whose first frame names the call. So the
  call is admitted by where it comes from (``AUDIOSOCKET_ALLOW``, CIDRs; unset: loopback only),
  and routed by the listener it arrived on: each listener may carry a dialed number
  (``--audiosocket HOST:PORT=+15550100``) that goes through routes.toml like any other.
- Binding: the single-use stream token of the HTTP carriers (server/stream_tokens.py) binds a
  stream to the answer request that routed it. AudioSocket has no answer request to mint a token
  and no field to carry one back; the connection itself is the call, admitted by the allow-list —
  that is the binding, and the scenario is never read from the stream.
- Playout: L16 8 kHz, no marks, no clear. Asterisk writes each 0x10 frame to the channel as it
  arrives, so the bridge paces 20 ms frames by its clock (voxengine/playout.py) and counts a frame
  heard PLAYOUT_LEAD_MS after it is sent.
- Control: none; the bridge hangs up by sending a 0x00 frame and closing the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.carriers.audiosocket import AudioSocketCodec
from telephony_bridge.carriers.base import Capabilities, ListenerCarrier
from telephony_bridge.carriers.peer_networks import IpNetwork, parse_networks, peer_address, peer_in

__all__ = [
    "ALLOW_ENV",
    "LISTEN_ENV",
    "PLAYOUT_LEAD_MS",
    "AllowList",
    "AudioSocketCarrier",
    "Listener",
    "parse_allow",
    "parse_listen",
]

LISTEN_ENV: Final = "AUDIOSOCKET_LISTEN"
ALLOW_ENV: Final = "AUDIOSOCKET_ALLOW"
# Two frames: the one Asterisk is writing to the channel while the next crosses the TCP connection.
# Asterisk keeps no buffer of its own on this path (it does not re-time), so what the bridge has
# sent is played within about this much; the far phone's own jitter buffer comes after and is the
# same for every carrier. The truncation bound is this lead's error plus the event loop's lag.
PLAYOUT_LEAD_MS: Final = 40.0
_NUMBER_CHARS: Final = frozenset("+0123456789*#")


@dataclass(frozen=True, slots=True)
class Listener:
    """Where one AudioSocket listener binds, and the dialed number of every call it takes ("" = none)."""

    host: str
    port: int
    number: str = ""

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" + (f"={self.number}" if self.number else "")


def parse_listen(spec: str) -> Listener:
    """`HOST:PORT` or `HOST:PORT=NUMBER` (`[::1]:9092` for IPv6); ValueError saying what is wrong."""
    address, _, number = spec.strip().partition("=")
    number = number.strip()
    if number and not set(number) <= _NUMBER_CHARS:
        raise ValueError(f"{LISTEN_ENV}: {spec!r}: the number after '=' is digits with an optional leading +")
    host, sep, port_text = address.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{LISTEN_ENV}: {spec!r} is not HOST:PORT[=NUMBER]")
    return Listener(host, int(port_text), number)


def parse_allow(text: str) -> tuple[IpNetwork, ...]:
    """AUDIOSOCKET_ALLOW's networks (carriers/peer_networks.py)."""
    return parse_networks(text, ALLOW_ENV)


class AllowList:
    """Which peers may open an AudioSocket call: the configured networks, or loopback when none is."""

    def __init__(self, networks: Sequence[IpNetwork]) -> None:
        self.networks = tuple(networks)

    @property
    def configured(self) -> bool:
        return bool(self.networks)

    def allows(self, host: str | None) -> bool:
        if not self.networks:
            address = peer_address(host)
            return address is not None and address.is_loopback
        return peer_in(self.networks, host)


class AudioSocketCarrier(ListenerCarrier):
    """One per listener (its number); the registry's instance, made without one, answers nothing."""

    name = "audiosocket"
    how_calls_come = "the AudioSocket TCP listener (server/audiosocket.py), which checks its allow-list"
    signature_header = f"source address ({ALLOW_ENV})"
    secret_names = (ALLOW_ENV,)
    capabilities = Capabilities(
        audio_formats=(L16_8K,),
        marks=False,  # bridge-paced: heard by clock, PLAYOUT_LEAD_MS behind
        clear=False,
        playout_lead_ms=PLAYOUT_LEAD_MS,
    )  # DTMF in only: no DTMF out, hang-up, transfer or dial (the defaults)

    def __init__(self, config: Mapping[str, str], listener: Listener | None = None) -> None:
        super().__init__(config)
        self.listener = listener
        self.allow = AllowList(parse_allow(config.get(ALLOW_ENV, "")))

    @property
    def secured(self) -> bool:
        return self.allow.configured

    def new_codec(self) -> AudioSocketCodec:
        return AudioSocketCodec(number=self.listener.number if self.listener is not None else "")
