"""Streaming resampler: exact chunking invariance, and the filter's quality on synthetic tones.

Levels are read with a single-bin DFT over a window holding a whole number of periods of every
frequency probed (coherent sampling), so there is no spectral leakage to blur the figures.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from telephony_bridge.audio import resample
from telephony_bridge.audio.resample import Resampler

LOW, HIGH = 8000, 24000


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs on both paths: the compiled kernels (_polyphase.c) and numpy."""
    if request.param == "numpy":
        monkeypatch.setattr(resample, "NATIVE", None)
    elif resample.NATIVE is None:
        pytest.skip("the compiled resampler is not built: needs a C compiler (apt-get install gcc python3-dev), then `make install`")
PASSBAND_HZ = [300, 500, 1000, 2000, 3000, 3400]


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 16000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2")


def resample_stream(from_rate: int, to_rate: int, signal: np.ndarray) -> np.ndarray:
    resampler = Resampler(from_rate, to_rate)
    out = resampler.process(signal.tobytes()) + resampler.flush()
    return np.frombuffer(out, dtype="<i2")


def level(signal: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of the `freq` component over 0.5 s taken 0.1 s in (clear of start/end edges)."""
    window = signal[rate // 10 : rate // 10 + rate // 2].astype(float)
    phase = 2 * np.pi * freq * np.arange(window.size) / rate
    return float(abs(2 / window.size * np.sum(window * np.exp(-1j * phase))))


def db(ratio: float) -> float:
    return 20 * math.log10(max(ratio, 1e-12))


def chunked(resampler: Resampler, signal: np.ndarray, sizes: list[int]) -> bytes:
    parts, start = [], 0
    for size in sizes:
        parts.append(resampler.process(signal[start : start + size].tobytes()))
        start += size
    assert start >= signal.size
    return b"".join(parts) + resampler.flush()


def random_sizes(rng: np.random.Generator, total: int, low: int = 1, high: int = 2000) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(low, high + 1)))
    return sizes


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    # Loud broadband noise with some clipping-range samples: exercises every tap and the clip.
    return np.clip(rng.normal(0, 9000, n), -32768, 32767).astype("<i2")


# --- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rates", [(LOW, HIGH), (HIGH, LOW), (8000, 16000), (16000, 8000)])
def test_output_is_bit_identical_however_the_input_is_chunked(rates: tuple[int, int]) -> None:
    rng = np.random.default_rng(20240611)
    signal = noise(rng, 3 * rates[0])
    whole = Resampler(*rates)
    expected = whole.process(signal.tobytes()) + whole.flush()
    for _ in range(3):
        sizes = random_sizes(rng, signal.size)
        assert chunked(Resampler(*rates), signal, sizes) == expected


def test_downsampling_one_sample_at_a_time_is_bit_identical() -> None:
    # Every phase of the decimator is crossed at a chunk boundary.
    signal = noise(np.random.default_rng(7), 3001)
    expected = resample_stream(HIGH, LOW, signal).tobytes()
    assert chunked(Resampler(HIGH, LOW), signal, [1] * signal.size) == expected


def test_upsampling_one_sample_at_a_time_is_bit_identical() -> None:
    signal = noise(np.random.default_rng(8), 1001)
    expected = resample_stream(LOW, HIGH, signal).tobytes()
    assert chunked(Resampler(LOW, HIGH), signal, [1] * signal.size) == expected


@pytest.mark.parametrize("rates", [(LOW, HIGH), (HIGH, LOW)])
def test_a_fresh_resampler_per_frame_is_not_equivalent(rates: tuple[int, int]) -> None:
    # Why state must be carried (and why the chunking test above means something): resampling each
    # 20 ms frame on its own restarts the filter from silence, so every frame edge gets a click.
    from_rate, to_rate = rates
    signal = tone(1030, from_rate, seconds=0.2, amplitude=10000)
    frame_in, frame_out = from_rate // 50, to_rate // 50
    streamed = resample_stream(from_rate, to_rate, signal).astype(float)
    per_frame = np.concatenate(
        [
            resample_stream(from_rate, to_rate, signal[i : i + frame_in])
            for i in range(0, signal.size, frame_in)
        ]
    ).astype(float)
    assert per_frame.size == streamed.size
    error = np.abs(per_frame - streamed).reshape(-1, frame_out)
    edge = error[:, : frame_out // 10].max()  # first 2 ms of each frame
    middle = error[:, 4 * frame_out // 10 : 6 * frame_out // 10].max()
    assert edge > 1000  # clicks of over 10 % of the tone's amplitude at frame edges
    assert middle == 0  # while away from the edges (beyond the filter's span) nothing differs


def test_flush_completes_the_stream_to_the_exact_length() -> None:
    for n in [0, 1, 2, 3, 4, 5, 11, 12, 13, 35, 36, 37, 160, 481]:
        up, down = Resampler(LOW, HIGH), Resampler(HIGH, LOW)
        signal = bytes(2 * n)
        assert len(up.process(signal) + up.flush()) == 2 * 3 * n
        assert len(down.process(signal) + down.flush()) == 2 * math.ceil(n / 3)


def test_process_holds_back_exactly_the_delay() -> None:
    up, down = Resampler(LOW, HIGH), Resampler(HIGH, LOW)
    assert len(up.process(bytes(2 * 160))) // 2 == 480 - 36  # 36 samples = 1.5 ms at 24 kHz
    assert len(up.process(bytes(2 * 160))) // 2 == 480  # steady state: a frame in, a frame out
    assert len(down.process(bytes(2 * 480))) // 2 == 160 - 12  # 12 samples = 1.5 ms at 8 kHz
    assert len(down.process(bytes(2 * 480))) // 2 == 160


@pytest.mark.parametrize("rates", [(LOW, HIGH), (HIGH, LOW)])
def test_flush_and_reset_start_a_new_stream(rates: tuple[int, int]) -> None:
    signal = noise(np.random.default_rng(3), 999).tobytes()
    resampler = Resampler(*rates)
    first = resampler.process(signal) + resampler.flush()
    assert resampler.process(signal) + resampler.flush() == first
    resampler.process(signal)
    resampler.reset()
    assert resampler.process(signal) + resampler.flush() == first


def test_same_rate_is_a_pass_through() -> None:
    resampler = Resampler(16000, 16000)
    assert resampler.process(b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04"
    assert resampler.flush() == b"" and resampler.delay_ms == 0.0


@pytest.mark.parametrize(
    "rates",
    [(8000, 11025), (44100, 48000), (0, 8000), (8000, -24000), (8000.0, 24000)],
)
def test_unsupported_rates_are_rejected(rates: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        Resampler(*rates)


def test_odd_length_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        Resampler(LOW, HIGH).process(b"\x00\x00\x00")


# --- delay --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rates", [(LOW, HIGH), (HIGH, LOW)])
def test_measured_delay_equals_delay_ms_and_is_at_most_2_ms(rates: tuple[int, int]) -> None:
    # Feed an impulse, then silence one sample at a time, and watch when the impulse response's
    # peak comes out: its position tells the alignment, the input consumed by then the latency.
    from_rate, to_rate = rates
    resampler = Resampler(from_rate, to_rate)
    impulse = np.zeros(from_rate // 100, dtype="<i2")
    impulse[0] = 20000
    out: list[int] = []
    released_at: list[int] = []  # input sample index at whose arrival each output came out
    for index, sample in enumerate(impulse):
        chunk = np.frombuffer(resampler.process(sample.tobytes()), dtype="<i2").tolist()
        out += chunk
        released_at += [index] * len(chunk)
    peak = int(np.argmax(np.abs(out)))
    measured_ms = released_at[peak] * 1000 / from_rate
    assert peak == 0  # aligned: the peak sits at the impulse's own time
    assert measured_ms == pytest.approx(resampler.delay_ms)
    assert 0 < resampler.delay_ms <= 2.0


def test_cross_correlation_finds_no_residual_delay_through_the_round_trip() -> None:
    rng = np.random.default_rng(11)
    # Band-limited noise (up to 3 kHz) so the round trip should reproduce it closely.
    spectrum = np.fft.rfft(rng.normal(0, 1, LOW))
    spectrum[np.fft.rfftfreq(LOW, 1 / LOW) > 3000] = 0
    signal = np.fft.irfft(spectrum)
    signal = np.round(signal / np.abs(signal).max() * 12000).astype("<i2")
    back = resample_stream(HIGH, LOW, resample_stream(LOW, HIGH, signal)).astype(float)
    lags = range(-40, 41)
    core = slice(100, -100)
    score = [np.dot(np.roll(back, -lag)[core], signal[core].astype(float)) for lag in lags]
    assert lags[int(np.argmax(score))] == 0


# --- quality ------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", PASSBAND_HZ)
def test_passband_is_flat_within_1_db_upsampling(freq: int) -> None:
    out = resample_stream(LOW, HIGH, tone(freq, LOW))
    assert abs(db(level(out, freq, HIGH) / 16000)) <= 1.0


@pytest.mark.parametrize("freq", PASSBAND_HZ)
def test_passband_is_flat_within_1_db_downsampling(freq: int) -> None:
    out = resample_stream(HIGH, LOW, tone(freq, HIGH))
    assert abs(db(level(out, freq, LOW) / 16000)) <= 1.0


@pytest.mark.parametrize("freq", PASSBAND_HZ)
def test_upsampling_images_are_60_db_down(freq: int) -> None:
    out = resample_stream(LOW, HIGH, tone(freq, LOW, amplitude=30000))
    wanted = level(out, freq, HIGH)
    images = [8000 - freq, 8000 + freq, 16000 - freq, 16000 + freq]
    for image in images:
        assert db(level(out, image, HIGH) / wanted) <= -60, f"image at {image} Hz"


@pytest.mark.parametrize("freq", [4600, 5000, 6000, 7500, 9000, 10000, 11000])
def test_downsampling_aliases_are_60_db_down(freq: int) -> None:
    # 5 kHz at 24 kHz would fold onto 3 kHz at 8 kHz; every probe here folds into 300-3400 Hz.
    alias = abs(freq - 8000 * round(freq / 8000))
    assert 300 <= alias <= 3400
    out = resample_stream(HIGH, LOW, tone(freq, HIGH, amplitude=30000))
    assert db(level(out, alias, LOW) / 30000) <= -60


def test_round_trip_snr_of_a_1khz_tone_is_at_least_60_db() -> None:
    signal = tone(1000, LOW, amplitude=10000)
    back = resample_stream(HIGH, LOW, resample_stream(LOW, HIGH, signal))
    assert back.size == signal.size
    # The resampler compensates its group delay in the indexing (see the delay tests), so sample k
    # out is compared with sample k in; 50 ms at each end are skipped (tone onset/offset).
    core = slice(400, -400)
    reference = signal[core].astype(float)
    error = back[core].astype(float) - reference
    snr = 10 * math.log10(np.mean(reference**2) / np.mean(error**2))
    assert snr >= 60


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 24000), (24000, 8000), (8000, 16000), (16000, 24000), (24000, 16000)])
def test_process_samples_of_an_array_is_process_of_its_bytes(from_rate: int, to_rate: int) -> None:
    # The Converter hands a G.711 decode to the resampler as an int16 array (no bytes round trip):
    # the stream must come out the same, frame by frame, whichever way it goes in.
    rng = np.random.default_rng(7)
    by_bytes, by_array = Resampler(from_rate, to_rate), Resampler(from_rate, to_rate)
    for size in [160, 1, 0, 320, 4801, 2400, 7, 160]:
        frame = rng.integers(-32768, 32768, size, dtype=np.int16)
        assert by_array.process_samples(frame) == by_bytes.process(frame.tobytes())
    assert by_array.flush() == by_bytes.flush()


@pytest.mark.parametrize("ufunc", [True, False], ids=["clip ufunc", "minimum + maximum"])
def test_to_pcm16_rounds_half_to_even_and_saturates(ufunc: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from telephony_bridge.audio import resample_rational

    if not ufunc:
        monkeypatch.setattr(resample_rational, "_clip_ufunc", None)
    values = np.array([0.5, 1.5, -0.5, -2.5, 32766.5, 32767.4, 32767.6, 1e9, -32768.4, -32768.6, -1e9, 12.49])
    expected = np.array([0, 2, 0, -2, 32766, 32767, 32767, 32767, -32768, -32768, -32768, 12], dtype="<i2")
    assert resample_rational.to_pcm16(values.copy()) == expected.tobytes()
