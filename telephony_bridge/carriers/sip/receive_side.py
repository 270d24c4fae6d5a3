"""What one RTP stream does with a datagram on its RTP port, sans-I/O: latch, reorder, conceal, decode.

`datagram(data, source, now)` returns what the session is to get, in order: caller audio (bytes,
in the session's format) and key presses (one-character str). On the way:

- parse (RFC 3550); a datagram that is not RTP is counted and dropped;
- symmetric RTP: the first packet of a negotiated payload type from anywhere latches the stream
  to its source; from then on packets from any other source are counted and dropped;
- RTCP statistics (loss, jitter) see every packet from the latched source;
- the jitter buffer puts packets in order, drops duplicates and says what was lost, which is
  concealed with silence (at most `MAX_CONCEALED` frames: a longer gap was not a lost packet);
- telephone-events become key presses, each once (RFC 4733); audio is transcoded when the codec
  changed by re-INVITE after the session started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from telephony_bridge.audio.formats import Encoding
from telephony_bridge.carriers.sip.dtmf import DtmfReceiver
from telephony_bridge.carriers.sip.jitter import JitterBuffer, Lost, Outcome
from telephony_bridge.carriers.sip.rtcp_session import RtcpSession
from telephony_bridge.carriers.sip.rtp import RtpError, RtpPacket, parse_rtp
from telephony_bridge.carriers.sip.send_side import FRAME_BYTES, SILENCE

__all__ = ["MAX_CONCEALED", "Address", "ReceiveSide", "RtpCounters"]

MAX_CONCEALED: Final = 5  # frames of silence for one gap at most
Address = tuple[str, int]


class RtpCounters(Protocol):
    """Where the counts go (the server's BridgeMetrics has these fields)."""

    rtp_packets_foreign: int
    rtp_packets_malformed: int
    rtp_packets_discarded: int
    rtp_packets_lost: int


class ReceiveSide:
    __slots__ = (
        "_counters",
        "_dtmf",
        "_jitter",
        "_last_frame_bytes",
        "_problem",
        "_rtcp",
        "event_payload_type",
        "from_wire",
        "latched",
        "payload_type",
        "receiving",
        "session_encoding",
    )

    def __init__(self, rtcp: RtcpSession, counters: RtpCounters, problem: Callable[[str], None]) -> None:
        self._rtcp = rtcp
        self._counters = counters
        self._problem = problem  # logs a refusal (the stream rate-limits it)
        self._jitter = JitterBuffer(frozenset({0}))
        self._dtmf = DtmfReceiver()
        self._last_frame_bytes = FRAME_BYTES
        self.latched: Address | None = None
        self.payload_type = 0
        self.event_payload_type: int | None = None
        self.receiving = False  # the call has started and the direction lets the peer send
        self.from_wire: Callable[[bytes], bytes] | None = None  # transcoding, after a codec change
        self.session_encoding = Encoding.ULAW

    def configure(self, payload_type: int, event_payload_type: int | None) -> None:
        self.payload_type, self.event_payload_type = payload_type, event_payload_type
        accepted = {payload_type} if event_payload_type is None else {payload_type, event_payload_type}
        self._jitter.accept_payload_types(frozenset(accepted))

    @property
    def held(self) -> int:
        """Packets waiting behind a gap (`poll` releases them in time)."""
        return self._jitter.held

    def datagram(self, data: bytes, source: Address, now_s: float) -> list[bytes | str]:
        counters = self._counters
        try:
            packet = parse_rtp(data)
        except RtpError as exc:
            counters.rtp_packets_malformed += 1
            self._problem(f"a datagram from {source} is not RTP: {exc.reason}")
            return []
        if self.latched is None:
            if packet.payload_type != self.payload_type and packet.payload_type != self.event_payload_type:
                counters.rtp_packets_discarded += 1
                return []  # not valid for this call: latch to nothing yet
            self.latched = source
        elif source != self.latched:
            counters.rtp_packets_foreign += 1
            self._problem(f"an RTP packet from {source}, not the latched {self.latched}: dropped")
            return []
        self._rtcp.rtp_received(packet, now_s)
        if not self.receiving:
            return []
        pushed = self._jitter.push(packet, now_s * 1000)
        if pushed.outcome is not Outcome.ACCEPTED:
            counters.rtp_packets_discarded += 1
        return self._decode(pushed.released) if pushed.released else []

    def poll(self, now_s: float) -> list[bytes | str]:
        """What has waited behind a gap long enough (call every tick or so)."""
        return self._decode(self._jitter.poll(now_s * 1000)) if self._jitter.held else []

    def _decode(self, released: list[RtpPacket | Lost]) -> list[bytes | str]:
        out: list[bytes | str] = []
        for item in released:
            if type(item) is Lost:
                self._counters.rtp_packets_lost += item.packets
                silence = (SILENCE[self.session_encoding] * 8)[: self._last_frame_bytes]
                out.extend(silence for _ in range(min(item.packets, MAX_CONCEALED)))
                continue
            assert type(item) is RtpPacket
            if item.payload_type == self.event_payload_type:
                try:
                    digit = self._dtmf.feed(item)
                except RtpError as exc:
                    self._counters.rtp_packets_malformed += 1
                    self._problem(exc.reason)
                    continue
                if digit is not None:
                    out.append(digit)
                continue
            payload = item.payload
            if payload:
                self._last_frame_bytes = min(len(payload), 8 * FRAME_BYTES)
                out.append(payload if self.from_wire is None else self.from_wire(payload))
        return out
