"""WebRTC audio frames <-> the project's PCM16 bytes (little-endian, mono, at the leg's rate).

Incoming (``IncomingAudio``): aiortc decodes Opus to s16 48 kHz stereo (PCMU to s16 8 kHz mono);
one frame is turned into mono by averaging its channels (exact for the usual case, a mono source
sent as stereo, whose channels are equal) and resampled to the leg's rate with ONE streaming
``Resampler`` kept for the life of the stream: never a frame on its own (clicks at every frame
edge), and a single resampling step (48 kHz -> 24 kHz is the integer 2:1 path).

Outgoing (``OutgoingAudioTrack``): a ``MediaStreamTrack`` fed with PCM16 at the leg's rate and
read by aiortc's sender, one 20 ms frame at a time, paced on the event loop's clock. The frames
stay at the leg's rate: aiortc's encoders convert whatever they are given to what the codec takes
(Opus: 48 kHz stereo, PCMU: 8 kHz mono) with one libswresample context per sender, which also
runs for 48 kHz input, so resampling here as well would be a second conversion for nothing.
When no audio is queued the track sends silence: a WebRTC audio track never pauses (the far
end's jitter buffer and the RTP clock expect a steady stream).

Both are per stream and not thread-safe: a stream is driven by one task.
"""

from __future__ import annotations

import asyncio
import fractions
import math
from collections.abc import AsyncIterator, Callable

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from ..audio.resample import Resampler

__all__ = [
    "FRAME_MS",
    "IncomingAudio",
    "OutgoingAudioTrack",
    "audio_level_dbov",
    "frame_to_mono_pcm16",
    "pcm16_from_track",
]

FRAME_MS = 20  # WebRTC audio packetization (aiortc's AUDIO_PTIME)
_PCM16 = np.dtype("<i2")
# Further behind its clock than this (an event loop stalled by a busy machine), the track
# re-anchors its clock instead of sending the backlog as a burst the far end would have to absorb.
_MAX_LAG_S = 0.1


def frame_to_mono_pcm16(frame: AudioFrame) -> np.ndarray:
    """The samples of an s16 frame (packed or planar, any channel count) as mono int16.

    Read straight from the frame's planes (a plane may be padded past the samples): PyAV's
    `to_ndarray` costs three times as much per 20 ms frame, on every frame of every call."""
    fmt = frame.format.name
    channels = len(frame.layout.channels)
    if fmt not in ("s16", "s16p"):
        raise ValueError(f"unsupported audio frame format {fmt!r} (s16 or s16p expected)")
    samples = frame.samples
    if fmt == "s16":  # one plane, channels interleaved
        data = np.frombuffer(memoryview(frame.planes[0])[: 2 * samples * channels], dtype=_PCM16)
        if channels == 1:
            return data
        if channels == 2:
            # Sum in int32 then halve (floor): no overflow, and equal channels come back bit-exact.
            return ((data[0::2].astype(np.int32) + data[1::2]) >> 1).astype(_PCM16)
        return (data.reshape(-1, channels).astype(np.int32).sum(axis=1) // channels).astype(_PCM16)
    planes = [np.frombuffer(memoryview(plane)[: 2 * samples], dtype=_PCM16) for plane in frame.planes[:channels]]
    if channels == 1:
        return planes[0]
    mixed = np.stack(planes).astype(np.int32).sum(axis=0) // channels
    return mixed.astype(_PCM16)


def audio_level_dbov(frame: AudioFrame) -> int:
    """aiortc's `rtp.compute_audio_level_dbov` (RFC 6465 audio level of a frame it sends), the same
    number from the same bytes, in numpy: aiortc loops over the samples in Python, ~0.13 ms a 20 ms
    frame here, on every frame of every call. Installed by `peer.new_peer_connection`."""
    samples = np.frombuffer(bytes(frame.planes[0]), dtype=_PCM16).astype(np.int64)
    energy = float(np.dot(samples, samples))  # exact: < 2**53 for any frame aiortc sends
    rms = math.sqrt(energy / (frame.samples * 32767 * 32767))
    if rms <= 0:
        return -127
    return round(min(max(20 * math.log10(rms), -127), 0))


class IncomingAudio:
    """Frames of one received track -> PCM16 mono at ``rate``, with the resampler's state carried."""

    __slots__ = ("_resampler", "rate")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler: Resampler | None = None

    def pcm16(self, frame: AudioFrame) -> bytes:
        """The next frame's audio at ``rate`` (all output complete so far; see ``Resampler``)."""
        samples = frame_to_mono_pcm16(frame)
        source_rate = frame.sample_rate
        if source_rate == self.rate:
            return samples.tobytes()
        resampler = self._resampler
        if resampler is None or resampler.from_rate != source_rate:
            # A new stream, or the far end switched codec (renegotiation): a new resampler.
            resampler = self._resampler = Resampler(source_rate, self.rate)
        return resampler.process(samples.tobytes())

    def reset(self) -> None:
        """Forget the stream (resampler history), e.g. when the track is replaced."""
        self._resampler = None


async def pcm16_from_track(track: MediaStreamTrack, rate: int) -> AsyncIterator[bytes]:
    """PCM16 at ``rate`` from a received audio track until it ends (``MediaStreamError``)."""
    incoming = IncomingAudio(rate)
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, AudioFrame):
            yield incoming.pcm16(frame)


