"""The compiled resampler (_polyphase.c) gives the numpy path's bytes exactly, and refuses bad input.

Exactness is the contract (resample.py: every product and partial sum is exact in float64), so the
comparisons are `==` on bytes, over inputs that reach every product a coefficient can make, the
saturation at both ends and any chunking.
"""

from __future__ import annotations

import numpy as np
import pytest

from telephony_bridge.audio import resample
from telephony_bridge.audio.convert import converter
from telephony_bridge.audio.formats import AudioFormat, Encoding
from telephony_bridge.audio.g711 import ULAW_DECODE_TABLE, ULAW_ENCODE_TABLE
from telephony_bridge.audio.resample import Resampler

pytestmark = pytest.mark.skipif(
    resample.NATIVE is None,
    reason="the compiled resampler is not built: needs a C compiler (apt-get install gcc python3-dev), then `make install`",
)

INTEGER_RATES = [(8000, 24000), (24000, 8000), (8000, 16000), (16000, 8000)]


def numpy_resampler(from_rate: int, to_rate: int, monkeypatch: pytest.MonkeyPatch) -> Resampler:
    with monkeypatch.context() as patch:
        patch.setattr(resample, "NATIVE", None)
        return Resampler(from_rate, to_rate)


def run(resampler: Resampler, signal: bytes, sizes: list[int]) -> bytes:
    parts, start = [], 0
    for size in sizes:
        parts.append(resampler.process(signal[start : start + 2 * size]))
        start += 2 * size
    return b"".join(parts) + resampler.flush()


def every_amplitude_as_an_impulse() -> bytes:
    """Each int16 value once, as an impulse far enough from the next that the filter sees it
    alone: the outputs are every coefficient times every sample value, halves to round included."""
    spacing = 80  # more than the longest filter span (75 input samples when decimating by 3)
    signal = np.zeros(65536 * spacing, dtype="<i2")
    signal[::spacing] = np.arange(-32768, 32768, dtype=np.int32).astype("<i2")
    return signal.tobytes()


@pytest.mark.parametrize("rates", INTEGER_RATES)
def test_every_product_of_a_coefficient_and_a_sample_rounds_as_numpy_does(
    rates: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    signal = every_amplitude_as_an_impulse()
    compiled = Resampler(*rates).process(signal)
    assert compiled == numpy_resampler(*rates, monkeypatch).process(signal)
    assert np.unique(np.frombuffer(compiled, dtype="<i2")).size > 20_000  # a rich output, not one both would get right


@pytest.mark.parametrize("rates", INTEGER_RATES)
def test_full_scale_input_saturates_as_numpy_does(rates: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    # A full-scale square wave overshoots at its edges (the filter's ripple): both ends clip.
    period = np.repeat(np.array([32767, -32768], dtype="<i2"), 7)
    signal = np.tile(period, 700).tobytes()
    compiled = Resampler(*rates).process(signal)
    assert compiled == numpy_resampler(*rates, monkeypatch).process(signal)
    samples = np.frombuffer(compiled, dtype="<i2")
    assert samples.max() == 32767 and samples.min() == -32768


@pytest.mark.parametrize("rates", INTEGER_RATES)
@pytest.mark.parametrize("seed", range(3))
def test_any_chunking_gives_the_numpy_paths_stream(rates: tuple[int, int], seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    n = 30_000
    signal = np.clip(rng.normal(0, 12000, n), -32768, 32767).astype("<i2").tobytes()
    # Sizes from one sample to more than one block (4,800 samples), so blocks are split too.
    sizes = [int(size) for size in rng.integers(1, 6000, 40)]
    expected = run(numpy_resampler(*rates, monkeypatch), signal, sizes)
    assert run(Resampler(*rates), signal, sizes) == expected


def test_a_stream_may_switch_paths_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths keep the same state (the float64 history buffer), so `process_samples` (numpy)
    and `process` (compiled) interleave on one stream without a seam."""
    rng = np.random.default_rng(7)
    signal = rng.integers(-20000, 20000, 4800, dtype=np.int16)
    mixed = Resampler(24000, 8000)
    out = mixed.process(signal[:1000].tobytes()) + mixed.process_samples(signal[1000:3000]) + mixed.process(signal[3000:].tobytes())
    assert out == numpy_resampler(24000, 8000, monkeypatch).process(signal.tobytes())


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (AudioFormat(Encoding.ULAW, 8000), AudioFormat(Encoding.L16, 24000)),
        (AudioFormat(Encoding.ALAW, 8000), AudioFormat(Encoding.L16, 16000)),
        (AudioFormat(Encoding.L16, 24000), AudioFormat(Encoding.ULAW, 8000)),
        (AudioFormat(Encoding.L16, 16000), AudioFormat(Encoding.ALAW, 8000)),
    ],
    ids=str,
)
def test_a_converters_folded_g711_is_the_separate_steps(src: AudioFormat, dst: AudioFormat, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    width = 1 if src.encoding is not Encoding.L16 else 2
    signal = rng.integers(0, 256, 24_000 * width, dtype=np.uint8).tobytes()
    sizes = [160 * width, 1, 2400 * width, 7 * width, 9600 * width]
    folded = converter(src, dst)
    assert folded._fused is not None  # the one-call path is what is under test
    with monkeypatch.context() as patch:
        patch.setattr(resample, "NATIVE", None)
        separate = converter(src, dst)
    assert separate._fused is None

    def stream(conv: object) -> bytes:
        parts, start = [], 0
        for size in sizes:
            parts.append(conv.process(signal[start : start + size]))  # type: ignore[attr-defined]
            start += size
        return b"".join(parts) + conv.flush()  # type: ignore[attr-defined]

    assert stream(folded) == stream(separate)


def test_bad_arguments_are_clear_errors_not_memory_errors() -> None:
    native = resample.NATIVE
    assert native is not None
    state = np.zeros(24 + 160)
    bank = np.zeros((3, 25))
    with pytest.raises(ValueError, match="even number"):
        native.upsample(state, 24, b"\x00" * 3, bank, 3, None)
    with pytest.raises(ValueError, match="longer than the state"):
        native.upsample(state, 24, b"\x00" * 322, bank, 3, None)
    with pytest.raises(ValueError, match="shorter than the filter"):
        native.upsample(state, 24, b"\x00" * 2, np.zeros(10), 3, None)
    with pytest.raises(ValueError, match="512 bytes"):
        native.upsample(state, 24, b"\x00", bank, 3, ULAW_ENCODE_TABLE)
    with pytest.raises(ValueError, match="65536 bytes"):
        native.downsample(np.zeros(75 + 160), 74, b"\x00\x00", np.zeros(75), 3, ULAW_DECODE_TABLE, 0)
    with pytest.raises(BufferError):
        native.upsample(bytes(8 * 200), 24, b"\x00\x00", bank, 3, None)  # read-only state
    with pytest.raises(ValueError, match="skip must not be negative"):
        native.downsample(np.zeros(75 + 160), 74, b"\x00\x00", np.zeros(75), 3, None, -1)
