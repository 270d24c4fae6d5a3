"""Fill holes in a carrier's media stream with silence, from the media timestamps.

Why: carriers drop frames (packet loss upstream, a stalled media server) but stamp every frame
with its position in the stream (Twilio's ``media.timestamp``: ms since the stream started). If we
just concatenated what arrives, the model would hear speech glued across the hole and every later
timestamp we derive from "audio sent so far" (VAD offsets, barge-in truncation) would drift early.
Inserting the missing time as silence keeps the audio timeline equal to the carrier's clock.
"""

from __future__ import annotations

from .formats import ULAW_8K, AudioFormat, Encoding
from .g711 import ALAW_SILENCE, ULAW_SILENCE

_SILENT_SAMPLE = {
    Encoding.ULAW: bytes((ULAW_SILENCE,)),
    Encoding.ALAW: bytes((ALAW_SILENCE,)),
    Encoding.L16: b"\x00\x00",
}

__all__ = ["GapFiller"]


class GapFiller:
    """Per-stream gap detector for a stream of one audio format (μ-law 8 kHz by default).

    ``fill`` returns the payload, preceded by silence when the frame starts at least one frame
    later than the previous one ended. Smaller lateness is timestamp jitter, not loss, and is
    ignored (the timeline re-anchors on the frame). Frames stamped earlier than expected
    (duplicates, reordering) pass through untouched and do not move the expected time back.
    """

    __slots__ = ("_expected_units", "_frame_units", "_max_fill_samples", "_sample_bytes", "_sample_rate", "_silence")

    def __init__(
        self,
        frame_ms: int = 20,
        sample_rate: int | None = None,
        max_fill_ms: int = 2000,
        audio_format: AudioFormat = ULAW_8K,
    ) -> None:
        if sample_rate is None:
            sample_rate = audio_format.rate
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms!r}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
        if max_fill_ms < 0:
            raise ValueError(f"max_fill_ms must not be negative, got {max_fill_ms!r}")
        # Time is kept in "ms x sample_rate" units (= 1000 x samples) so payloads whose duration
        # is not a whole ms (e.g. 100 bytes = 12.5 ms) add up exactly, without float drift.
        self._sample_rate = sample_rate
        self._frame_units = frame_ms * sample_rate
        # The cap bounds allocation: a bogus timestamp must not make us build megabytes of silence.
        self._max_fill_samples = max_fill_ms * sample_rate // 1000
        self._silence = _SILENT_SAMPLE[audio_format.encoding]
        self._sample_bytes = audio_format.bytes_per_sample
        self._expected_units: int | None = None

    def fill(self, timestamp_ms: int, payload: bytes) -> bytes:
        """Return ``payload``, preceded by silence for any gap before ``timestamp_ms``."""
        start_units = timestamp_ms * self._sample_rate
        end_units = start_units + len(payload) // self._sample_bytes * 1000
        expected = self._expected_units
        if expected is None:
            # First frame: a late start is the stream's beginning, not lost audio.
            self._expected_units = end_units
            return payload
        gap_units = start_units - expected
        if gap_units < 0:
            # Duplicate or out of order: keep the furthest point reached.
            self._expected_units = max(expected, end_units)
            return payload
        self._expected_units = end_units
        if gap_units < self._frame_units:
            return payload
        fill_samples = min((gap_units + 500) // 1000, self._max_fill_samples)
        return self._silence * fill_samples + payload
