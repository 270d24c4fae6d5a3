"""The agent's audio to the softphone: an outgoing track that is silent by sending nothing.

webrtc/audio_frames.py's `OutgoingAudioTrack` sends silence whenever it has no audio, which is
right for a model leg but leaves the page unable to tell the agent's audio from that silence
except by its energy (Chromium's audio level is smoothed over a few hundred ms, so that is not
exact). This track sends RTP only while the agent talks, as Opus DTX would: between stretches of
speech the RTP clock jumps by the silence, and the browser's jitter buffer fills the gap with
concealment, which its statistics count apart (`concealedSamples`). So the page's decoded samples
less the concealed ones are the agent's audio it played: `heardSeconds`, measured in the page.

Each stretch is framed by one frame of silence on each side, for Opus: its encoder holds back
6.5 ms of each frame (look-ahead), and the first packet after a jump still carries the old
timeline, so the trailing frame pushes the stretch's last audio out and the leading one is what
that stale packet carries. The page counts those frames as heard too: it may over-count by up to
two frames (40 ms) per stretch of speech, never under-count (docs/softphone.md).

The Playout paces the audio (20 ms frames on the loop's clock); this track keeps each stretch on
its own 20 ms timeline and does not add a second pace: a frame late by a loop stall goes out at
once, on the timeline, for the jitter buffer to absorb. A stretch ends when no audio came for
`STRETCH_END_S`.
"""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable
from enum import Enum
from typing import Final

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

__all__ = ["FRAME_MS", "STRETCH_END_S", "TalkTrack"]

FRAME_MS: Final = 20
# Longer than the Playout's pace plus a loop stall on a busy machine; shorter than any pause a
# caller would notice. A stretch that ends this way only costs the two framing frames.
STRETCH_END_S: Final = 0.08
# Frames of silence before and after each stretch: aiortc's Opus encoder holds back a frame in its
# 24 -> 48 kHz resampler plus the codec's 6.5 ms look-ahead, so two frames carry a stretch's end
# out, and the first two packets after a jump still carry the old timeline (the jitter buffer
# drops them as late, or plays their silence).
FRAMING: Final = 2


class _Stage(Enum):
    IDLE = "idle"  # nothing is sent
    TALKING = "talking"  # a stretch of speech: audio frames (its leading silence first)
    TRAILING = "trailing"  # the stretch's trailing silence


class TalkTrack(MediaStreamTrack):
    """PCM16 mono at `rate` in (`write`); 20 ms frames out while there is audio, nothing between."""

    kind = "audio"

    def __init__(self, rate: int, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self._clock = clock  # seconds; the loop's time by default
        self.rate = rate
        self._frame_bytes = rate * FRAME_MS // 1000 * 2
        self._time_base = fractions.Fraction(1, rate)
        self._queue = bytearray()
        self._written = asyncio.Event()
        self._origin: float | None = None  # the loop's time at pts 0
        self._pts = 0  # where the next frame goes on the RTP timeline (samples)
        self._stage = _Stage.IDLE
        self._framing = 0  # frames of silence still to send before (or after) the stretch's audio
        self._sent_bytes = 0
        self.stretches = 0  # stretches of speech sent (each framed by two frames of silence)

    @property
    def sent_ms(self) -> float:
        """The agent's audio handed to the encoder (the framing silence not counted)."""
        return self._sent_bytes / (2 * self.rate) * 1000

    def write(self, pcm16: bytes) -> None:
        self._queue += pcm16[: len(pcm16) & ~1]
        self._written.set()

    def stop(self) -> None:
        super().stop()
        self._written.set()

    async def recv(self) -> AudioFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._framing:  # the leading or trailing frames of silence of a stretch
                self._framing -= 1
                if self._stage is _Stage.TRAILING and not self._framing:
                    self._stage = _Stage.IDLE
                return self._frame(b"")
            if self._queue:
                if self._stage is not _Stage.TALKING:
                    self._start_stretch()
                    continue
                chunk = bytes(self._queue[: self._frame_bytes])
                del self._queue[: self._frame_bytes]
                self._sent_bytes += len(chunk)
                return self._frame(chunk)
            self._written.clear()
            if self._stage is not _Stage.TALKING:
                await self._written.wait()
                continue
            try:
                async with asyncio.timeout(STRETCH_END_S):
                    await self._written.wait()
            except TimeoutError:
                self._stage, self._framing = _Stage.TRAILING, FRAMING

    def _start_stretch(self) -> None:
        self._stage, self._framing = _Stage.TALKING, FRAMING
        self.stretches += 1
        now = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = now
        # The timeline jumps by the silence, so the browser conceals the gap rather than playing
        # this stretch late; the leading frames of silence carry the jump.
        self._pts = max(self._pts, round((now - self._origin) * self.rate))

    def _frame(self, chunk: bytes) -> AudioFrame:
        samples = self._frame_bytes // 2
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(chunk + bytes(self._frame_bytes - len(chunk)))
        frame.sample_rate = self.rate
        frame.time_base = self._time_base
        frame.pts = self._pts
        self._pts += samples
        return frame
