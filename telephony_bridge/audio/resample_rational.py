"""The rational-ratio core of ``Resampler`` (e.g. 16 kHz <-> 24 kHz, ratio 3:2 and 2:3).

Conceptually: upsample by ``up`` (zero stuffing) to the common rate ``up * from_rate``, low-pass
there, keep every ``down``-th sample. Run as a polyphase filter, only the products that reach a
kept output are computed: output ``k`` sits at common-rate position ``k * down``, its newest input
is ``n0 = (k * down + center) // up`` and its taps are every ``up``-th coefficient starting at
phase ``q = (k * down + center) % up``. The pattern repeats every ``up`` outputs (which consume
``down`` inputs), so a block is one strided window copy and one matrix product: each row is the
input span of ``up`` consecutive outputs, each column one output's taps placed at its offset in
that span. There are ``up`` such matrices, one for each phase a row can start at, since a chunk
may end anywhere in the pattern.

The filter (Kaiser-windowed sinc at the common rate, designed once per ratio) is stated relative
to the LOW rate's Nyquist, as the integer path's is, but with a narrower transition because a
16 kHz leg should keep speech up to ~7 kHz. Measured on 16k <-> 24k (97 taps at 48 kHz, with
tests/unit/test_resample_rational.py's tones): passband within 0.24 dB up to 7 kHz (-0.237 dB
at 7 kHz, < 0.01 dB below 6.5 kHz); upsampling images of 300-7000 Hz tones <= -80 dB (worst:
7 kHz -> 9 kHz); downsampling aliases <= -79.9 dB for 9-12 kHz (8.5 kHz, folding to 7.5 kHz
outside the passband, is only 26 dB down: the transition band); group delay 1.0 ms each way.
8k <-> 12k gets the same response at half the frequencies.

Timing and exactness follow ``resample.py``: output ``k`` is aligned with input time
``k * down / up`` (group delay compensated in the indexing, held back as real latency until the
input that completes an output has arrived); coefficients are multiples of 2**-24, so every dot
product is exact in float64 and the output does not depend on how the input is chunked. Where a
matrix row's span reaches past the samples received so far, the columns of outputs that are not
yet due read stale (finite) buffer values and are discarded; every due output's column is zero
there, so those values cannot leak into it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_RATIO_TERM", "RationalResampler"]

_PCM16 = np.dtype("<i2")
_F64 = np.dtype(np.float64)
_F64_SIZE = _F64.itemsize

#: Largest numerator or denominator of a reduced rate ratio accepted (3:2, 5:4 yes; 147:160 no:
#: the filter and its phase matrices grow with it, and no carrier leg needs such ratios).
MAX_RATIO_TERM = 6

# Tuned numerically for 3:2 (common rate 48 kHz, low rate 16 kHz): passband ripple <= 0.24 dB
# up to 0.875 of the low Nyquist (7 kHz), stopband <= -75 dB from 1.125 (9 kHz: where the image
# of a 7 kHz tone lands, and what folds onto 7 kHz when decimating).
_DELAY_LOW_RATE_SAMPLES = 16  # 1 ms at 16 kHz
_CUTOFF_OF_LOW_NYQUIST = 0.975
_KAISER_BETA = 7.5
_COEFFICIENT_QUANTUM = 2.0**-24
_MAX_BLOCK_SAMPLES = 4800  # as resample.py: bounds the scratch buffer and the window matrix


@dataclass(frozen=True, slots=True)
class _RationalFilter:
    up: int
    down: int
    center: int  # group delay in common-rate samples; a multiple of up * down
    branch_len: int  # taps per output
    # Indexed by the phase (output index mod up) at which a matrix row starts:
    offsets: tuple[tuple[int, ...], ...]  # [p]: n0 of output p of the row minus n0 of output 0
    due: tuple[tuple[int, ...], ...]  # [r]: outputs of a row due when r inputs lie past its n0
    banks: tuple[np.ndarray, ...]  # (span, up) tap matrices
    phase_q: tuple[int, ...]  # coefficient phase q of an output at each row phase


@functools.cache
def _design(up: int, down: int) -> _RationalFilter:
    ratio = max(up, down)  # common rate / low rate
    cutoff = _CUTOFF_OF_LOW_NYQUIST / (2 * ratio)  # cycles per common-rate sample
    # A multiple of up * down keeps delay_ms an exact number of samples at both rates.
    center = -(-_DELAY_LOW_RATE_SAMPLES * ratio // (up * down)) * up * down
    taps = 2 * center + 1
    t = np.arange(taps) - center
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(taps, _KAISER_BETA)
    h *= up / h.sum()  # zero stuffing divides the level by `up`: DC gain `up` restores it
    h = np.round(h / _COEFFICIENT_QUANTUM) * _COEFFICIENT_QUANTUM
    branch_len = -(-taps // up)

    def n0(k: int) -> int:
        return (k * down + center) // up

    offsets, due, banks, phase_q = [], [], [], []
    for start in range(up):
        row = [n0(start + p) - n0(start) for p in range(up + 1)]  # row[up] == down
        span = branch_len + row[up - 1]
        bank = np.zeros((span, up))
        for p in range(up):
            q = ((start + p) * down + center) % up
            for j in range(branch_len):
                if q + j * up < taps:
                    # Input n0 - j of output p sits at branch_len - 1 + row[p] - j in the span.
                    bank[branch_len - 1 + row[p] - j, p] = h[q + j * up]
        bank.flags.writeable = False
        offsets.append(tuple(row))
        due.append(tuple(sum(1 for d in row[:up] if d <= r) for r in range(down)))
        banks.append(bank)
        phase_q.append((start * down + center) % up)
    return _RationalFilter(up, down, center, branch_len, tuple(offsets), tuple(due), tuple(banks), tuple(phase_q))


def reduced_ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """(up, down) with ``to_rate / from_rate == up / down`` in lowest terms."""
    common = math.gcd(from_rate, to_rate)
    return to_rate // common, from_rate // common


# numpy's clip ufunc itself, for every frame's rounding to PCM16: `np.clip` reaches it through
# Python-level dispatch that costs more than clipping a frame, and minimum + maximum are two ufunc
# calls; the ufunc saves 6,600 of the 26,000 instructions this takes per frame (bench/README.md,
# issue 22). It lives in numpy's private `_core` (numpy 2), hence the fallback.
try:
    from numpy._core.umath import clip as _clip_ufunc  # type: ignore[attr-defined]
except ImportError:  # another numpy layout
    _clip_ufunc = None


def to_pcm16(signal: np.ndarray) -> bytes:
    """Round and saturate float samples to little-endian PCM16, in place (`signal` is a temporary)."""
    np.rint(signal, out=signal)
    if _clip_ufunc is not None:
        _clip_ufunc(signal, -32768.0, 32767.0, out=signal)
    else:
        np.minimum(signal, 32767.0, out=signal)
        np.maximum(signal, -32768.0, out=signal)
    return signal.astype(_PCM16).tobytes()


class RationalResampler:
    """Streaming PCM16 resampler for a reduced ratio ``up:down`` with both terms > 1.

    Use it through ``resample.Resampler``, which checks its input; this class takes int16
    arrays. State carried between calls: the last ``branch_len - 1`` input samples, the phase of
    the next output in the ``up``-periodic pattern, and how many inputs must still arrive before
    that output is due.
    """

    __slots__ = ("_buffer", "_filter", "_history_len", "_phase", "_skip", "from_rate")

    def __init__(self, from_rate: int, to_rate: int) -> None:
        up, down = reduced_ratio(from_rate, to_rate)
        if min(up, down) < 2 or max(up, down) > MAX_RATIO_TERM:
            raise ValueError(f"no rational resampler for {from_rate} -> {to_rate} Hz")
        self.from_rate = from_rate
        self._filter = spec = _design(up, down)
        self._history_len = spec.branch_len - 1
        # Room for a block, plus the overhang of a last matrix row that reaches past it.
        self._buffer = np.zeros(self._history_len + _MAX_BLOCK_SAMPLES + down)
        self._phase = 0
        self._skip = 0
        self.reset()

    @property
    def delay_ms(self) -> float:
        return self._filter.center * 1000.0 / (self._filter.up * self.from_rate)

    def reset(self) -> None:
        self._buffer[:] = 0.0
        spec = self._filter
        self._phase = 0
        self._skip = spec.center // spec.up  # n0 of output 0: the input that completes it

    def process(self, samples: np.ndarray) -> bytes:
        if samples.size <= _MAX_BLOCK_SAMPLES:
            return self._block(samples)
        return b"".join(
            self._block(samples[start : start + _MAX_BLOCK_SAMPLES])
            for start in range(0, samples.size, _MAX_BLOCK_SAMPLES)
        )

    def flush(self) -> bytes:
        """Complete the stream with silence: a stream of ``n`` input samples yields exactly
        ``ceil(n * up / down)`` output samples in all. Then reset."""
        spec, phase, skip = self._filter, self._phase, self._skip
        # inputs_so_far * up - next_output * down, rewritten with n0 = inputs_so_far + skip.
        remaining = -(-(spec.center - spec.phase_q[phase] - skip * spec.up) // spec.down)
        tail = b""
        if remaining > 0:
            groups, p = divmod(remaining - 1, spec.up)
            last_n0 = skip + groups * spec.down + spec.offsets[phase][p]
            tail = self.process(np.zeros(last_n0 + 1, dtype=_PCM16))[: 2 * remaining]
        self.reset()
        return tail

    def _block(self, samples: np.ndarray) -> bytes:
        spec, n, history, buffer = self._filter, samples.size, self._history_len, self._buffer
        buffer[history : history + n] = samples
        skip, phase = self._skip, self._phase
        out = b""
        if skip < n:
            up, down = spec.up, spec.down
            groups, rest = divmod(n - 1 - skip, down)
            count = up * groups + spec.due[phase][rest]
            bank = spec.banks[phase]
            # Row g: the span of outputs g*up .. g*up+up-1 of this call, stepping by `down`.
            windows = np.ndarray(
                (-(-count // up), bank.shape[0]),
                _F64,
                buffer,
                (history + skip - spec.branch_len + 1) * _F64_SIZE,
                (down * _F64_SIZE, _F64_SIZE),
            )
            signal = (np.ascontiguousarray(windows) @ bank).ravel()
            out = to_pcm16(signal[:count])
            groups, p = divmod(count, up)
            skip += groups * down + spec.offsets[phase][p]
            self._phase = (phase + p) % up
        self._skip = skip - n
        buffer[:history] = buffer[n : n + history]
        return out
