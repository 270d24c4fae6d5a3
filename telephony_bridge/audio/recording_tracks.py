"""The two tracks of a call recording, built from plain data: pure, no clock, no I/O.

- **caller** (left): the caller's frames as the carrier delivered them, back to back from the first
  frame's arrival (the carrier's media clock is the truth; the bridge's gap filling has already put
  silence where the carrier skipped). If frames stop coming (a carrier that sends nothing in
  silence and has no timestamps), the track is padded with silence up to what is being rendered,
  so it never drifts behind the other one by more than one render.
- **heard** (right): what the caller heard of everything the call's Playout wrote. The far end is
  modelled as the carrier's playout buffer: each write plays, in order, from when it could reach
  the ear (`at_ms`: when it was sent for a carrier with marks, its paced time plus the carrier's lead
  for a clock carrier), or right after what was queued before it; a clear drops everything that had
  not played by then. So what a barge-in flushed is not in the recording, and an answer cut at the
  heard position is cut there in the recording too.

Both render incrementally: `take(until_ms)` returns the track from where the last take stopped, in
the carrier's format, silence (the format's own silence byte) where nothing played. Audio before
`until_ms` is final once `until_ms` is now: nothing written later can play earlier, and a clear
only drops what is after it. Times are milliseconds on one clock, relative to anything (the
recording's start is a natural zero); positions are whole samples.
"""

from __future__ import annotations

from collections import deque

from telephony_bridge.audio.formats import AudioFormat, Encoding

__all__ = ["CallerTrack", "HeardTrack", "silence"]

_SILENCE_BYTE = {Encoding.ULAW: b"\xff", Encoding.ALAW: b"\xd5", Encoding.L16: b"\x00\x00"}


def silence(audio_format: AudioFormat, samples: int) -> bytes:
    """`samples` samples of digital silence in `audio_format`."""
    return _SILENCE_BYTE[audio_format.encoding] * max(0, samples)


class _Track:
    def __init__(self, audio_format: AudioFormat, origin_ms: float = 0.0) -> None:
        self.audio_format = audio_format
        self._origin_ms = origin_ms
        self._rate_per_ms = audio_format.rate / 1000
        self._width = audio_format.bytes_per_sample
        self.taken = 0  # samples rendered so far

    def position(self, at_ms: float) -> int:
        """The sample at `at_ms` (never before the track's start)."""
        return max(0, round((at_ms - self._origin_ms) * self._rate_per_ms))

    def duration_ms(self) -> float:
        return self.taken / self._rate_per_ms


class _Segment:
    """Audio queued back to back from sample `start`."""

    __slots__ = ("audio", "start")

    def __init__(self, start: int, audio: bytearray) -> None:
        self.start = start
        self.audio = audio


class HeardTrack(_Track):
    """The far end's playout buffer: writes queue in order, a clear drops what has not played."""

    def __init__(self, audio_format: AudioFormat, origin_ms: float = 0.0) -> None:
        super().__init__(audio_format, origin_ms)
        self._segments: deque[_Segment] = deque()  # back to back or with gaps
        self._end = 0  # the sample where queued audio runs out

    def write(self, at_ms: float, audio: bytes) -> None:
        samples = len(audio) // self._width
        if not samples:
            return
        start = max(self.position(at_ms), self.taken)  # nothing plays in the part already rendered
        segments = self._segments
        if segments and self._end >= start:  # still playing: this follows without a gap
            segments[-1].audio += audio[: samples * self._width]
        else:
            segments.append(_Segment(start, bytearray(audio[: samples * self._width])))
        self._end = max(start, self._end) + samples

    def clear(self, at_ms: float) -> None:
        """Everything not played by `at_ms` is dropped (it was flushed, nobody heard it)."""
        at = max(self.position(at_ms), self.taken)
        segments, width = self._segments, self._width
        while segments:
            last = segments[-1]
            if last.start >= at:
                segments.pop()
                continue
            del last.audio[(at - last.start) * width :]
            break
        self._end = min(self._end, at)

    def take(self, until_ms: float) -> bytes:
        """The heard audio from the last take to `until_ms`, silence where nothing played."""
        until = self.position(until_ms)
        if until <= self.taken:
            return b""
        width, out = self._width, bytearray()
        cursor = self.taken
        segments = self._segments
        while segments and cursor < until:
            start, audio = segments[0].start, segments[0].audio
            end = start + len(audio) // width
            if end <= cursor:
                segments.popleft()
                continue
            if start > cursor:
                gap = min(start, until) - cursor
                out += silence(self.audio_format, gap)
                cursor += gap
                continue
            stop = min(end, until)
            out += audio[(cursor - start) * width : (stop - start) * width]
            cursor = stop
            if stop == end:
                segments.popleft()
        out += silence(self.audio_format, until - cursor)
        self.taken = until
        return bytes(out)

    @property
    def pending_bytes(self) -> int:
        """Audio written and not yet rendered (what a recording holds in memory)."""
        return sum(len(segment.audio) for segment in self._segments)


class CallerTrack(_Track):
    """The caller's frames back to back from the first one's arrival."""

    def __init__(self, audio_format: AudioFormat, origin_ms: float = 0.0) -> None:
        super().__init__(audio_format, origin_ms)
        self._pending = bytearray()
        self._started = False

    def frames(self, first_at_ms: float, frames: list[bytes]) -> None:
        """Frames received since the last call; `first_at_ms`, when the first of them arrived,
        places the track's start (it is read only once: later frames follow back to back)."""
        if not frames:
            return
        if not self._started:
            self._started = True
            self._pending += silence(self.audio_format, self.position(first_at_ms) - self.taken)
        for frame in frames:
            self._pending += frame

    def take(self, until_ms: float, *, to_end: bool = False) -> bytes:
        """The caller's audio from the last take to `until_ms` (padded with silence when frames are
        missing); with `to_end`, also every frame received beyond it (the end of the recording)."""
        until = self.position(until_ms)
        width = self._width
        have = len(self._pending) // width
        count = max(until - self.taken, have if to_end else 0)
        if count <= 0:
            return b""
        out = bytes(self._pending[: count * width])
        del self._pending[: count * width]
        if len(out) < count * width:
            out += silence(self.audio_format, count - len(out) // width)
        self.taken += count
        return out

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)
