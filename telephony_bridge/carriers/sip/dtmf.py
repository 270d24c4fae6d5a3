"""DTMF as RTP telephone-events (RFC 4733 §2.3), both ways, sans-I/O.

The payload is 4 bytes: event (0–9, 10 `*`, 11 `#`, 12–15 A–D), then E (the end bit), R, a 6-bit
volume (dBm0 below zero), and a 16-bit duration in timestamp units. One key press is many packets
with the same RTP timestamp (the event's start), the duration growing; the final one, with E set,
is sent three times. `DtmfReceiver` reports each event once, on the first packet of it that
arrives (so a lost start packet costs nothing, and the three end packets and every update are
deduplicated by the event's timestamp). `digit_train` builds what the bridge sends for a digit:
one packet per 20 ms tick, the first with the marker bit, the three end packets, then a pause.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Final, NamedTuple

from telephony_bridge.carriers.sip.rtp import RtpError, RtpPacket

__all__ = [
    "DIGITS",
    "DtmfReceiver",
    "EventTick",
    "TelephoneEvent",
    "build_event",
    "digit_train",
    "parse_event",
]

DIGITS: Final = "0123456789*#ABCD"  # event codes 0..15
_EVENT = struct.Struct("!BBH")
_REMEMBERED: Final = 8  # events' timestamps kept: end packets trail in after the next event starts
TONE_MS: Final = 100  # a key press as the bridge sends it
PAUSE_MS: Final = 60  # silence between two digits (receivers need a gap to see two presses)
END_REPEATS: Final = 3


class TelephoneEvent(NamedTuple):
    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def parse_event(payload: bytes) -> TelephoneEvent:
    """A telephone-event payload (trailing bytes, RFC 4733 allows more events, are ignored)."""
    if len(payload) < _EVENT.size:
        raise RtpError(f"telephone-event: {len(payload)} bytes (4 are needed)")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def build_event(event: int, end: bool, duration: int, volume: int = 10) -> bytes:
    if not 0 <= event <= 255 or not 0 <= volume <= 63 or not 0 <= duration <= 0xFFFF:
        raise ValueError("telephone-event: event 0-255, volume 0-63, duration 0-65535")
    return _EVENT.pack(event, (0x80 if end else 0) | volume, duration)


class DtmfReceiver:
    """Telephone-event packets in, each key press out once."""

    __slots__ = ("_seen", "_seen_set")

    def __init__(self) -> None:
        self._seen: deque[tuple[int, int]] = deque()
        self._seen_set: set[tuple[int, int]] = set()

    def feed(self, packet: RtpPacket) -> str | None:
        """The digit when `packet` is the first seen of a key press; None for the rest (and for
        events that are not digits: flash and the like). RtpError for a short payload."""
        event = parse_event(packet.payload)
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen_set:
            return None
        self._seen.append(key)
        self._seen_set.add(key)
        if len(self._seen) > _REMEMBERED:
            self._seen_set.discard(self._seen.popleft())
        return event.digit


class EventTick(NamedTuple):
    """One 20 ms tick of a digit being sent: an event packet, or None for a tick of the pause."""

    payload: bytes | None
    first: bool = False  # the event's first packet: marker bit, and its timestamp is the event's


def digit_train(
    digit: str, samples_per_tick: int = 160, tone_ms: int = TONE_MS, pause_ms: int = PAUSE_MS
) -> list[EventTick]:
    """What one digit is on the wire, tick by tick (ValueError for a character that is not one)."""
    event = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if event < 0:
        raise ValueError(f"telephone-event: {digit!r} is not a DTMF digit")
    tone_ticks = max(1, tone_ms // 20)
    ticks = [EventTick(build_event(event, False, samples_per_tick * k), k == 1) for k in range(1, tone_ticks)]
    end = build_event(event, True, samples_per_tick * tone_ticks)
    ticks.append(EventTick(end, tone_ticks == 1))
    ticks.extend(EventTick(end) for _ in range(END_REPEATS - 1))
    ticks.extend(EventTick(None) for _ in range(max(0, pause_ms // 20)))
    return ticks
