"""Conversion plans between the formats of formats.py, and the streams they convert."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_bridge.audio.convert import Converter, converter
from telephony_bridge.audio.formats import (
    ALAW_8K,
    L16_8K,
    L16_16K,
    L16_24K,
    ULAW_8K,
    AudioFormat,
    Encoding,
)
from telephony_bridge.audio.g711 import (
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from telephony_bridge.audio.resample import Resampler

from .test_resample import noise, tone

FORMATS = [ULAW_8K, ALAW_8K, L16_8K, L16_16K, L16_24K]
PAIRS = list(itertools.product(FORMATS, FORMATS))

# Written out by hand, not derived: the fewest steps for every pair.
PLANS: dict[tuple[AudioFormat, AudioFormat], tuple[str, ...]] = {
    (ULAW_8K, ULAW_8K): (),
    (ULAW_8K, ALAW_8K): ("ulaw→l16", "l16→alaw"),
    (ULAW_8K, L16_8K): ("ulaw→l16",),
    (ULAW_8K, L16_16K): ("ulaw→l16", "8000→16000"),
    (ULAW_8K, L16_24K): ("ulaw→l16", "8000→24000"),
    (ALAW_8K, ULAW_8K): ("alaw→l16", "l16→ulaw"),
    (ALAW_8K, ALAW_8K): (),
    (ALAW_8K, L16_8K): ("alaw→l16",),
    (ALAW_8K, L16_16K): ("alaw→l16", "8000→16000"),
    (ALAW_8K, L16_24K): ("alaw→l16", "8000→24000"),
    (L16_8K, ULAW_8K): ("l16→ulaw",),
    (L16_8K, ALAW_8K): ("l16→alaw",),
    (L16_8K, L16_8K): (),
    (L16_8K, L16_16K): ("8000→16000",),
    (L16_8K, L16_24K): ("8000→24000",),
    (L16_16K, ULAW_8K): ("16000→8000", "l16→ulaw"),
    (L16_16K, ALAW_8K): ("16000→8000", "l16→alaw"),
    (L16_16K, L16_8K): ("16000→8000",),
    (L16_16K, L16_16K): (),
    (L16_16K, L16_24K): ("16000→24000",),
    (L16_24K, ULAW_8K): ("24000→8000", "l16→ulaw"),
    (L16_24K, ALAW_8K): ("24000→8000", "l16→alaw"),
    (L16_24K, L16_8K): ("24000→8000",),
    (L16_24K, L16_16K): ("24000→16000",),
    (L16_24K, L16_24K): (),
}


def stream_bytes(fmt: AudioFormat, seconds: float, seed: int = 1) -> bytes:
    """Loud noise in `fmt`'s encoding: every tap, every code and the clip get exercised."""
    pcm = noise(np.random.default_rng(seed), int(fmt.rate * seconds)).tobytes()
    return {Encoding.ULAW: ulaw_encode, Encoding.ALAW: alaw_encode}.get(
        fmt.encoding, lambda data: data
    )(pcm)


def convert_whole(conv: Converter, data: bytes) -> bytes:
    return conv.process(data) + conv.flush()


def as_pcm(fmt: AudioFormat, data: bytes) -> np.ndarray:
    decode = {Encoding.ULAW: ulaw_decode, Encoding.ALAW: alaw_decode}.get(
        fmt.encoding, lambda d: d
    )
    return np.frombuffer(decode(data), dtype="<i2").astype(float)


def snr_db(reference: np.ndarray, received: np.ndarray) -> float:
    error = received - reference
    return 10 * math.log10(np.mean(reference**2) / max(np.mean(error**2), 1e-12))


# --- plans --------------------------------------------------------------------------------------


def test_every_pair_of_formats_has_a_hand_checked_plan() -> None:
    assert set(PLANS) == set(PAIRS)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=lambda f: str(f))
def test_the_plan_has_the_fewest_steps(src: AudioFormat, dst: AudioFormat) -> None:
    conv = converter(src, dst)
    assert conv.steps == PLANS[src, dst]
    assert (conv.src, conv.dst) == (src, dst)
    resamples = src.rate != dst.rate
    assert (conv.delay_ms > 0) == resamples
    if resamples:
        assert conv.delay_ms == Resampler(src.rate, dst.rate).delay_ms


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_the_same_format_passes_the_callers_object_through(fmt: AudioFormat) -> None:
    conv = converter(fmt, fmt)
    data = stream_bytes(fmt, 0.02)
    assert conv.process(data) is data
    odd = bytearray(b"\x01\x02\x03")  # not even looked at
    assert conv.process(odd) is odd
    assert conv.flush() == b""


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=lambda f: str(f))
def test_output_equals_the_steps_done_by_hand(src: AudioFormat, dst: AudioFormat) -> None:
    data = stream_bytes(src, 0.25)
    pcm = {Encoding.ULAW: ulaw_decode, Encoding.ALAW: alaw_decode}.get(src.encoding, bytes)(data)
    if src.rate != dst.rate:
        resampler = Resampler(src.rate, dst.rate)
        pcm = resampler.process(pcm) + resampler.flush()
    expected = {Encoding.ULAW: ulaw_encode, Encoding.ALAW: alaw_encode}.get(dst.encoding, bytes)(
        pcm
    )
    if src == dst:
        expected = data
    out = convert_whole(converter(src, dst), data)
    assert out == expected
    samples_in = len(data) // src.bytes_per_sample
    assert len(out) == math.ceil(samples_in * dst.rate / src.rate) * dst.bytes_per_sample


