"""Rational-ratio resampling (16k <-> 24k is 3:2): exact streaming, length, delay and quality.

Same measuring conventions as test_resample.py: coherent single-bin DFT levels over 0.5 s taken
0.1 s in, so figures are not blurred by leakage or by the stream's edges.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_bridge.audio.resample import Resampler

from .test_resample import chunked, db, level, noise, resample_stream, tone

RATIONAL = [(16000, 24000), (24000, 16000), (8000, 12000), (12000, 8000)]
PASSBAND_16K_HZ = [300, 1000, 3000, 5000, 6000, 7000]


# --- streaming ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    rates=st.sampled_from(RATIONAL),
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_output_is_bit_identical_however_the_input_is_chunked(
    rates: tuple[int, int], sizes: list[int], seed: int
) -> None:
    signal = noise(np.random.default_rng(seed), sum(sizes))
    whole = Resampler(*rates)
    expected = whole.process(signal.tobytes()) + whole.flush()
    assert chunked(Resampler(*rates), signal, sizes) == expected


@pytest.mark.parametrize("rates", RATIONAL)
def test_one_sample_at_a_time_is_bit_identical(rates: tuple[int, int]) -> None:
    # Every phase of the 3-output pattern, and every "not yet due" state, meets a chunk boundary.
    signal = noise(np.random.default_rng(5), 1201)
    expected = resample_stream(*rates, signal).tobytes()
    assert chunked(Resampler(*rates), signal, [1] * signal.size) == expected


def test_blocks_larger_than_the_internal_block_are_bit_identical() -> None:
    # A whole prompt at once is cut into internal blocks; that must be invisible too.
    signal = noise(np.random.default_rng(6), 24000 * 2 + 17)
    expected = resample_stream(24000, 16000, signal).tobytes()
    assert chunked(Resampler(24000, 16000), signal, [480] * 101) == expected


@pytest.mark.parametrize("rates", RATIONAL)
def test_flush_completes_the_stream_to_the_exact_length(rates: tuple[int, int]) -> None:
    from_rate, to_rate = rates
    for n in [*range(40), 159, 160, 161, 320, 479, 481]:
        resampler = Resampler(*rates)
        out = resampler.process(bytes(2 * n)) + resampler.flush()
        assert len(out) == 2 * math.ceil(n * to_rate / from_rate), n


def test_steady_state_is_a_frame_in_a_frame_out_after_the_delay() -> None:
    up, down = Resampler(16000, 24000), Resampler(24000, 16000)
    assert len(up.process(bytes(2 * 320))) // 2 == 480 - 24  # 24 samples = 1 ms at 24 kHz
    assert len(up.process(bytes(2 * 320))) // 2 == 480
    assert len(down.process(bytes(2 * 480))) // 2 == 320 - 16  # 16 samples = 1 ms at 16 kHz
    assert len(down.process(bytes(2 * 480))) // 2 == 320


@pytest.mark.parametrize("rates", [(16000, 24000), (24000, 16000)])
def test_flush_and_reset_start_a_new_stream(rates: tuple[int, int]) -> None:
    signal = noise(np.random.default_rng(3), 997).tobytes()
    resampler = Resampler(*rates)
    first = resampler.process(signal) + resampler.flush()
    assert resampler.process(signal) + resampler.flush() == first
    resampler.process(signal[:666])  # 333 samples: mid-pattern, with history and a pending phase
    resampler.reset()
    assert resampler.process(signal) + resampler.flush() == first


@pytest.mark.parametrize("rates", [(8000, 11025), (44100, 48000), (16000, 22050)])
def test_ratios_with_large_terms_are_rejected(rates: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="unsupported resampling"):
        Resampler(*rates)


def test_odd_length_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        Resampler(16000, 24000).process(b"\x00\x00\x00")


# --- delay --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rates", [(16000, 24000), (24000, 16000)])
def test_measured_delay_equals_delay_ms_of_1_ms(rates: tuple[int, int]) -> None:
    from_rate, _ = rates
    resampler = Resampler(*rates)
    impulse = np.zeros(from_rate // 100, dtype="<i2")
    impulse[0] = 20000
    out: list[int] = []
    released_at: list[int] = []
    for index, sample in enumerate(impulse):
        chunk = np.frombuffer(resampler.process(sample.tobytes()), dtype="<i2").tolist()
        out += chunk
        released_at += [index] * len(chunk)
    peak = int(np.argmax(np.abs(out)))
    assert peak == 0  # aligned: the impulse's peak comes out at the impulse's own time
    assert released_at[peak] * 1000 / from_rate == pytest.approx(resampler.delay_ms)
    assert resampler.delay_ms == 1.0


# --- quality ------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", PASSBAND_16K_HZ)
@pytest.mark.parametrize("rates", [(16000, 24000), (24000, 16000)])
def test_passband_is_flat_within_half_a_db_up_to_7_khz(rates: tuple[int, int], freq: int) -> None:
    from_rate, to_rate = rates
    out = resample_stream(from_rate, to_rate, tone(freq, from_rate))
    assert abs(db(level(out, freq, to_rate) / 16000)) <= 0.5


@pytest.mark.parametrize("freq", [300, 1000, 3000, 5000, 6000, 7000])
def test_upsampling_16k_to_24k_images_are_70_db_down(freq: int) -> None:
    # At 48 kHz a 16 kHz tone f has images at 16k ± f; decimating to 24 kHz folds 16k + f to 8k - f.
    out = resample_stream(16000, 24000, tone(freq, 16000, amplitude=30000))
    wanted = level(out, freq, 24000)
    images = [8000 - freq] + ([16000 - freq] if 16000 - freq < 12000 else [])
    for image in images:
        assert db(level(out, image, 24000) / wanted) <= -70, f"image at {image} Hz"


@pytest.mark.parametrize("freq", [9000, 9500, 10000, 11000, 11900])
def test_downsampling_24k_to_16k_aliases_are_70_db_down(freq: int) -> None:
    # Above 8 kHz folds to 16k - f: 9 kHz would land on 7 kHz, inside the passband.
    out = resample_stream(24000, 16000, tone(freq, 24000, amplitude=30000))
    assert db(level(out, 16000 - freq, 16000) / 30000) <= -70


def test_round_trip_snr_of_band_limited_noise_is_at_least_60_db() -> None:
    rng = np.random.default_rng(12)
    spectrum = np.fft.rfft(rng.normal(0, 1, 16000))
    spectrum[np.fft.rfftfreq(16000, 1 / 16000) > 6500] = 0
    signal = np.fft.irfft(spectrum)
    signal = np.round(signal / np.abs(signal).max() * 12000).astype("<i2")
    back = resample_stream(24000, 16000, resample_stream(16000, 24000, signal))
    assert back.size == signal.size
    core = slice(800, -800)  # the stream's edges see the silence before and after it
    reference = signal[core].astype(float)
    error = back[core].astype(float) - reference
    assert 10 * math.log10(np.mean(reference**2) / np.mean(error**2)) >= 60


# --- 8k <-> 16k: an integer ratio (factor 2) that the 16 kHz carriers' μ-law legs need ----------


@pytest.mark.parametrize("rates", [(8000, 16000), (16000, 8000)])
def test_8k_16k_passband_is_flat_within_half_a_db_up_to_3400_hz(rates: tuple[int, int]) -> None:
    from_rate, to_rate = rates
    for freq in [300, 1000, 3000, 3400]:
        out = resample_stream(from_rate, to_rate, tone(freq, from_rate))
        assert abs(db(level(out, freq, to_rate) / 16000)) <= 0.5, freq


def test_8k_to_16k_images_and_16k_to_8k_aliases_are_70_db_down() -> None:
    for freq in [300, 1000, 2000, 3000, 3400]:
        out = resample_stream(8000, 16000, tone(freq, 8000, amplitude=30000))
        assert db(level(out, 8000 - freq, 16000) / level(out, freq, 16000)) <= -70, freq
    for freq in [4600, 5000, 6000, 7000, 7700]:
        out = resample_stream(16000, 8000, tone(freq, 16000, amplitude=30000))
        assert db(level(out, 8000 - freq, 8000) / 30000) <= -70, freq