class OutgoingAudioTrack(MediaStreamTrack):
    """An audio track fed with PCM16 mono at ``rate``; aiortc's sender pulls 20 ms frames.

    ``write`` queues audio (any length; an odd trailing byte waits for its other half);
    ``clear`` drops what is queued (barge-in) and returns how many ms it dropped. ``sent_ms`` is
    the queued audio handed to the sender so far (silence padding not counted): with a paced
    sender that is what has been sent, by the clock.
    """

    kind = "audio"

    def __init__(self, rate: int, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        if rate % (1000 // FRAME_MS):
            raise ValueError(f"rate {rate} Hz is not a whole number of samples per {FRAME_MS} ms")
        self.rate = rate
        self.samples_per_frame = rate * FRAME_MS // 1000
        self._frame_bytes = 2 * self.samples_per_frame
        self._time_base = fractions.Fraction(1, rate)
        self._queue = bytearray()
        self._half = b""
        self._clock = clock
        self._start: float | None = None
        self._frames = 0
        self._sent_bytes = 0
        self.on_drained: Callable[[], None] | None = None
        self.on_frame: Callable[[], None] | None = None
        self.written_bytes = 0
        self._cleared_bytes = 0

    @property
    def buffered_ms(self) -> float:
        return len(self._queue) / (2 * self.rate) * 1000

    @property
    def sent_ms(self) -> float:
        return self._sent_bytes / (2 * self.rate) * 1000

    @property
    def consumed_bytes(self) -> int:
        return self._sent_bytes + self._cleared_bytes

    def write(self, pcm16: bytes) -> None:
        if self._half:
            pcm16 = self._half + pcm16
            self._half = b""
        if len(pcm16) & 1:
            self._half = pcm16[-1:]
            pcm16 = pcm16[:-1]
        self._queue += pcm16
        self.written_bytes += len(pcm16)

    def clear(self) -> float:
        dropped = self.buffered_ms
        self._cleared_bytes += len(self._queue)
        self._queue.clear()
        self._half = b""
        return dropped

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._now()
        if self._start is None:
            self._start = now
        due = self._start + self._frames * FRAME_MS / 1000
        if now - due > _MAX_LAG_S:
            self._start = now - self._frames * FRAME_MS / 1000
        elif due > now:
            await asyncio.sleep(due - now)
        if self.readyState != "live":  # stopped while waiting
            raise MediaStreamError
        return self._next_frame()

    def _next_frame(self) -> AudioFrame:
        size = self._frame_bytes
        chunk = bytes(self._queue[:size])
        del self._queue[:size]
        self._sent_bytes += len(chunk)
        if chunk and not self._queue and self.on_drained is not None:
            self.on_drained()
        if self.on_frame is not None:
            self.on_frame()
        if len(chunk) < size:
            chunk += bytes(size - len(chunk))
        frame = AudioFrame(format="s16", layout="mono", samples=self.samples_per_frame)
        frame.planes[0].update(chunk)
        frame.sample_rate = self.rate
        frame.pts = self._frames * self.samples_per_frame
        frame.time_base = self._time_base
        self._frames += 1
        return frame
