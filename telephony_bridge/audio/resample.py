"""Streaming resampler for PCM16 (8 kHz <-> 24 kHz, 8k <-> 16k, 16k <-> 24k on the hot path).

Why a polyphase FIR of our own (numbers in shared/reference/audio.md):
- ``audioop.ratecv`` has no anti-image / anti-alias filter (24k -> 8k folds 5 kHz onto 3 kHz);
- soxr's streaming HQ mode buffers 43-73 ms, and latency is the first thing callers notice (every
  python-soxr recipe measured against this one: bench/resampler_soxr.py, bench/README.md);
- resampling each frame on its own clicks at every frame edge.

So: one linear-phase Kaiser-windowed sinc per integer factor, designed once and cached, run as a
polyphase filter whose history (and, when decimating, phase) is carried across calls. Output is
bit-identical however the input is chunked, down to one sample at a time. Ratios that are not
integers (16k <-> 24k is 3:2) go to the polyphase core in ``resample_rational.py``, which follows
the same conventions; this module's integer path is unchanged by it.

Timing convention: output sample ``t`` (at the output rate) corresponds to input time ``t``; the
filter's group delay is compensated in the indexing, not left in the signal. The delay is still
real: ``process()`` holds back the last ``delay_ms`` of output until the input that completes it
has arrived, and ``flush()`` releases it (feeding silence), so a whole stream of ``n`` input
samples yields exactly ``n * factor`` (up) or ``ceil(n / factor)`` (down) output samples. That keeps
"ms of audio in" equal to "ms of audio out", which the playback ledger's arithmetic relies on.

Exactness: coefficients are rounded to multiples of 2**-24, so every product of a coefficient and
an int16 sample, and every partial sum, is a float64 integer multiple of 2**-24 well below 2**53.
The dot products are therefore exact whatever order BLAS sums them in, which is what makes the
output independent of chunk boundaries (and of the machine's BLAS kernel).

Two implementations of the integer-ratio filter, the same bytes: `_polyphase.c` (built by the
install when there is a C compiler; one call per chunk, G.711 folded in for Converter) and numpy
(always there). Per 20 ms frame numpy's call overhead, BLAS's packing and the strided window copy
cost more than the multiply-adds, which is why the compiled one exists (bench/README.md, issue 22).
Both keep their state in the same buffer, so either can continue the other's stream.
"""

from __future__ import annotations

import functools
import importlib
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .resample_rational import MAX_RATIO_TERM, RationalResampler, reduced_ratio, to_pcm16

__all__ = ["NATIVE", "Resampler"]


def _load_native() -> ModuleType | None:
    """The compiled kernels (_polyphase.c), when the build had a C compiler; the numpy path gives
    the same bytes. TELEPHONY_BRIDGE_NO_SPEEDUPS=1 turns them off, as benchmarks do to compare."""
    if os.environ.get("TELEPHONY_BRIDGE_NO_SPEEDUPS"):
        return None
    try:
        return importlib.import_module(f"{__package__}._polyphase")
    except ImportError:
        return None


# Read by each Resampler when it is made: tests set it to None to run the numpy path.
NATIVE: ModuleType | None = _load_native()

_PCM16 = np.dtype("<i2")
_F64 = np.dtype(np.float64)
_F64_SIZE = _F64.itemsize

# The design is stated relative to the LOW rate, so every factor gets the same response in
# low-rate terms (e.g. 8k<->24k and 8k<->16k both pass 300-3400 Hz and reject >= 4600 Hz).
# Tuned numerically for factor 3: 73 taps, passband within 0.5 dB up to 0.85 of low-rate Nyquist
# (3400 Hz at 8 kHz), stopband <= -71 dB from 1.15 of it (4600 Hz, the image of a 3400 Hz tone).
_DELAY_LOW_RATE_SAMPLES = 12  # group delay: 12 low-rate samples = 1.5 ms at 8 kHz
_CUTOFF_OF_LOW_NYQUIST = 0.96  # -6 dB point: 3840 Hz at 8 kHz
_KAISER_BETA = 7.1
_COEFFICIENT_QUANTUM = 2.0**-24

