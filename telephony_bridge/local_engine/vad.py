"""Energy voice-activity detection for the local engine's simulated `server_vad` (pure: bytes in, events out).

The stream is cut into fixed windows (10 ms). A window is *voiced* when its RMS level reaches the
threshold. Speech starts once `min_speech_ms` of consecutive voiced windows have been seen; it stops
when `silence_duration_ms` of consecutive unvoiced windows follow (the hang-over). Positions are
counted in audio (`origin_ms` plus the samples fed since), never in wall time, so results are
the same however fast audio arrives.

The API's `threshold` (0.0..1.0, default 0.5) maps linearly onto a level in dBFS:

    level_dbfs = -70 + 60 * threshold        (0.0 -> -70 dBFS, 0.5 -> -40 dBFS, 1.0 -> -10 dBFS)

Telephone line noise sits around -60 dBFS and conversational speech around -30..-15 dBFS, so the
default triggers on speech and not on hiss; raising the threshold asks for louder speech.

Reported positions:
- `SpeechStarted.audio_start_ms`: the first voiced window minus `prefix_padding_ms` (the audio the
  model is given before the onset), clamped to `floor_ms` (the start of the uncommitted buffer).
- `SpeechStarted.speech_ms`: the onset itself, without padding.
- `SpeechStopped.audio_end_ms`: the end of the last voiced window. The event is produced only after
  the hang-over has elapsed in the stream, i.e. `silence_duration_ms` of audio later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SpeechStarted", "SpeechStopped", "VoiceActivityDetector", "threshold_to_dbfs"]


def threshold_to_dbfs(threshold: float) -> float:
    clamped = min(1.0, max(0.0, float(threshold)))
    return -70.0 + 60.0 * clamped


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int
    speech_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int


class VoiceActivityDetector:
    def __init__(
        self,
        sample_rate: int,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        window_ms: int = 10,
        min_speech_ms: int = 20,
        origin_ms: int = 0,
    ) -> None:
        if sample_rate % (1000 // window_ms) != 0:
            raise ValueError(f"sample rate {sample_rate} is not a whole number of {window_ms} ms windows")
        self.sample_rate = sample_rate
        self.window_ms = window_ms
        self.window_samples = sample_rate * window_ms // 1000
        self.prefix_padding_ms = max(0, int(prefix_padding_ms))
        self.silence_duration_ms = max(window_ms, int(silence_duration_ms))
        self.min_speech_ms = max(window_ms, int(min_speech_ms))
        level = threshold_to_dbfs(threshold)
        # Compare mean squares, not dB, to avoid a log per window.
        self._mean_square_threshold = (32768.0 * 10 ** (level / 20.0)) ** 2
        self.threshold_dbfs = level
        self._pending = b""
        self._samples_seen = 0  # samples of complete windows consumed
        self.in_speech = False
        self._voiced_run_start: int | None = None  # sample index where the current voiced run began
        self._last_voiced_end = 0  # sample index just past the last voiced window
        self._silent_samples = 0
        self.origin_ms = int(origin_ms)  # stream position of the first sample fed
        self.floor_ms = self.origin_ms

    @property
    def position_ms(self) -> int:
        """Stream position reached, in ms (complete windows only)."""
        return self.origin_ms + self._samples_seen * 1000 // self.sample_rate

    def reset(self, floor_ms: int | None = None) -> None:
        """Forget any speech in progress (buffer commit/clear); positions keep counting."""
        self.in_speech = False
        self._voiced_run_start = None
        self._silent_samples = 0
        if floor_ms is not None:
            self.floor_ms = floor_ms

    def _ms(self, samples: int) -> int:
        return self.origin_ms + round(samples * 1000 / self.sample_rate)

    def feed(self, pcm16: bytes) -> list[SpeechStarted | SpeechStopped]:
        data = self._pending + pcm16
        window_bytes = self.window_samples * 2
        whole = len(data) - len(data) % window_bytes
        self._pending = data[whole:]
        if whole == 0:
            return []
        samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.float64).reshape(-1, self.window_samples)
        voiced = np.mean(samples * samples, axis=1) >= self._mean_square_threshold
        events: list[SpeechStarted | SpeechStopped] = []
        min_speech = self.min_speech_ms * self.sample_rate // 1000
        silence = self.silence_duration_ms * self.sample_rate // 1000
        for is_voiced in voiced.tolist():
            start = self._samples_seen
            end = start + self.window_samples
            self._samples_seen = end
            if is_voiced:
                if self._voiced_run_start is None:
                    self._voiced_run_start = start
                self._last_voiced_end = end
                self._silent_samples = 0
                if not self.in_speech and end - self._voiced_run_start >= min_speech:
                    self.in_speech = True
                    onset_ms = self._ms(self._voiced_run_start)
                    padded = max(self.floor_ms, onset_ms - self.prefix_padding_ms, 0)
                    events.append(SpeechStarted(audio_start_ms=padded, speech_ms=onset_ms))
            else:
                self._silent_samples += self.window_samples
                if not self.in_speech:
                    self._voiced_run_start = None
                elif self._silent_samples >= silence:
                    self.in_speech = False
                    self._voiced_run_start = None
                    events.append(SpeechStopped(audio_end_ms=self._ms(self._last_voiced_end)))
        return events
