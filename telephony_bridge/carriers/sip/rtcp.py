"""RTCP (RFC 3550 §6) as the bridge uses it: reports built and read, loss, jitter, round-trip time.

The bridge sends RTP, so it sends sender reports (SR) — with one report block on the peer's stream
— and a CNAME (every compound packet starts with SR or RR and carries SDES CNAME, §6.1). The
peer's reports carry, in the block on the bridge's SSRC, LSR (the middle 32 bits of the NTP time
of the bridge's last SR) and DLSR (how long the peer held it), so the round trip is
``arrival − LSR − DLSR`` (§6.4.1) in 1/65536 s. RTT/2 is the network half of what the far end's
playout lags the bridge's sending by (server/sip_media.py: `heard_lead_ms`).

`ReceiverStats` keeps RFC 3550's receive statistics of the peer's stream (A.1 sequence tracking,
A.3 loss, A.8 interarrival jitter). Everything here is sans-I/O: times are arguments.
`parse_rtcp` raises only `RtpError`.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

from telephony_bridge.carriers.sip.rtp import RTP_VERSION, RtpError

__all__ = [
    "NTP_EPOCH_OFFSET_S",
    "PacketType",
    "ReceiverStats",
    "ReportBlock",
    "RtcpPacket",
    "SenderInfo",
    "build_bye",
    "build_report",
    "ntp_middle",
    "ntp_timestamp",
    "parse_rtcp",
    "round_trip_ms",
]

NTP_EPOCH_OFFSET_S: Final = 2_208_988_800  # 1900-01-01 to 1970-01-01
_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction|cumulative, highest seq, jitter, LSR, DLSR
_SENDER = struct.Struct("!IIIII")  # NTP msw, NTP lsw, RTP ts, packets, octets
MAX_BLOCKS: Final = 31


class PacketType(IntEnum):
    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204


class SenderInfo(NamedTuple):
    ntp: int  # 64-bit NTP timestamp
    rtp_timestamp: int
    packets: int
    octets: int


class ReportBlock(NamedTuple):
    ssrc: int  # the stream reported on
    fraction_lost: int  # of 256, since the last report
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int  # extended: cycles << 16 | highest sequence number
    jitter: int  # in timestamp units
    lsr: int  # middle 32 bits of the NTP time of the last SR received from that stream (0: none)
    dlsr: int  # 1/65536 s since that SR


class RtcpPacket(NamedTuple):
    packet_type: int
    ssrc: int  # the sender of this packet (0 for packet types without one)
    sender: SenderInfo | None = None
    blocks: tuple[ReportBlock, ...] = ()


def ntp_timestamp(unix_s: float) -> int:
    """A 64-bit NTP timestamp (32.32 fixed point seconds since 1900)."""
    return int((unix_s + NTP_EPOCH_OFFSET_S) * 65536 * 65536) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits (16.16 seconds): what LSR holds."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_ms(block: ReportBlock, arrival_ntp: int) -> float | None:
    """RTT from a report block on our stream, arriving at `arrival_ntp` (§6.4.1); None without an
    LSR (the peer has not had a sender report of ours yet) or when the figures do not add up."""
    if block.lsr == 0:
        return None
    rtt = (ntp_middle(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt >= 0x80000000:
        return None  # negative: clocks or a forged report; ignore it
    return rtt * 1000 / 65536


# --- building -------------------------------------------------------------------------------------


def _header(count: int, packet_type: int, body_bytes: int, padding: bool = False) -> bytes:
    return struct.pack("!BBH", (RTP_VERSION << 6) | (0x20 if padding else 0) | count, packet_type, body_bytes // 4)


def _block_bytes(block: ReportBlock) -> bytes:
    fraction_and_lost = ((block.fraction_lost & 0xFF) << 24) | (block.cumulative_lost & 0xFFFFFF)
    return _BLOCK.pack(
        block.ssrc, fraction_and_lost, block.highest_sequence & 0xFFFFFFFF, block.jitter, block.lsr, block.dlsr
    )


def _sdes_cname(ssrc: int, cname: str) -> bytes:
    text = cname.encode("utf-8")[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"  # CNAME item, then the END item
    chunk += b"\x00" * (-len(chunk) % 4)
    return _header(1, PacketType.SDES, len(chunk)) + chunk


def build_report(
    ssrc: int, cname: str, blocks: tuple[ReportBlock, ...] = (), sender: SenderInfo | None = None
) -> bytes:
    """A compound packet: SR (with `sender`) or RR, then SDES CNAME."""
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"rtcp: at most {MAX_BLOCKS} report blocks")
    body = struct.pack("!I", ssrc)
    if sender is not None:
        body += _SENDER.pack(
            sender.ntp >> 32, sender.ntp & 0xFFFFFFFF, sender.rtp_timestamp, sender.packets, sender.octets
        )
    body += b"".join(_block_bytes(block) for block in blocks)
    kind = PacketType.SR if sender is not None else PacketType.RR
    return _header(len(blocks), kind, len(body)) + body + _sdes_cname(ssrc, cname)


def build_bye(ssrc: int, cname: str) -> bytes:
    """RR (empty), SDES CNAME, BYE: what a stream sends as it stops (§6.6)."""
    return build_report(ssrc, cname) + _header(1, PacketType.BYE, 4) + struct.pack("!I", ssrc)


# --- parsing --------------------------------------------------------------------------------------


_FIRST_TYPES = frozenset({PacketType.SR, PacketType.RR, PacketType.BYE, PacketType.APP})


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """A compound RTCP datagram's packets (SR, RR, BYE read; SDES, APP and others named only);
    RtpError when it is not valid RTCP (§A.2: version, lengths, the first packet SR or RR — or BYE
    or APP, which real phones send alone or first at hang-up: baresip does, and RFC 5506 allows
    packets that are not compound)."""
    packets: list[RtcpPacket] = []
    offset, size = 0, len(data)
    if size < 8 or size % 4:
        raise RtpError(f"rtcp: {size} bytes is not a whole compound packet")
    while offset < size:
        if offset + 4 > size:
            raise RtpError("rtcp: a truncated packet header")
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"rtcp: version {first >> 6} (2 is needed)")
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpError(f"rtcp: a packet of {4 + 4 * words} bytes in {size - offset} left")
        if first & 0x20 and end != size:
            raise RtpError("rtcp: padding on a packet that is not the last one")
        if not packets and packet_type not in _FIRST_TYPES:
            raise RtpError(f"rtcp: a packet starts with type {packet_type}, not SR, RR, BYE or APP")
        packets.append(_parse_one(data, offset, end, first & 0x1F, packet_type))
        offset = end
    return packets


def _parse_one(data: bytes, offset: int, end: int, count: int, packet_type: int) -> RtcpPacket:
    body = offset + 4
    if packet_type in (PacketType.SR, PacketType.RR):
        fixed = 4 + (_SENDER.size if packet_type == PacketType.SR else 0)
        if body + fixed + count * _BLOCK.size > end:
            raise RtpError(f"rtcp: {count} report blocks do not fit the packet")
        (ssrc,) = struct.unpack_from("!I", data, body)
        sender = None
        if packet_type == PacketType.SR:
            msw, lsw, rtp_ts, packets, octets = _SENDER.unpack_from(data, body + 4)
            sender = SenderInfo((msw << 32) | lsw, rtp_ts, packets, octets)
        blocks = []
        for index in range(count):
            block_ssrc, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, body + fixed + index * _BLOCK.size)
            cumulative = lost & 0xFFFFFF
            if cumulative & 0x800000:
                cumulative -= 0x1000000
            blocks.append(ReportBlock(block_ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
        return RtcpPacket(packet_type, ssrc, sender, tuple(blocks))
    if packet_type == PacketType.BYE:
        if body + 4 * count > end:
            raise RtpError(f"rtcp: BYE of {count} sources does not fit")
        ssrc = struct.unpack_from("!I", data, body)[0] if count else 0
        return RtcpPacket(packet_type, ssrc)
    return RtcpPacket(packet_type, 0)


# --- receive statistics ---------------------------------------------------------------------------


class ReceiverStats:
    """RFC 3550's statistics of one received stream, for the report block the bridge sends about it.

    `received(sequence, rtp_timestamp, arrival)` with `arrival` on a clock in the stream's
    timestamp units (8000 a second); `block(...)` builds the report and starts the next interval."""

    __slots__ = (
        "_base",
        "_cycles",
        "_expected_prior",
        "_jitter",
        "_max",
        "_received",
        "_received_prior",
        "_transit",
        "lsr",
        "lsr_arrival_s",
        "ssrc",
    )

    def __init__(self) -> None:
        self.ssrc: int | None = None
        self._base = self._max = self._cycles = 0
        self._received = self._received_prior = self._expected_prior = 0
        self._transit: int | None = None
        self._jitter = 0.0
        self.lsr = 0  # middle NTP bits of the peer's last SR, and when it came (monotonic s)
        self.lsr_arrival_s = 0.0

    @property
    def jitter(self) -> float:
        """Interarrival jitter, in timestamp units."""
        return self._jitter

    def received(self, ssrc: int, sequence: int, rtp_timestamp: int, arrival: int) -> None:
        if ssrc != self.ssrc:  # a new source: new statistics
            self.ssrc = ssrc
            self._base = self._max = sequence
            self._cycles = self._received = self._received_prior = self._expected_prior = 0
            self._transit = None
            self._jitter = 0.0
        elif sequence < self._max and self._max - sequence > 0x8000:
            self._cycles += 0x10000  # wrapped
            self._max = sequence
        elif 0 < sequence - self._max < 0x8000:
            self._max = sequence
        self._received += 1
        transit = (arrival - rtp_timestamp) & 0xFFFFFFFF
        if self._transit is not None:
            d = transit - self._transit
            if d > 0x7FFFFFFF:
                d -= 0x100000000
            elif d < -0x7FFFFFFF:
                d += 0x100000000
            self._jitter += (abs(d) - self._jitter) / 16
        self._transit = transit

    def sender_report(self, ntp: int, now_s: float) -> None:
        """The peer's SR arrived at `now_s`: its time goes back as LSR, the wait as DLSR."""
        self.lsr = ntp_middle(ntp)
        self.lsr_arrival_s = now_s

    def block(self, now_s: float) -> ReportBlock | None:
        """The report block on this stream, starting the next interval (None before any packet)."""
        if self.ssrc is None:
            return None
        extended_max = self._cycles + self._max
        expected = extended_max - self._base + 1
        lost = max(-0x800000, min(0x7FFFFF, expected - self._received))
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior, self._received_prior = expected, self._received
        lost_interval = expected_interval - received_interval
        fraction = (
            0 if expected_interval <= 0 or lost_interval <= 0 else min(255, (lost_interval << 8) // expected_interval)
        )
        dlsr = int((now_s - self.lsr_arrival_s) * 65536) & 0xFFFFFFFF if self.lsr else 0
        return ReportBlock(self.ssrc, fraction, lost, extended_max & 0xFFFFFFFF, int(self._jitter), self.lsr, dlsr)
