"""SimulatedPlayout: Twilio's outbound buffer, with exact numbers (8 μ-law bytes per ms)."""

import pytest

from telephony_bridge.testing.playout import ClearRecord, SimulatedPlayout


def ms(n: float, byte: int = 0x01) -> bytes:
    """n ms of recognisable μ-law (never 0xFF, which is silence)."""
    return bytes([byte]) * round(n * 8)


def test_audio_into_an_empty_buffer_starts_at_arrival_and_its_mark_falls_due_when_it_ends():
    p = SimulatedPlayout()
    p.enqueue_media(ms(200), now_ms=100)
    p.enqueue_mark("a", now_ms=100)
    assert p.next_mark_due_ms() == 300
    assert p.advance(100) == []
    assert p.advance(299.9) == []  # 2399.2 samples: one short
    assert p.advance(300) == ["a"]
    assert p.advance(400) == []


def test_audio_sent_while_playing_is_queued_behind_without_a_gap():
    p = SimulatedPlayout()
    p.enqueue_media(ms(100, 0x01), now_ms=0)
    p.enqueue_mark("first", now_ms=0)
    p.enqueue_media(ms(100, 0x02), now_ms=50)
    p.enqueue_mark("second", now_ms=50)
    assert p.busy_until_ms() == 200
    assert p.buffered_ms(50) == 150
    assert p.advance(99) == []
    assert p.advance(100) == ["first"]
    assert p.advance(199) == []
    assert p.advance(200) == ["second"]
    heard = p.heard(250)
    assert heard.ulaw == ms(100, 0x01) + ms(100, 0x02) + ms(50, 0xFF)
    assert heard.spans == ((0, 200),)
    assert heard.stats.played_ms == 200
    assert heard.stats.pending_ms == 0


def test_audio_arriving_after_the_buffer_ran_dry_leaves_silence_in_between():
    p = SimulatedPlayout()
    p.enqueue_media(ms(100, 0x01), now_ms=0)
    p.enqueue_media(ms(100, 0x02), now_ms=150)
    p.enqueue_mark("m", now_ms=150)
    assert p.advance(249) == []
    assert p.advance(250) == ["m"]
    heard = p.heard(300)
    assert len(heard.ulaw) == 300 * 8
    assert heard.ulaw == ms(100, 0x01) + ms(50, 0xFF) + ms(100, 0x02) + ms(50, 0xFF)
    assert heard.spans == ((0, 100), (150, 250))
    assert heard.stats.played_ms == 200


def test_a_mark_with_nothing_buffered_is_due_at_once():
    p = SimulatedPlayout()
    p.enqueue_mark("empty", now_ms=10)
    assert p.advance(10) == ["empty"]
    p.enqueue_media(ms(20), now_ms=20)
    p.enqueue_mark("after", now_ms=60)  # the 20 ms finished playing at 40
    assert p.next_mark_due_ms() == 60
    assert p.advance(60) == ["after"]


def test_marks_come_back_in_order_when_time_jumps():
    p = SimulatedPlayout()
    for i in range(3):
        p.enqueue_media(ms(20), now_ms=0)
        p.enqueue_mark(f"m{i}", now_ms=0)
    p.enqueue_mark("tail", now_ms=0)  # nothing after m2's audio: due with it
    assert p.advance(39.9) == ["m0"]
    assert p.advance(1000) == ["m1", "m2", "tail"]


def test_clear_drops_buffered_audio_and_returns_every_pending_mark_at_once():
    p = SimulatedPlayout()
    for i in range(1, 5):  # 2 s in four 500 ms pieces, a mark after each
        p.enqueue_media(ms(500, i), now_ms=0)
        p.enqueue_mark(f"m{i}", now_ms=0)
    assert p.advance(500) == ["m1"]
    assert p.clear(700) == ["m2", "m3", "m4"]
    assert p.advance(5000) == []
    assert p.clears == [ClearRecord(at_ms=700, dropped_ms=1300, flushed_marks=("m2", "m3", "m4"))]
    heard = p.heard(1000)
    assert heard.ulaw == ms(500, 1) + ms(200, 2) + ms(300, 0xFF)
    assert heard.spans == ((0, 700),)
    stats = heard.stats
    assert (stats.played_ms, stats.cleared_ms, stats.pending_ms, stats.clears) == (700, 1300, 0, 1)


def test_audio_after_a_clear_starts_when_it_arrives():
    p = SimulatedPlayout()
    p.enqueue_media(ms(1000, 0x01), now_ms=0)
    p.clear(300)
    p.enqueue_media(ms(100, 0x02), now_ms=300)  # same instant: follows the cut without a gap
    p.enqueue_media(ms(100, 0x03), now_ms=600)  # after the buffer ran dry
    p.enqueue_mark("end", now_ms=600)
    assert p.next_mark_due_ms() == 700
    heard = p.heard(800)
    assert heard.ulaw == ms(300, 0x01) + ms(100, 0x02) + ms(200, 0xFF) + ms(100, 0x03) + ms(100, 0xFF)
    assert heard.spans == ((0, 400), (600, 700))
    assert heard.stats.cleared_ms == 700


def test_clear_returns_marks_that_fell_due_but_were_not_advanced_yet():
    p = SimulatedPlayout()
    p.enqueue_media(ms(100), now_ms=0)
    p.enqueue_mark("played", now_ms=0)
    assert p.clear(150) == ["played"]
    assert p.clears[0].dropped_ms == 0


def test_clear_with_nothing_buffered_is_counted_and_drops_nothing():
    p = SimulatedPlayout()
    assert p.clear(5) == []
    p.enqueue_media(ms(10), now_ms=20)
    assert p.clear(40) == []
    stats = p.stats(40)
    assert (stats.clears, stats.cleared_ms, stats.played_ms) == (2, 0, 10)


def test_audio_still_buffered_when_the_call_ends_is_pending_not_heard():
    p = SimulatedPlayout()
    p.enqueue_media(ms(500), now_ms=0)
    p.enqueue_mark("late", now_ms=0)
    heard = p.heard(200)
    assert len(heard.ulaw) == 1600
    assert heard.stats.played_ms == 200
    assert heard.stats.pending_ms == 300
    assert heard.stats.marks_pending == 1


def test_float_clock_values_round_to_the_sample_and_keep_queued_audio_contiguous():
    p = SimulatedPlayout()
    p.enqueue_media(ms(20, 0x01), now_ms=0.04)  # 0.32 samples: position 0
    p.enqueue_media(ms(20, 0x02), now_ms=19.99)  # still playing: right behind
    p.enqueue_mark("m", now_ms=19.99)
    assert p.next_mark_due_ms() == 40
    assert p.advance(39.93) == []  # 319.44 samples: rounds to 319
    assert p.advance(39.94) == ["m"]  # 319.52: rounds to 320
    assert p.heard(40).ulaw == ms(20, 0x01) + ms(20, 0x02)


def test_time_must_not_go_backwards():
    p = SimulatedPlayout()
    p.advance(100)
    with pytest.raises(ValueError):
        p.enqueue_media(ms(10), now_ms=99)
    with pytest.raises(ValueError):
        SimulatedPlayout().advance(-1)


def test_empty_media_is_ignored():
    p = SimulatedPlayout()
    p.enqueue_media(b"", now_ms=0)
    p.enqueue_mark("m", now_ms=0)
    assert p.advance(0) == ["m"]
    assert p.heard(10).spans == ()
