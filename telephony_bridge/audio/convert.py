"""Convert one stream of audio between two formats of formats.py with the fewest steps.

The plan for a pair is at most three steps, in this order, each only when needed:

1. G.711 decode ("ulaw→l16", "alaw→l16") when the source is G.711;
2. resample ("8000→24000", ...) when the rates differ, with the streaming ``Resampler``;
3. G.711 encode ("l16→ulaw", "l16→alaw") when the destination is G.711.

So equal formats are a pass-through (the caller's own object comes back, nothing is copied: the
μ-law carrier with a ``g711_ulaw`` model leg pays nothing), L16 16 kHz -> L16 24 kHz is a
resample only, and μ-law -> A-law goes through linear (decode, then encode). ``steps`` names the
plan; ``()`` is the pass-through.

One ``Converter`` per stream direction, kept for the life of the stream: the resampler's history
is carried across calls, so the output does not depend on how the input is chunked, down to one
byte at a time. Pure and synchronous; not thread-safe (a stream is driven by one task).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .formats import AudioFormat, Encoding
from .g711 import (
    ALAW_DECODE_TABLE,
    ALAW_ENCODE_TABLE,
    ULAW_DECODE_TABLE,
    ULAW_ENCODE_TABLE,
    alaw_decode,
    alaw_decode_samples,
    alaw_encode,
    ulaw_decode,
    ulaw_decode_samples,
    ulaw_encode,
)
from .resample import Resampler

__all__ = ["Converter", "converter"]

_DECODE: dict[Encoding, Callable[[bytes], bytes]] = {
    Encoding.ULAW: ulaw_decode,
    Encoding.ALAW: alaw_decode,
}
_DECODE_SAMPLES: dict[Encoding, Callable[[bytes], np.ndarray]] = {
    Encoding.ULAW: ulaw_decode_samples,
    Encoding.ALAW: alaw_decode_samples,
}
_ENCODE: dict[Encoding, Callable[[bytes], bytes]] = {
    Encoding.ULAW: ulaw_encode,
    Encoding.ALAW: alaw_encode,
}
_DECODE_TABLE = {Encoding.ULAW: ULAW_DECODE_TABLE, Encoding.ALAW: ALAW_DECODE_TABLE}
_ENCODE_TABLE = {Encoding.ULAW: ULAW_ENCODE_TABLE, Encoding.ALAW: ALAW_ENCODE_TABLE}


class Converter:
    """The conversion of one stream from ``src`` to ``dst``; build it with ``converter()``.

    ``process(data)`` returns the converted audio that is complete so far. With a resampling step
    the output lags the input by ``delay_ms`` (the resampler's look-ahead, about 1-1.5 ms), which
    ``flush()`` releases at the end of the stream; without one, output is immediate and exact in
    length (G.711 is one sample a byte, L16 two).

    L16 input with an odd number of bytes: the trailing byte (half a sample) is kept and joined
    to the front of the next call's data, so a carrier that splits samples across messages loses
    nothing. ``flush()`` and ``reset()`` drop such a half sample: it is not audio on its own. The
    pass-through plan does not look at the data at all, odd or not.
    """

    __slots__ = (
        "_after",
        "_before",
        "_decode_samples",
        "_fused",
        "_half",
        "_resampler",
        "_splits_samples",
        "dst",
        "src",
        "steps",
    )

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        self.src = src
        self.dst = dst
        steps: list[str] = []
        before: list[Callable[[bytes], bytes]] = []
        after: list[Callable[[bytes], bytes]] = []
        self._resampler: Resampler | None = None
        if src != dst:
            if src.encoding is not Encoding.L16:
                steps.append(f"{src.encoding.value}→l16")
                before.append(_DECODE[src.encoding])
            if src.rate != dst.rate:
                steps.append(f"{src.rate}→{dst.rate}")
                self._resampler = Resampler(src.rate, dst.rate)
            if dst.encoding is not Encoding.L16:
                steps.append(f"l16→{dst.encoding.value}")
                # Before the resampler there is none, so an encode-only plan runs it "before".
                (after if self._resampler is not None else before).append(_ENCODE[dst.encoding])
        self.steps: tuple[str, ...] = tuple(steps)
        # The plan as two plain tuples around the resampler: a 20 ms frame pays one loop over
        # at most two calls on each side, with no per-step objects.
        self._before = tuple(before)
        self._after = tuple(after)
        # G.711 decode straight into the resampler, as an array: the caller's 20 ms frame skips a
        # bytes round trip (tobytes, frombuffer) and two calls: 4,800 of the ~210,000 instructions
        # a caller frame costs the bridge (bench/README.md, issue 22). The same samples, the same output.
        self._decode_samples: Callable[[bytes], np.ndarray] | None = None
        if self._resampler is not None and src.encoding is not Encoding.L16:
            self._decode_samples = _DECODE_SAMPLES[src.encoding]
            self._before = ()
        # With the compiled kernels the whole plan is one call per chunk (decode or encode
        # folded into the filter's loops): the same bytes, without numpy's per-call overhead.
        self._fused: Callable[[bytes], bytes] | None = None
        if self._resampler is not None:
            self._fused = self._resampler.native_step(_DECODE_TABLE.get(src.encoding), _ENCODE_TABLE.get(dst.encoding))
        self._splits_samples = src.encoding is Encoding.L16 and bool(steps)
        self._half = b""

    @property
    def delay_ms(self) -> float:
        """Algorithmic delay of the plan: the resampler's, or 0.0 without one."""
        return 0.0 if self._resampler is None else self._resampler.delay_ms

    def process(self, data: bytes) -> bytes:
        """Convert the next chunk of the stream; returns ``data`` itself for the pass-through."""
        if self._splits_samples:
            if self._half:
                data = self._half + data
                self._half = b""
            if len(data) & 1:
                self._half = data[-1:]
                data = data[:-1]
        if self._fused is not None:
            return self._fused(data)
        if self._decode_samples is not None:
            assert self._resampler is not None
            data = self._resampler.process_samples(self._decode_samples(data))
            for step in self._after:
                data = step(data)
            return data
        for step in self._before:
            data = step(data)
        if self._resampler is not None:
            data = self._resampler.process(data)
            for step in self._after:
                data = step(data)
        return data

    def flush(self) -> bytes:
        """End the stream: the resampler's held-back tail, converted (``b""`` without a
        resampler). The converter is then ready for a new stream, as after ``reset()``."""
        self._half = b""
        if self._resampler is None:
            return b""
        data = self._resampler.flush()
        for step in self._after:
            data = step(data)
        return data

    def reset(self) -> None:
        """Drop all state (e.g. at a barge-in): resampler history, held-back tail, half sample."""
        self._half = b""
        if self._resampler is not None:
            self._resampler.reset()

    def __repr__(self) -> str:
        return f"<Converter {self.src} -> {self.dst}: {' + '.join(self.steps) or 'pass-through'}>"


def converter(src: AudioFormat, dst: AudioFormat) -> Converter:
    """A new stateful converter for one stream from ``src`` to ``dst`` (any two formats of
    formats.py), with the fewest steps; see the module's docstring for the plans."""
    return Converter(src, dst)
