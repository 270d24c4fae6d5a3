"""Twilio's outbound buffer, modelled: what the caller hears of the audio a bridge sends.

Pure: no asyncio, no clock. Every method takes ``now_ms``, milliseconds since the stream started, on
one monotonic clock chosen by the caller (the phone simulator uses the event loop's clock).

The rules (shared/reference/carriers.md): outbound μ-law is buffered and played in order at
8000 bytes/s; audio arriving while the buffer is empty starts playing at its arrival time; a mark comes
back when the audio sent before it has finished playing, at once if nothing is buffered; ``clear``
drops what is buffered and sends back every pending mark at once.

Time has sample resolution: positions are counted in μ-law bytes (1 byte = 1/8 ms) and ``now_ms`` is
rounded to the nearest sample. Audio queued back to back is therefore placed exactly back to back,
whatever the float values of ``now_ms``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BYTES_PER_MS = 8  # μ-law 8 kHz mono: one byte per sample
ULAW_SILENCE = 0xFF


@dataclass(slots=True)
class _Segment:
    """Audio placed back to back on the playout timeline, from ``start`` to ``start + len(audio)``."""

    start: int
    audio: bytearray

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


@dataclass(frozen=True, slots=True)
class ClearRecord:
    at_ms: float
    dropped_ms: float
    flushed_marks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlayoutStats:
    played_ms: float  # audio the caller heard up to now
    cleared_ms: float  # audio dropped by ``clear`` before it played
    pending_ms: float  # audio still buffered at now (unplayed if the call ends now)
    clears: int
    marks_pending: int


@dataclass(frozen=True, slots=True)
class HeardAudio:
    """What the caller heard from 0 to ``now_ms``: μ-law, 0xFF where nothing played."""

    ulaw: bytes
    stats: PlayoutStats
    # (start_ms, end_ms) of each stretch of audio that played without a gap.
    spans: tuple[tuple[float, float], ...] = field(default=())


class SimulatedPlayout:
    """Twilio's per-stream outbound buffer. ``now_ms`` must never go backwards."""

    __slots__ = ("_cleared", "_clears", "_end", "_last_now", "_marks", "_segments")

    def __init__(self) -> None:
        self._segments: list[_Segment] = []
        self._end = 0  # position where buffered audio runs out; playback is idle from here on
        self._marks: deque[tuple[int, str]] = deque()  # (due position, name), due positions ascend
        self._cleared = 0
        self._clears: list[ClearRecord] = []
        self._last_now = 0.0

    # -- input -------------------------------------------------------------------------------------

    def enqueue_media(self, ulaw: bytes, now_ms: float) -> None:
        if not ulaw:
            return
        now = self._position(now_ms)
        if self._segments and self._end >= now:
            # Still playing (or ending exactly now): this audio follows without a gap.
            self._segments[-1].audio += ulaw
        else:
            self._segments.append(_Segment(start=now, audio=bytearray(ulaw)))
        self._end = self._segments[-1].end

    def enqueue_mark(self, name: str, now_ms: float) -> None:
        """Queue a mark; it is due when the audio queued before it has played (now if none is).

        A due mark is handed out by the next :meth:`advance`, which may be called with the same
        ``now_ms`` to echo it at once."""
        now = self._position(now_ms)
        self._marks.append((max(self._end, now), name))

    def clear(self, now_ms: float) -> list[str]:
        """Drop all buffered audio; return every pending mark, in order, to echo at once."""
        now = self._position(now_ms)
        dropped = 0
        while self._segments and self._segments[-1].end > now:
            last = self._segments[-1]
            if last.start >= now:
                dropped += len(last.audio)
                self._segments.pop()
            else:
                dropped += last.end - now
                del last.audio[now - last.start :]
        self._end = min(self._end, now)
        self._cleared += dropped
        flushed = [name for _, name in self._marks]
        self._marks.clear()
        self._clears.append(ClearRecord(now_ms, dropped / BYTES_PER_MS, tuple(flushed)))
        return flushed

    # -- output ------------------------------------------------------------------------------------

    def advance(self, now_ms: float) -> list[str]:
        """Return, in order, the marks whose preceding audio has finished playing by ``now_ms``."""
        now = self._position(now_ms)
        due: list[str] = []
        while self._marks and self._marks[0][0] <= now:
            due.append(self._marks.popleft()[1])
        return due

    def next_mark_due_ms(self) -> float | None:
        """When the oldest pending mark falls due (None if no mark is pending)."""
        return self._marks[0][0] / BYTES_PER_MS if self._marks else None

    def busy_until_ms(self) -> float:
        """When the buffered audio runs out (in the past if playback is idle)."""
        return self._end / BYTES_PER_MS

    def buffered_ms(self, now_ms: float) -> float:
        return max(0, self._end - self._position(now_ms, check=False)) / BYTES_PER_MS

    @property
    def clears(self) -> list[ClearRecord]:
        return list(self._clears)

    def stats(self, now_ms: float) -> PlayoutStats:
        now = self._position(now_ms, check=False)
        played = sum(min(s.end, now) - s.start for s in self._segments if s.start < now)
        return PlayoutStats(
            played_ms=played / BYTES_PER_MS,
            cleared_ms=self._cleared / BYTES_PER_MS,
            pending_ms=max(0, self._end - now) / BYTES_PER_MS,
            clears=len(self._clears),
            marks_pending=len(self._marks),
        )

    def heard(self, now_ms: float) -> HeardAudio:
        """The caller-heard μ-law from position 0 to ``now_ms``, silence (0xFF) where nothing played."""
        now = self._position(now_ms, check=False)
        timeline = bytearray([ULAW_SILENCE]) * now
        spans = []
        for seg in self._segments:
            if seg.start >= now:
                break
            end = min(seg.end, now)
            timeline[seg.start : end] = seg.audio[: end - seg.start]
            spans.append((seg.start / BYTES_PER_MS, end / BYTES_PER_MS))
        return HeardAudio(bytes(timeline), self.stats(now_ms), tuple(spans))

    # -- helpers -----------------------------------------------------------------------------------

    def _position(self, now_ms: float, check: bool = True) -> int:
        if check:
            if now_ms < self._last_now:
                raise ValueError(f"now_ms went backwards: {now_ms} < {self._last_now}")
            self._last_now = now_ms
        if now_ms < 0:
            raise ValueError(f"now_ms is before the stream started: {now_ms}")
        return round(now_ms * BYTES_PER_MS)
