"""One RTP stream's RTCP, sans-I/O: what it reports and what it learns (RTT) from the peer's reports.

The stream (server/rtp_stream.py) feeds it every RTP packet it accepts and every RTCP datagram,
asks it for a report every few seconds and for a goodbye at the end; times are arguments (the
stream's monotonic clock, in seconds). The NTP timestamps it writes follow that clock from an
origin taken once from the wall clock, so a wall-clock step never bends the round trip.
"""

from __future__ import annotations

from typing import Final

from telephony_bridge.carriers.sip.rtcp import (
    PacketType,
    ReceiverStats,
    SenderInfo,
    build_bye,
    build_report,
    ntp_timestamp,
    parse_rtcp,
    round_trip_ms,
)
from telephony_bridge.carriers.sip.rtp import RtpPacket, RtpSender

__all__ = ["MAX_RTT_MS", "RtcpSession"]

MAX_RTT_MS: Final = 10_000.0  # a round trip beyond this is a forged or garbled report: ignored


class RtcpSession:
    __slots__ = ("_ntp_origin_s", "cname", "peer_jitter_ms", "peer_loss", "rtt_ms", "stats")

    def __init__(self, cname: str, wall_s: float, now_s: float) -> None:
        self.cname = cname
        self._ntp_origin_s = wall_s - now_s  # NTP time = origin + the stream's clock
        self.stats = ReceiverStats()
        self.rtt_ms: float | None = None  # the latest round trip a peer's report gave
        # How our stream arrives at the peer, by its latest report: interarrival jitter, and the
        # fraction lost since its previous report (for the call's summary; not in the estimate).
        self.peer_jitter_ms: float | None = None
        self.peer_loss: float | None = None

    def ntp(self, now_s: float) -> int:
        return ntp_timestamp(self._ntp_origin_s + now_s)

    def rtp_received(self, packet: RtpPacket, now_s: float) -> None:
        """An RTP packet of the peer's arrived (for loss and interarrival jitter, in 8 kHz units)."""
        self.stats.received(packet.ssrc, packet.sequence, packet.timestamp, int(now_s * 8000))

    def report(self, sender: RtpSender, now_s: float) -> bytes:
        """SR (the bridge sends RTP) with a report block on the peer's stream once it has one, CNAME."""
        block = self.stats.block(now_s)
        info = SenderInfo(self.ntp(now_s), sender.timestamp, sender.packets_sent, sender.payload_bytes_sent)
        return build_report(sender.ssrc, self.cname, (block,) if block is not None else (), info)

    def bye(self, ssrc: int) -> bytes:
        return build_bye(ssrc, self.cname)

    def received(self, data: bytes, our_ssrc: int, now_s: float) -> None:
        """A datagram from the peer's RTCP port: its SR's time kept for our LSR/DLSR, the round
        trip taken from a block on our stream. RtpError when it is not valid RTCP."""
        for packet in parse_rtcp(data):
            if packet.packet_type == PacketType.SR and packet.sender is not None:
                self.stats.sender_report(packet.sender.ntp, now_s)
            for block in packet.blocks:
                if block.ssrc == our_ssrc:
                    self.peer_jitter_ms = block.jitter / 8  # 8 kHz timestamp units
                    self.peer_loss = block.fraction_lost / 256
                    rtt = round_trip_ms(block, self.ntp(now_s))
                    if rtt is not None and rtt < MAX_RTT_MS:
                        self.rtt_ms = rtt
