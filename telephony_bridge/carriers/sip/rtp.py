"""RTP (RFC 3550) packets and the sending side of one RTP stream, sans-I/O.

A packet is a 12-byte fixed header — V=2, padding P, extension X, CSRC count CC, marker M, payload
type PT, a 16-bit sequence number (wraps), a 32-bit timestamp (8000 Hz for G.711: +160 per 20 ms),
the SSRC — then CC CSRCs, an optional header extension (16-bit profile word, 16-bit length in
32-bit words), the payload, and with P set padding whose last byte says how long it is.

`parse_rtp` reads a datagram into an `RtpPacket` or raises `RtpError` (never anything else: the
datagram is a stranger's); `build_rtp` writes one. `RtpSender` is the sending state of a stream:
a random SSRC, sequence and timestamp origin (RFC 3550 §5.1), a sequence that goes up by one per
packet and a timestamp the caller advances by the samples each 20 ms tick covers, so both stay
continuous across silence and DTMF, and the marker bit on the first packet of each talk spurt.
"""

from __future__ import annotations

import secrets
import struct
from typing import Final, NamedTuple

__all__ = [
    "HEADER_BYTES",
    "MAX_SEQ",
    "RTP_VERSION",
    "RtpError",
    "RtpPacket",
    "RtpSender",
    "build_rtp",
    "looks_like_rtcp",
    "parse_rtp",
    "seq_distance",
]

RTP_VERSION: Final = 2
HEADER_BYTES: Final = 12
MAX_SEQ: Final = 0x10000
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A datagram that is not a usable RTP, RTCP or RFC 4733 packet. The one error this package's
    parsers raise; `reason` is short and never holds the payload."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RtpPacket(NamedTuple):
    """One received RTP packet (a NamedTuple: one is built per 20 ms)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile word, data) when X is set


def parse_rtp(data: bytes) -> RtpPacket:
    """One datagram as an RTP packet; RtpError when it is not one."""
    size = len(data)
    if size < HEADER_BYTES:
        raise RtpError(f"rtp: {size} bytes is shorter than the 12-byte header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"rtp: version {first >> 6} (2 is needed)")
    payload_type = second & 0x7F
    if 72 <= payload_type <= 76:
        raise RtpError(f"rtp: payload type {payload_type} is an RTCP packet type (RFC 5761)")
    offset = HEADER_BYTES + 4 * (first & 0x0F)
    if offset > size:
        raise RtpError(f"rtp: {first & 0x0F} CSRCs do not fit in {size} bytes")
    csrcs = struct.unpack_from(f"!{first & 0x0F}I", data, HEADER_BYTES) if first & 0x0F else ()
    extension = None
    if first & 0x10:
        if offset + 4 > size:
            raise RtpError("rtp: the header extension does not fit")
        profile, words = struct.unpack_from("!HH", data, offset)
        start = offset + 4
        offset = start + 4 * words
        if offset > size:
            raise RtpError(f"rtp: a header extension of {words} words does not fit in {size} bytes")
        extension = (profile, bytes(data[start:offset]))
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > size:
            raise RtpError(f"rtp: {padding} bytes of padding in a {size}-byte packet")
        end -= padding
    return RtpPacket(
        payload_type, sequence, timestamp, ssrc, bytes(data[offset:end]), bool(second & 0x80), csrcs, extension
    )


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """One RTP packet. `extension` data is padded to whole 32-bit words; `padding` adds that many
    bytes (1–255) of RTP padding."""
    if not 0 <= payload_type <= 127 or len(csrcs) > 15 or not 0 <= padding <= 255:
        raise ValueError("rtp: payload type 0-127, at most 15 CSRCs, at most 255 bytes of padding")
    first = (RTP_VERSION << 6) | len(csrcs) | (0x20 if padding else 0) | (0x10 if extension is not None else 0)
    parts = [
        _HEADER.pack(first, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    ]
    if csrcs:
        parts.append(struct.pack(f"!{len(csrcs)}I", *csrcs))
    if extension is not None:
        profile, data = extension
        data = data + b"\x00" * (-len(data) % 4)
        parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
    parts.append(payload)
    if padding:
        parts.append(b"\x00" * (padding - 1) + bytes((padding,)))
    return b"".join(parts)


def looks_like_rtcp(data: bytes) -> bool:
    """Whether a datagram is RTCP rather than RTP (RFC 5761 §4: packet types 192–223)."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


def seq_distance(newer: int, older: int) -> int:
    """How far sequence `newer` is ahead of `older` across the 16-bit wrap: in -32768..32767."""
    distance = (newer - older) & 0xFFFF
    return distance - MAX_SEQ if distance >= 0x8000 else distance


class RtpSender:
    """The sending state of one RTP stream: SSRC, next sequence number, media clock.

    The owner calls `advance(samples)` once per tick whatever it sent (audio, silence, a DTMF
    event packet, or nothing while on hold), so the timestamp always follows the media clock;
    the sequence goes up only when a packet is built (RFC 3550: per packet sent)."""

    __slots__ = ("_voiced", "packets_sent", "payload_bytes_sent", "sequence", "ssrc", "timestamp")

    def __init__(self, ssrc: int | None = None, sequence: int | None = None, timestamp: int | None = None) -> None:
        # Random origins (RFC 3550 §5.1): a known-plaintext and an SSRC-collision precaution.
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc & 0xFFFFFFFF
        self.sequence = secrets.randbits(16) if sequence is None else sequence & 0xFFFF
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self._voiced = False  # the last audio packet carried the bridge's audio (not comfort silence)
        self.packets_sent = 0
        self.payload_bytes_sent = 0

    def advance(self, samples: int) -> None:
        """The media clock moved on by `samples` (one tick)."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF

    def audio(self, payload_type: int, payload: bytes, voiced: bool) -> bytes:
        """An audio packet at the current timestamp; M set on the first voiced one after silence."""
        marker = voiced and not self._voiced
        self._voiced = voiced
        return self.packet(payload_type, payload, self.timestamp, marker)

    @property
    def in_talk_spurt(self) -> bool:
        """The last audio packet carried the bridge's audio, with no pause or event train since."""
        return self._voiced

    def talk_spurt_ended(self) -> None:
        """The next voiced packet starts a talk spurt (after an event train or a pause in sending)."""
        self._voiced = False

    def packet(self, payload_type: int, payload: bytes, timestamp: int, marker: bool = False) -> bytes:
        data = build_rtp(payload_type, self.sequence, timestamp, self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packets_sent += 1
        self.payload_bytes_sent += len(payload)
        return data