# Large inputs (a whole prompt at once) are cut into blocks so the scratch buffer and the
# window matrix stay small; chunking does not change the output, so this is invisible. 4800
# input samples: a 100 ms model delta at 24 kHz is one block (measured ~20 % cheaper per delta).
_MAX_BLOCK_SAMPLES = 4800


@dataclass(frozen=True, slots=True)
class _PolyphaseFilter:
    factor: int
    taps: int  # odd and symmetric: linear phase, group delay (taps - 1) / 2
    delay: int  # group delay in high-rate samples; a multiple of factor by construction
    branch_len: int  # taps per polyphase branch (taps padded up to branch_len * factor)
    up_bank: np.ndarray  # (branch_len, factor): branches, time-reversed, gain `factor`
    up_bank_by_phase: np.ndarray  # (factor, branch_len): the same, one branch a row, for _polyphase.c
    down_taps: np.ndarray  # (branch_len * factor,): time-reversed, zero-padded at the front


@functools.cache
def _design(factor: int) -> _PolyphaseFilter:
    """Design (once per factor) the Kaiser-windowed sinc and its two polyphase layouts."""
    delay = _DELAY_LOW_RATE_SAMPLES * factor
    taps = 2 * delay + 1
    cutoff = _CUTOFF_OF_LOW_NYQUIST / (2 * factor)  # cycles per high-rate sample
    t = np.arange(taps) - delay
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(taps, _KAISER_BETA)
    h /= h.sum()  # unity gain at DC
    h = np.round(h / _COEFFICIENT_QUANTUM) * _COEFFICIENT_QUANTUM

    branch_len = -(-taps // factor)
    padded = np.zeros(branch_len * factor)
    # Interpolation inserts factor-1 zeros between samples, so each branch needs gain `factor`.
    padded[:taps] = h * factor
    up_bank = np.ascontiguousarray(padded.reshape(branch_len, factor)[::-1])
    down_taps = np.zeros(branch_len * factor)
    down_taps[branch_len * factor - taps :] = h[::-1]
    up_bank_by_phase = np.ascontiguousarray(up_bank.T)
    for array in (up_bank, up_bank_by_phase, down_taps):
        array.flags.writeable = False
    return _PolyphaseFilter(factor, taps, delay, branch_len, up_bank, up_bank_by_phase, down_taps)


class Resampler:
    """Streaming PCM16 resampler between two rates whose ratio is an integer (up or down), or a
    small fraction (reduced terms up to ``MAX_RATIO_TERM``: 3:2 and 2:3 for 16k <-> 24k).

    One instance per audio stream, kept for the life of the stream: never resample frames with
    fresh instances (edge artefacts at every frame). ``from_rate == to_rate`` is a pass-through.
    Not thread-safe; a stream is driven by one task.
    """

    __slots__ = (
        "_buffer",
        "_filter",
        "_history_len",
        "_native",
        "_pending_drop",
        "_rational",
        "_skip",
        "_upsampling",
        "from_rate",
        "to_rate",
    )

    def __init__(self, from_rate: int, to_rate: int) -> None:
        for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
            if isinstance(rate, bool) or not hasattr(rate, "__index__") or rate <= 0:
                raise ValueError(f"{name} must be a positive integer in Hz, got {rate!r}")
        from_rate, to_rate = operator.index(from_rate), operator.index(to_rate)
        self._rational: RationalResampler | None = None
        if to_rate % from_rate == 0:
            factor, self._upsampling = to_rate // from_rate, True
        elif from_rate % to_rate == 0:
            factor, self._upsampling = from_rate // to_rate, False
        elif max(reduced_ratio(from_rate, to_rate)) <= MAX_RATIO_TERM:
            # `_filter` stays None: every method checks it first, so the integer path pays
            # nothing for this branch.
            factor, self._upsampling = 1, to_rate > from_rate
            self._rational = RationalResampler(from_rate, to_rate)
        else:
            raise ValueError(
                f"unsupported resampling {from_rate} -> {to_rate} Hz: only integer ratios and "
                f"fractions with terms up to {MAX_RATIO_TERM} (e.g. 3:2) are supported"
            )
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._filter = _design(factor) if factor > 1 else None
        self._history_len = 0
        if self._filter is not None:
            # Up: each output row needs branch_len input samples. Down: a full padded filter span.
            self._history_len = (
                self._filter.branch_len - 1 if self._upsampling else self._filter.branch_len * factor - 1
            )
        # Only the integer filter uses it (the rational core has its own): 38 KB per stream.
        self._buffer = np.zeros(self._history_len + _MAX_BLOCK_SAMPLES if self._filter else 0)
        self._pending_drop = 0
        self._skip = 0
        self._native = NATIVE if self._filter is not None else None
        self.reset()

    @property
    def delay_ms(self) -> float:
        """Algorithmic delay: the filter's group delay, (taps - 1) / 2 high-rate samples, in ms."""
        if self._filter is None:
            return 0.0 if self._rational is None else self._rational.delay_ms
        high_rate = max(self.from_rate, self.to_rate)
        return self._filter.delay * 1000.0 / high_rate

    def reset(self) -> None:
        """Forget the stream: silent history, and the group delay to be held back again."""
        if self._filter is None and self._rational is not None:
            self._rational.reset()
            return
        self._buffer[: self._history_len] = 0.0
        delay = self._filter.delay if self._filter is not None else 0
        # Up: the first `delay` outputs belong to times before the stream started; drop them.
        self._pending_drop = delay if self._upsampling else 0
        # Down: the first output (time 0) is due once input sample `delay` has arrived.
        self._skip = 0 if self._upsampling else delay

    def process(self, pcm16: bytes) -> bytes:
        """Resample the next chunk of the stream (little-endian PCM16 mono, any whole number of
        samples) and return all output that is complete so far."""
        if len(pcm16) % 2:
            raise ValueError(f"PCM16 input must have an even number of bytes (2 per sample), got {len(pcm16)}")
        if self._filter is None and self._rational is None:
            return bytes(pcm16)
        if self._native is not None:
            return self._native_blocks(pcm16, None, None)
        return self.process_samples(np.frombuffer(pcm16, dtype=_PCM16))

    def native_step(
        self, decode: np.ndarray | None = None, encode: np.ndarray | None = None
    ) -> Callable[[bytes], bytes] | None:
        """One compiled call for G.711 decode -> this resampler (``decode``: the 256 int16 samples of
        the codes), or this resampler -> G.711 encode (``encode``: 65,536 codes by the sample's
        bit pattern); ``None`` when there are no compiled kernels, the ratio is fractional, or
        a table is on the other side of the filter (decode is for upsampling, encode for
        downsampling: the plans Converter makes). Same output as the separate steps."""
        if (
            self._native is None
            or (decode is not None and not self._upsampling)
            or (encode is not None and self._upsampling)
        ):
            return None
        spec, native, state, history = self._filter, self._native, self._buffer, self._history_len
        assert spec is not None
        general = functools.partial(self._native_blocks, decode=decode, encode=encode)
        limit = _MAX_BLOCK_SAMPLES * (1 if decode is not None else 2)  # bytes in one block
        if self._upsampling:
            upsample, bank, factor = native.upsample, spec.up_bank_by_phase, spec.factor

            def up(data: bytes) -> bytes:  # a 20 ms frame: one C call, no block or start-up logic
                if self._pending_drop or len(data) > limit:
                    return general(data)
                return upsample(state, history, data, bank, factor, decode)

            return up
        return general

    def process_samples(self, samples: np.ndarray) -> bytes:
        """`process` for samples already in an int16 array (a G.711 decode's table lookup: the
        Converter skips its bytes round trip, bench/README.md issue 22); the same output."""
        if self._filter is None:
            if self._rational is not None:
                return self._rational.process(samples)
            return samples.astype(_PCM16).tobytes()
        step = self._upsample_block if self._upsampling else self._downsample_block
        if samples.size <= _MAX_BLOCK_SAMPLES:
            return step(samples)
        return b"".join(
            step(samples[start : start + _MAX_BLOCK_SAMPLES]) for start in range(0, samples.size, _MAX_BLOCK_SAMPLES)
        )

    def flush(self) -> bytes:
        """End the stream: return the output still held back (completed with silence), then
        reset so the instance can start a new stream. Total output of a stream of ``n`` input
        samples is ``n * factor`` (up) or ``ceil(n / factor)`` (down); ``ceil(n * to / from)``
        for a fractional ratio."""
        if self._filter is None:
            return b"" if self._rational is None else self._rational.flush()
        spec = self._filter
        silence = spec.delay // spec.factor if self._upsampling else spec.delay
        tail = self.process(bytes(2 * silence))
        self.reset()
        return tail

    def _native_blocks(self, data: bytes, decode: np.ndarray | None, encode: np.ndarray | None) -> bytes:
        spec, native = self._filter, self._native
        assert spec is not None
        assert native is not None
        width = 1 if decode is not None else 2  # bytes per input sample
        block = _MAX_BLOCK_SAMPLES * width
        if len(data) <= block:
            blocks: Sequence[bytes | memoryview] = (data,)
        else:
            view = memoryview(data)
            blocks = [view[start : start + block] for start in range(0, len(data), block)]
        out = []
        for chunk in blocks:
            if self._upsampling:
                produced = native.upsample(
                    self._buffer, self._history_len, chunk, spec.up_bank_by_phase, spec.factor, decode
                )
                if self._pending_drop:
                    dropped = min(self._pending_drop, len(produced) // 2)
                    self._pending_drop -= dropped
                    produced = produced[2 * dropped :]
            else:
                produced, self._skip = native.downsample(
                    self._buffer, self._history_len, chunk, spec.down_taps, spec.factor, encode, self._skip
                )
            out.append(produced)
        return out[0] if len(out) == 1 else b"".join(out)

    def _upsample_block(self, samples: np.ndarray) -> bytes:
        spec = self._filter
        assert spec is not None
        n, history, buffer = samples.size, self._history_len, self._buffer
        if n == 0:
            return b""
        buffer[history : history + n] = samples
        # Row i is the branch_len input samples ending at input i; one matrix product yields the
        # `factor` outputs of every input sample.
        windows = np.ndarray((n, spec.branch_len), _F64, buffer, 0, (_F64_SIZE, _F64_SIZE))
        out = (np.ascontiguousarray(windows) @ spec.up_bank).ravel()
        buffer[:history] = buffer[n : n + history]
        if self._pending_drop:
            dropped = min(self._pending_drop, out.size)
            self._pending_drop -= dropped
            out = out[dropped:]
        return to_pcm16(out)

    def _downsample_block(self, samples: np.ndarray) -> bytes:
        spec = self._filter
        assert spec is not None
        n, history, buffer, factor = samples.size, self._history_len, self._buffer, spec.factor
        buffer[history : history + n] = samples
        skip = self._skip  # input samples still to arrive before the next output is due
        count = 0 if skip >= n else (n - 1 - skip) // factor + 1
        out = b""
        if count:
            # Row i is the filter span ending at the i-th due input sample; rows step by factor.
            span = spec.down_taps.size
            windows = np.ndarray((count, span), _F64, buffer, skip * _F64_SIZE, (factor * _F64_SIZE, _F64_SIZE))
            out = to_pcm16(np.ascontiguousarray(windows) @ spec.down_taps)
        self._skip = skip + factor * count - n
        buffer[:history] = buffer[n : n + history]
        return out
