"""The sending side's clock and queue, sans-I/O: what goes out at each 20 ms tick.

`SendClock` is the pacing: tick k is due at ``start + k·20 ms`` on a monotonic clock (never
``last + 20 ms``, which drifts by the loop's lag every frame). When the loop stalled past several
ticks, `due` reports how many came due; the owner (send_side.py) makes up their audio back to back,
up to a bound, and lets the RTP timestamp cover the rest as a gap.

`OutboundAudio` is what waits to be sent: audio bytes as the Playout wrote them (any length) and
the marks between them, by byte position. `take` cuts the next frame and says which marks it
passed and where in the frame they fell; `clear` drops everything (barge-in).
"""

from __future__ import annotations

from collections import deque
from typing import Final, NamedTuple

__all__ = ["FRAME_MS", "OutboundAudio", "PassedMark", "SendClock", "Taken"]

FRAME_MS: Final = 20.0
EARLY_MS: Final = 1.0  # a tick this early is on time (the loop's timer granularity)
_COMPACT_BYTES: Final = 64 * 1024


class SendClock:
    __slots__ = ("frame_ms", "next_ms")

    def __init__(self, start_ms: float, frame_ms: float = FRAME_MS) -> None:
        self.frame_ms = frame_ms
        self.next_ms = start_ms  # when the next tick is due

    def due(self, now_ms: float) -> int:
        """How many ticks have come due by `now_ms` (0: none yet; 1: on time; n: n − 1 were missed).
        The clock moves past all of them."""
        if now_ms + EARLY_MS < self.next_ms:
            return 0
        ticks = int((now_ms + EARLY_MS - self.next_ms) // self.frame_ms) + 1
        self.next_ms += ticks * self.frame_ms
        return ticks


class PassedMark(NamedTuple):
    name: str
    offset_bytes: int  # where in the frame taken it falls (0: before its first byte)


class Taken(NamedTuple):
    frame: bytes | None  # None: nothing was queued
    marks: list[PassedMark]


class OutboundAudio:
    """Audio and marks waiting for the sending clock. Bounded: audio beyond `max_bytes` is refused."""

    __slots__ = ("_buffer", "_marks", "_read", "_taken", "_written", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._read = 0  # offset of the next byte to send in _buffer
        self._written = 0  # bytes ever queued
        self._taken = 0  # bytes ever taken (sent or cleared)
        self._marks: deque[tuple[int, str]] = deque()  # (position in the byte count ever queued, name)

    @property
    def queued_bytes(self) -> int:
        return self._written - self._taken

    @property
    def empty(self) -> bool:
        return self._written == self._taken and not self._marks

    def append(self, audio: bytes) -> bool:
        """Queue audio; False (nothing queued) when that would pass `max_bytes`."""
        if self.queued_bytes + len(audio) > self.max_bytes:
            return False
        self._buffer += audio
        self._written += len(audio)
        return True

    def mark(self, name: str) -> None:
        self._marks.append((self._written, name))

    def take(self, frame_bytes: int) -> Taken:
        """The next frame (at most `frame_bytes`; shorter at the end of what was written) and the
        marks it passed, with marks that wait at the front of an empty queue."""
        start = self._taken
        available = self._written - start
        frame = None
        if available:
            size = min(frame_bytes, available)
            frame = bytes(self._buffer[self._read : self._read + size])
            self._read += size
            self._taken += size
            if self._read >= _COMPACT_BYTES or self._read == len(self._buffer):
                del self._buffer[: self._read]
                self._read = 0
        passed: list[PassedMark] = []
        marks = self._marks
        while marks and marks[0][0] <= self._taken:
            position, name = marks.popleft()
            passed.append(PassedMark(name, max(0, position - start)))
        return Taken(frame, passed)

    def clear(self) -> list[str]:
        """Drop all audio; the marks that were waiting (to echo at once, as flushed)."""
        self._buffer.clear()
        self._read = 0
        self._taken = self._written
        names = [name for _, name in self._marks]
        self._marks.clear()
        return names
