"""Offline speech through libespeak-ng: audible, plausibly long, cached, safe from many threads."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from telephony_bridge.local_engine import tts
from telephony_bridge.local_engine.tts import SpeechError, synthesize, synthesize_async

GREETING = "Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?"


def level_dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    return 20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768 + 1e-12)


def test_greeting_is_audible_and_lasts_a_few_seconds():
    audio = synthesize(GREETING)
    seconds = len(audio) / 2 / 24000
    assert 4.0 <= seconds <= 8.0  # long enough for a caller to barge in
    assert level_dbfs(audio) > -35
    assert len(audio) % 2 == 0


def test_rates_agree_on_duration():
    wide = synthesize("What time is it?", 24000, "en-us+f3")
    narrow = synthesize("What time is it?", 8000, "en-us+f3")
    assert abs(len(wide) / 48000 - len(narrow) / 16000) < 0.01
    assert level_dbfs(narrow) > -35


def test_voices_and_speed_differ():
    base = synthesize("Good morning", 24000, "en-us")
    assert synthesize("Good morning", 24000, "en-us+f3") != base
    assert len(synthesize("Good morning", 24000, "en-us", 1.5)) < len(base)


def test_results_are_cached():
    first = synthesize("Caching is nice.", 8000)
    hits = tts.cache_info().hits
    assert synthesize("Caching is nice.", 8000) is first
    assert synthesize(text="Caching is nice.", sample_rate=8000, voice="en-us", speed=1) is first
    assert tts.cache_info().hits == hits + 2


def test_empty_text_and_bad_arguments():
    assert synthesize("   ") == b""
    with pytest.raises(ValueError):
        synthesize("x", 0)
    with pytest.raises(SpeechError, match="unknown espeak voice"):
        synthesize("x", 24000, "no-such-voice-zz")


def test_concurrent_threads_each_get_their_own_speech():
    # espeak is not bit-for-bit repeatable (its generator carries state between utterances), so the
    # check is on what cross-talk between threads would break: each result's length and loudness.
    uncached = tts._synthesize_uncached
    texts = [" ".join(["number"] * words) + "." for words in (1, 3, 7, 12)]
    sequential = [len(uncached(text, 8000, "en-us", 1.0)) for text in texts]
    assert sorted(sequential) == sequential and sequential[0] * 4 < sequential[-1]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda text: uncached(text, 8000, "en-us", 1.0), texts * 2))
    for audio, expected in zip(concurrent, sequential * 2, strict=False):
        assert abs(len(audio) - expected) <= 0.03 * expected + 400
        assert level_dbfs(audio) > -35


async def test_async_variant_shares_the_cache_and_keeps_the_loop_free():
    expected = synthesize("Async speech.", 8000)
    assert await synthesize_async("Async speech.", 8000) is expected
    # Several at once from one loop: serialised by the library lock, none lost.
    results = await asyncio.gather(*(synthesize_async(f"Line {n}.", 8000, "en") for n in range(4)))
    assert all(level_dbfs(r) > -35 for r in results) and len(set(results)) == 4


def test_resampler_is_band_limited():
    n = np.arange(22050)
    sine_1k = np.sin(2 * np.pi * 1000 * n / 22050) * 10000
    out = tts._kaiser_sinc_resample(sine_1k, 22050, 24000)
    assert len(out) == 24000
    reference = np.sin(2 * np.pi * 1000 * np.arange(24000) / 24000) * 10000
    assert np.max(np.abs(out - reference)[64:-64]) < 5  # -66 dB error on a passband tone
    sine_6k = np.sin(2 * np.pi * 6000 * n / 22050) * 10000  # above 8 kHz's Nyquist: must vanish
    aliased = tts._kaiser_sinc_resample(sine_6k, 22050, 8000)
    assert np.sqrt(np.mean(aliased[64:-64] ** 2)) < 10
