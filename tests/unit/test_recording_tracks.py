"""The recording's two tracks from plain data: caller frames, Playout writes, clears (a barge-in)."""

from __future__ import annotations

from telephony_bridge.audio.formats import L16_16K, ULAW_8K
from telephony_bridge.audio.recording_tracks import CallerTrack, HeardTrack, silence

S = b"\xff"  # μ-law silence


def test_writes_play_back_to_back_from_when_they_were_sent():
    heard = HeardTrack(ULAW_8K)
    heard.write(10.0, b"a" * 160)  # 20 ms, sent at 10 ms
    heard.write(12.0, b"b" * 160)  # sent while the first plays: follows it
    assert heard.take(60.0) == S * 80 + b"a" * 160 + b"b" * 160 + S * 80


def test_a_clear_drops_what_had_not_played_a_barge_in():
    heard = HeardTrack(ULAW_8K)
    heard.write(0.0, b"a" * 800)  # 100 ms sent at once (a carrier with marks buffers it)
    heard.write(0.0, b"b" * 800)  # and 100 ms more
    heard.clear(130.0)  # the caller barged in at 130 ms: the rest was flushed, never heard
    heard.write(150.0, b"c" * 80)  # the next answer
    assert heard.take(200.0) == b"a" * 800 + b"b" * 240 + S * 160 + b"c" * 80 + S * 320


def test_rendering_is_incremental_and_a_later_clear_never_changes_what_was_rendered():
    heard = HeardTrack(ULAW_8K)
    heard.write(0.0, b"a" * 800)
    first = heard.take(50.0)
    heard.clear(40.0)  # a clear stamped before the last take cuts from the take on
    assert first == b"a" * 400 and heard.take(100.0) == S * 400
    assert heard.pending_bytes == 0


def test_a_clear_with_nothing_queued_changes_nothing_and_writes_after_it_play():
    heard = HeardTrack(ULAW_8K)
    heard.clear(5.0)
    heard.write(10.0, b"x" * 8)
    assert heard.take(12.0) == S * 80 + b"x" * 8 + S * 8


def test_linear_carriers_use_zero_silence_and_whole_samples():
    heard = HeardTrack(L16_16K)
    heard.write(1.0, b"\x01\x02" * 16)  # 1 ms at 16 kHz, from 1 ms
    assert heard.take(3.0) == b"\x00\x00" * 16 + b"\x01\x02" * 16 + b"\x00\x00" * 16
    assert silence(L16_16K, 2) == b"\x00" * 4


def test_the_origin_is_the_recording_start():
    heard = HeardTrack(ULAW_8K, origin_ms=1000.0)
    heard.write(1010.0, b"a" * 8)
    assert heard.take(1012.0) == S * 80 + b"a" * 8 + S * 8


def test_caller_frames_follow_each_other_from_the_first_arrival():
    caller = CallerTrack(ULAW_8K, origin_ms=0.0)
    assert caller.take(10.0) == S * 80  # nothing yet: silence
    caller.frames(15.0, [b"1" * 160, b"2" * 160])
    assert caller.take(40.0) == S * 40 + b"1" * 160 + b"2" * 40
    caller.frames(99.0, [b"3" * 160])  # the arrival time of later frames does not move them
    assert caller.take(60.0) == b"2" * 120 + b"3" * 40
    assert caller.take(60.0, to_end=True) == b"3" * 120  # the end takes every frame received


def test_missing_caller_frames_are_padded_so_the_track_keeps_time():
    caller = CallerTrack(ULAW_8K)
    caller.frames(0.0, [b"1" * 80])
    assert caller.take(20.0) == b"1" * 80 + S * 80
    assert caller.duration_ms() == 20.0


def test_stereo_tracks_line_up_for_a_barge_in():
    """The caller speaks at 100 ms; the bridge clears at 120 ms: the right channel stops there."""
    caller, heard = CallerTrack(ULAW_8K), HeardTrack(ULAW_8K)
    heard.write(0.0, b"A" * 8 * 300)  # a 300 ms answer sent at once
    caller.frames(0.0, [S * 800, b"C" * 800])  # silence, then the caller from 100 ms
    heard.clear(120.0)
    left, right = caller.take(200.0), heard.take(200.0)
    assert len(left) == len(right) == 1600
    assert left.index(b"C") == 800 and right.rindex(b"A") == 959
