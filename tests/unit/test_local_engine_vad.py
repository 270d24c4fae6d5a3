"""The local engine's energy VAD on synthetic tone bursts whose positions are known exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_bridge.local_engine.vad import SpeechStarted, SpeechStopped, VoiceActivityDetector, threshold_to_dbfs

TOLERANCE_MS = 20


def tone(ms: int, rate: int = 24000, dbfs: float = -20.0, hz: float = 440.0) -> np.ndarray:
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)  # RMS of a sine is amplitude / sqrt(2)
    t = np.arange(rate * ms // 1000)
    return np.sin(2 * np.pi * hz * t / rate) * amplitude


def silence(ms: int, rate: int = 24000) -> np.ndarray:
    return np.zeros(rate * ms // 1000)


def pcm(*parts: np.ndarray) -> bytes:
    return np.clip(np.concatenate(parts), -32768, 32767).astype("<i2").tobytes()


def feed_in_chunks(vad: VoiceActivityDetector, data: bytes, chunk: int) -> list:
    events = []
    for offset in range(0, len(data), chunk):
        events += vad.feed(data[offset:offset + chunk])
    return events


def test_threshold_maps_linearly_onto_dbfs():
    assert threshold_to_dbfs(0.0) == -70.0
    assert threshold_to_dbfs(0.5) == -40.0
    assert threshold_to_dbfs(1.0) == -10.0
    assert threshold_to_dbfs(7) == -10.0  # clamped


def test_one_burst_gives_start_and_stop_at_the_true_positions():
    vad = VoiceActivityDetector(24000, threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    events = feed_in_chunks(vad, pcm(silence(1000), tone(800), silence(1000)), 960)  # 20 ms frames
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert abs(started.speech_ms - 1000) <= TOLERANCE_MS
    assert abs(started.audio_start_ms - (1000 - 300)) <= TOLERANCE_MS  # onset minus prefix padding
    assert abs(stopped.audio_end_ms - 1800) <= TOLERANCE_MS


def test_onset_in_the_middle_of_a_window():
    vad = VoiceActivityDetector(8000, prefix_padding_ms=0, silence_duration_ms=200)
    events = vad.feed(pcm(silence(1234, 8000), tone(500, 8000), silence(400, 8000)))
    assert abs(events[0].speech_ms - 1234) <= TOLERANCE_MS
    assert abs(events[1].audio_end_ms - 1734) <= TOLERANCE_MS


@pytest.mark.parametrize("threshold, expect_speech", [(0.3, True), (0.5, False)])
def test_threshold_is_honoured_for_quiet_speech(threshold, expect_speech):
    # -45 dBFS: above the -52 dBFS of threshold 0.3, below the -40 dBFS of threshold 0.5.
    vad = VoiceActivityDetector(24000, threshold=threshold, silence_duration_ms=200)
    events = vad.feed(pcm(silence(200), tone(600, dbfs=-45), silence(400)))
    assert bool(events) is expect_speech


def test_high_threshold_ignores_normal_speech():
    vad = VoiceActivityDetector(24000, threshold=0.9)  # -16 dBFS
    assert vad.feed(pcm(silence(200), tone(600, dbfs=-25), silence(800))) == []


@pytest.mark.parametrize("silence_duration_ms, segments", [(500, 1), (200, 2)])
def test_silence_duration_decides_whether_a_pause_ends_the_turn(silence_duration_ms, segments):
    vad = VoiceActivityDetector(24000, silence_duration_ms=silence_duration_ms, prefix_padding_ms=0)
    audio = pcm(silence(300), tone(400), silence(300), tone(400), silence(800))
    events = vad.feed(audio)
    assert sum(isinstance(e, SpeechStarted) for e in events) == segments
    assert sum(isinstance(e, SpeechStopped) for e in events) == segments
    if segments == 1:
        assert abs(events[1].audio_end_ms - 1400) <= TOLERANCE_MS


def test_stop_is_reported_only_after_the_hang_over_has_passed_in_the_stream():
    vad = VoiceActivityDetector(24000, silence_duration_ms=500)
    assert [type(e) for e in vad.feed(pcm(silence(100), tone(300)))] == [SpeechStarted]
    assert vad.feed(pcm(silence(480))) == []  # 480 ms of silence: not yet
    stopped = vad.feed(pcm(silence(40)))
    assert len(stopped) == 1 and abs(stopped[0].audio_end_ms - 400) <= TOLERANCE_MS
    assert abs(vad.position_ms - 920) <= 10


def test_prefix_padding_is_clamped_to_the_buffer_floor():
    vad = VoiceActivityDetector(24000, prefix_padding_ms=300, silence_duration_ms=200)
    first = vad.feed(pcm(silence(100), tone(300), silence(300)))
    assert first[0].audio_start_ms == 0  # 100 - 300 clamps to the stream start
    vad.reset(floor_ms=vad.position_ms)  # a commit: the next buffer starts here (700 ms)
    second = vad.feed(pcm(silence(150), tone(300), silence(300)))
    assert second[0].audio_start_ms == 700
    assert abs(second[0].speech_ms - 850) <= TOLERANCE_MS


def test_a_click_shorter_than_the_minimum_speech_is_not_speech():
    vad = VoiceActivityDetector(24000, min_speech_ms=30)
    assert vad.feed(pcm(silence(200), tone(10), silence(800))) == []


def test_origin_offsets_every_position():
    vad = VoiceActivityDetector(8000, prefix_padding_ms=100, silence_duration_ms=200, origin_ms=5000)
    started, stopped = vad.feed(pcm(silence(500, 8000), tone(300, 8000), silence(300, 8000)))
    assert abs(started.speech_ms - 5500) <= TOLERANCE_MS
    assert abs(started.audio_start_ms - 5400) <= TOLERANCE_MS
    assert abs(stopped.audio_end_ms - 5800) <= TOLERANCE_MS


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=30))
def test_results_do_not_depend_on_how_the_stream_is_chunked(cuts):
    audio = pcm(silence(300), tone(500), silence(700), tone(250, dbfs=-30), silence(600))
    whole = VoiceActivityDetector(24000, silence_duration_ms=400).feed(audio)
    vad = VoiceActivityDetector(24000, silence_duration_ms=400)
    events, offset, index = [], 0, 0
    while offset < len(audio):
        size = cuts[index % len(cuts)]
        events += vad.feed(audio[offset:offset + size])  # odd sizes split samples too
        offset += size
        index += 1
    assert events == whole
    assert len(whole) == 4
