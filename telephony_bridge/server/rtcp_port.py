"""The RTCP half of one SIP call's media (RFC 3550 §6): `RtcpPort`, owned by its `RtpStream`.

RTCP has a port of its own (the RTP port + 1) and a peer of its own: reports go to the source the
peer's RTCP came from once it came, else to the RTP peer's port + 1; a report is accepted only from
the host the RTP comes from, and from then on only from that one source. The stream owns the
timers and knows where its RTP goes, so it passes that in; what is in the reports (RTT, the far
end's jitter and loss) is carriers/sip/rtcp_session.py's, sans-I/O.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from telephony_bridge.carriers.sip.rtcp_session import RtcpSession
from telephony_bridge.carriers.sip.rtp import RtpError, RtpSender
from telephony_bridge.server.metrics import BridgeMetrics

__all__ = ["Address", "RtcpPort"]

Address = tuple[str, int]


class RtcpPort:
    """One call's RTCP socket, where its reports go, and the reports that come back."""

    def __init__(
        self, sock: socket.socket, session: RtcpSession, metrics: BridgeMetrics, problem: Callable[[str], None]
    ) -> None:
        self.sock = sock
        self.session = session
        self.latched: Address | None = None  # the peer's RTCP source, once a valid report came from it
        self._metrics = metrics
        self._problem = problem

    def destination(self, rtp_peer: Address) -> Address:
        if self.latched is not None:
            return self.latched
        host, port = rtp_peer
        return host, port + 1

    def send_report(self, sender: RtpSender, now_s: float, rtp_peer: Address) -> None:
        """An SR (we send RTP) with a report block on the peer's stream, and our CNAME."""
        self._send(self.session.report(sender, now_s), rtp_peer)

    def send_bye(self, ssrc: int, rtp_peer: Address) -> None:
        self._send(self.session.bye(ssrc), rtp_peer)

    def _send(self, packet: bytes, rtp_peer: Address) -> None:
        with contextlib.suppress(OSError):  # RTCP is advisory: a lost report costs the call nothing
            self.sock.sendto(packet, self.destination(rtp_peer))

    def datagram(self, data: bytes, source: Address, now_s: float, ssrc: int, rtp_source: Address | None) -> None:
        """A datagram on the RTCP port; `rtp_source`: where the peer's RTP comes from (None yet)."""
        if self.latched is None:
            if rtp_source is not None and source[0] != rtp_source[0]:
                self._metrics.rtcp_packets_rejected += 1  # RTCP comes from the host the RTP comes from
                return
        elif source != self.latched:
            self._metrics.rtcp_packets_rejected += 1
            return
        try:
            self.session.received(data, ssrc, now_s)
        except RtpError as exc:
            self._metrics.rtcp_packets_rejected += 1
            self._problem(f"an RTCP datagram from {source} is not valid: {exc.reason}")
            return
        self.latched = source
