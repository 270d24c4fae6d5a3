"""A pytest plugin that puts python-soxr behind ``Resampler``'s API, to see which of our audio tests
a drop-in soxr would fail (bench/README.md, "A C streaming resampler (python-soxr)"). Not a test and
not part of the bridge:

    SOXR_SHIM_QUALITY=HQ SOXR_SHIM_DTYPE=int16 PYTHONPATH=$PWD .venv/bin/python -m pytest -p bench.soxr_shim \\
        tests/unit/test_resample.py tests/unit/test_resample_rational.py tests/unit/test_convert.py -q

``SOXR_SHIM_DTYPE=float32`` runs soxr in float32 and rounds to int16 here (no dither). The plugin is
imported before the test modules, so their ``from ... import Resampler`` picks up the shim.
"""

from __future__ import annotations

import os

import numpy as np
import soxr

import telephony_bridge.audio.convert as convert_module
import telephony_bridge.audio.resample as resample_module

_QUALITY = os.environ.get("SOXR_SHIM_QUALITY", "HQ")
_DTYPE = np.dtype(os.environ.get("SOXR_SHIM_DTYPE", "int16"))
_OURS = resample_module.Resampler


def _pcm16(out: np.ndarray) -> bytes:
    if out.dtype == np.int16:
        return out.tobytes()
    return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


class SoxrResampler:
    def __init__(self, from_rate: int, to_rate: int) -> None:
        _OURS(from_rate, to_rate)  # the same argument checks and the same refusals
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = (
            None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1, dtype=_DTYPE, quality=_QUALITY)
        )

    @property
    def delay_ms(self) -> float:
        # soxr states no fixed delay: this is the output pending now (0 before any input).
        return 0.0 if self._stream is None else self._stream.delay() * 1000 / self.to_rate

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.clear()

    def process(self, pcm16: bytes) -> bytes:
        if len(pcm16) % 2:
            raise ValueError("PCM16 input must have an even number of bytes")
        return self.process_samples(np.frombuffer(pcm16, dtype="<i2"))

    def process_samples(self, samples: np.ndarray) -> bytes:
        if self._stream is None:
            return samples.astype("<i2").tobytes()
        return _pcm16(self._stream.resample_chunk(np.ascontiguousarray(samples, dtype=_DTYPE)))

    def flush(self) -> bytes:
        if self._stream is None:
            return b""
        tail = _pcm16(self._stream.resample_chunk(np.zeros(0, _DTYPE), last=True))
        self._stream.clear()
        return tail


resample_module.Resampler = SoxrResampler  # type: ignore[misc,assignment]
convert_module.Resampler = SoxrResampler  # type: ignore[misc,assignment]
