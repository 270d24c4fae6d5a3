"""RTP port pairs for SIP calls: `RtpPortPool`, which opens each call's `RtpStream`.

The SIP signalling (its own modules) opens a stream for each call it answers or places —
`pool.open(call_id)`, None when every pair is taken (it answers 503) — points it at the far end
from the negotiated SDP (`configure`, again on every re-INVITE) and runs the ordinary
`CallSession` over it. server/rtp_stream.py has the stream: how it receives, paces, and knows
what the caller heard. Configuration: ``RTP_PORTS`` (default 20000-20999; the RTP port of a pair
is even, RTCP the next) and ``SIP_JITTER_ALLOWANCE_MS`` (default 40: the far end's jitter
buffer, part of the heard estimate).
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Mapping
from typing import Final

from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.rtp_stream import DIRECTIONS, MAX_INBOUND_FRAMES, SILENCE, Clock, RtpStream

__all__ = [
    "DEFAULT_JITTER_ALLOWANCE_MS",
    "DIRECTIONS",
    "JITTER_ALLOWANCE_ENV",
    "MAX_INBOUND_FRAMES",
    "RTP_PORTS_ENV",
    "SILENCE",
    "RtpPortPool",
    "RtpStream",
    "parse_port_range",
]

log = logging.getLogger("telephony_bridge.sip")

RTP_PORTS_ENV: Final = "RTP_PORTS"
JITTER_ALLOWANCE_ENV: Final = "SIP_JITTER_ALLOWANCE_MS"
DEFAULT_JITTER_ALLOWANCE_MS: Final = 40.0


def parse_port_range(text: str) -> tuple[int, int]:
    """``20000-20999`` → (20000, 20999); ValueError naming the problem."""
    first, sep, last = text.strip().partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ValueError(f"{RTP_PORTS_ENV}: {text!r} is not FIRST-LAST")
    low, high = int(first), int(last)
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"{RTP_PORTS_ENV}: {text!r}: ports 1024-65535, FIRST below LAST (two at least)")
    return low, high


class RtpPortPool:
    """RTP port pairs (even RTP port, RTCP on the next) between `first` and `last`, one per call."""

    def __init__(
        self,
        first: int = 20000,
        last: int = 20999,
        host: str = "127.0.0.1",
        metrics: BridgeMetrics | None = None,
        jitter_allowance_ms: float = DEFAULT_JITTER_ALLOWANCE_MS,
        clock: Clock | None = None,
        paced: bool = True,
    ) -> None:
        first += first % 2
        if last - first < 1:
            raise ValueError(f"{RTP_PORTS_ENV}: {first}-{last} holds no even/odd port pair")
        self.host = host
        self.metrics = metrics if metrics is not None else BridgeMetrics()
        self.jitter_allowance_ms = jitter_allowance_ms
        # Tests drive the clock by hand (`paced=False`: nothing ticks by itself; call `tick(now)`).
        self.clock = clock
        self.paced = paced
        self._free: deque[int] = deque(range(first, last, 2))
        self.capacity = len(self._free)
        self.streams: dict[int, RtpStream] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, str], host: str, metrics: BridgeMetrics | None = None) -> RtpPortPool:
        first, last = parse_port_range(config.get(RTP_PORTS_ENV) or "20000-20999")
        allowance = float(config.get(JITTER_ALLOWANCE_ENV) or DEFAULT_JITTER_ALLOWANCE_MS)
        if not 0 <= allowance <= 1000:
            raise ValueError(f"{JITTER_ALLOWANCE_ENV}: {allowance:g} ms is not between 0 and 1000")
        return cls(first, last, host, metrics, allowance)

    @property
    def free(self) -> int:
        return len(self._free)

    def open(self, call_id: str) -> RtpStream | None:
        """A stream on a free port pair, or None when every pair is taken (answer 503)."""
        for _ in range(len(self._free)):
            port = self._free.popleft()
            sockets = _bind_pair(self.host, port)
            if sockets is None:
                self._free.append(port)  # taken by another program: try it again later
                continue
            stream = RtpStream(self, call_id, port, *sockets)
            self.streams[port] = stream
            return stream
        self.metrics.rtp_ports_exhausted += 1
        log.warning("call %s: no free RTP port pair (%d in use): refusing it", call_id, len(self.streams))
        return None

    def release_port(self, port: int) -> None:
        """A stream closed: its pair is free again."""
        if self.streams.pop(port, None) is not None:
            self._free.append(port)

    async def aclose(self) -> None:
        for stream in list(self.streams.values()):
            await stream.aclose()


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket] | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: list[socket.socket] = []
    try:
        for offset in (0, 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            bound.append(sock)
            sock.setblocking(False)
            sock.bind((host, port + offset))
    except OSError:
        for sock in bound:
            sock.close()
        return None
    return bound[0], bound[1]