# --- streaming ----------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    pair=st.sampled_from([pair for pair in PAIRS if PLANS[pair]]),
    sizes=st.lists(st.integers(0, 1000), min_size=1, max_size=30),
)
def test_output_is_bit_identical_however_the_bytes_are_chunked(
    pair: tuple[AudioFormat, AudioFormat], sizes: list[int]
) -> None:
    # Byte sizes, not sample sizes: for L16 sources odd chunks split samples across calls.
    data = stream_bytes(pair[0], 0.3, seed=len(sizes))
    expected = convert_whole(converter(*pair), data)
    conv, parts, start = converter(*pair), [], 0
    for size in [*sizes, len(data)]:  # the last chunk takes whatever is left
        parts.append(conv.process(data[start : start + size]))
        start += size
    assert b"".join(parts) + conv.flush() == expected


def test_a_half_sample_waits_for_the_next_call() -> None:
    data = stream_bytes(L16_16K, 0.02)
    conv = converter(L16_16K, L16_24K)
    first = conv.process(data[:1])
    assert first == b""  # half a sample is no sample
    rest = conv.process(data[1:]) + conv.flush()
    assert first + rest == convert_whole(converter(L16_16K, L16_24K), data)


def test_a_half_sample_waits_without_a_resampler_too() -> None:
    conv = converter(L16_8K, ULAW_8K)
    assert conv.process(b"\x10\x20\x30") == ulaw_encode(b"\x10\x20")
    assert conv.process(b"\x40") == ulaw_encode(b"\x30\x40")


@pytest.mark.parametrize(
    ("src", "dst"), [(L16_16K, L16_24K), (L16_24K, ULAW_8K), (ULAW_8K, L16_24K), (L16_8K, ALAW_8K)]
)
def test_flush_and_reset_start_a_new_stream(src: AudioFormat, dst: AudioFormat) -> None:
    data = stream_bytes(src, 0.1, seed=4)
    conv = converter(src, dst)
    first = convert_whole(conv, data)
    assert convert_whole(conv, data) == first  # flush left nothing behind
    conv.process(data[: len(data) // 3 + 1])  # mid-stream, an L16 half sample pending
    conv.reset()
    assert convert_whole(conv, data) == first


def test_flush_releases_exactly_the_held_back_delay() -> None:
    conv = converter(L16_16K, L16_24K)
    frame = bytes(640)  # 20 ms at 16 kHz
    assert len(conv.process(frame)) == 960 - 2 * 24  # 1 ms (24 samples at 24 kHz) held back
    assert len(conv.flush()) == 2 * 24
    assert converter(ULAW_8K, L16_8K).flush() == b""


# --- quality ------------------------------------------------------------------------------------


def test_16k_to_24k_and_back_keeps_band_limited_noise_at_60_db_snr() -> None:
    rng = np.random.default_rng(12)
    spectrum = np.fft.rfft(rng.normal(0, 1, 16000))
    spectrum[np.fft.rfftfreq(16000, 1 / 16000) > 6500] = 0
    signal = np.fft.irfft(spectrum)
    signal = np.round(signal / np.abs(signal).max() * 12000).astype("<i2")
    there = convert_whole(converter(L16_16K, L16_24K), signal.tobytes())
    back = as_pcm(L16_16K, convert_whole(converter(L16_24K, L16_16K), there))
    core = slice(800, -800)
    assert snr_db(signal[core].astype(float), back[core]) >= 60


@pytest.mark.parametrize(
    ("carrier", "model", "minimum_db"),
    [
        (ULAW_8K, L16_24K, 35),  # G.711 quantisation (~38 dB for a loud tone) is the floor
        (ALAW_8K, L16_24K, 35),
        (L16_16K, ULAW_8K, 35),  # the model leg narrower than the carrier: a 1 kHz tone survives
        (ULAW_8K, ALAW_8K, 35),
        (L16_8K, L16_16K, 60),
        (L16_24K, L16_8K, 60),
    ],
    ids=str,
)
def test_a_1khz_tone_there_and_back(carrier: AudioFormat, model: AudioFormat, minimum_db: int) -> None:
    signal = tone(1000, carrier.rate, amplitude=10000).tobytes()
    if carrier.encoding is Encoding.ULAW:
        signal = ulaw_encode(signal)
    elif carrier.encoding is Encoding.ALAW:
        signal = alaw_encode(signal)
    reference = tone(1000, carrier.rate, amplitude=10000).astype(float)
    there = convert_whole(converter(carrier, model), signal)
    back = as_pcm(carrier, convert_whole(converter(model, carrier), there))
    assert back.size == reference.size
    core = slice(carrier.rate // 20, -carrier.rate // 20)
    assert snr_db(reference[core], back[core]) >= minimum_db
