"""PlaybackLedger: one test per barge-in pitfall, a simulated carrier, and a property test.

Everything runs on a fake clock: times are plain floats in ms.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from telephony_bridge.realtime.playback import (
    EpisodeEnded,
    Interruption,
    MarkOutcome,
    PlaybackLedger,
    Truncation,
)

R1, R2, R3 = "resp_C1a2b3c4d5e6f7", "resp_C2a2b3c4d5e6f7", "resp_C3a2b3c4d5e6f7"
I1, I2, I3 = "item_D1a2b3c4d5e6f7", "item_D2a2b3c4d5e6f7", "item_D3a2b3c4d5e6f7"


def deliver(
    ledger: PlaybackLedger, response_id: str, item_id: str, duration_ms: float, now_ms: float
) -> str:
    """What the runtime does per model delta: record what the server sent, then send it on."""
    assert ledger.accepts(response_id)
    ledger.audio_received(response_id, item_id, 0, duration_ms)
    return ledger.audio_sent(response_id, item_id, 0, duration_ms, now_ms)


def start(ledger: PlaybackLedger, response_id: str, item_id: str) -> None:
    ledger.response_started(response_id)
    ledger.item_added(response_id, item_id)


# -- the pitfalls, one by one ------------------------------------------------------------------


def test_pitfall_1_truncation_is_clamped_to_audio_the_server_sent() -> None:
    """Truncating beyond the server's audio is rejected ("already shorter than")."""
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    # The server sent 480 ms; resampling rounded what went to the phone up to 500 ms.
    ledger.audio_received(R1, I1, 0, 480.0)
    mark = ledger.audio_sent(R1, I1, 0, 500.0, now_ms=0.0)
    assert ledger.mark_echoed(mark, 500.0).kind == "played"
    assert ledger.heard_ms(I1, 0, 600.0) == 500.0
    interruption = ledger.interrupt(600.0)  # the response is still streaming
    assert interruption is not None
    assert interruption.truncations == (Truncation(I1, 0, 480, delete=False),)


def test_pitfall_2_nothing_heard_deletes_instead_of_truncating_at_zero() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    deliver(ledger, R1, I1, 200.0, now_ms=1000.0)
    interruption = ledger.interrupt(1000.9)  # 0.9 ms played floors to 0
    assert interruption is not None
    assert interruption.truncations == (Truncation(I1, 0, 0, delete=True),)


def test_pitfall_3_interrupt_after_all_audio_was_sent_still_clears() -> None:
    """Every frame was written and the response is done, but the carrier is still playing it."""
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    marks = [deliver(ledger, R1, I1, 1000.0, now_ms=t) for t in (0.0, 10.0, 20.0)]
    assert ledger.response_finished(R1) is None  # audio is still queued at the carrier
    assert ledger.mark_echoed(marks[0], 1000.0).kind == "played"
    assert ledger.is_active(1500.0)
    interruption = ledger.interrupt(1500.0)
    # Non-None is the runtime's cue to send `clear`: 1.5 s of queued audio would otherwise play.
    assert interruption is not None
    assert interruption.cleared_ms == pytest.approx(1500.0)
    assert interruption.truncations == (Truncation(I1, 0, 1500, delete=False),)
    assert interruption.interrupted_response_ids == ()  # nothing left to cancel


def test_pitfall_4_no_interruption_when_nothing_is_playing() -> None:
    ledger = PlaybackLedger()
    assert ledger.interrupt(0.0) is None
    # A whole answer played out and finished: the caller speaking now interrupts nothing.
    start(ledger, R1, I1)
    mark = deliver(ledger, R1, I1, 300.0, now_ms=0.0)
    ledger.mark_echoed(mark, 300.0)
    ledger.response_finished(R1)
    generation = ledger.generation
    assert not ledger.is_active(5000.0)
    assert ledger.interrupt(5000.0) is None
    assert ledger.generation == generation  # and nothing changed


def test_pitfall_5_stale_marks_after_clear_are_flushed_not_played() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    old_marks = [deliver(ledger, R1, I1, 100.0, now_ms=0.0) for _ in range(5)]
    assert ledger.interrupt(50.0) is not None
    # The next answer starts before the carrier's echoes of the cleared marks arrive.
    start(ledger, R2, I2)
    new_mark = deliver(ledger, R2, I2, 400.0, now_ms=60.0)
    for name in old_marks:  # Twilio echoes every pending mark on clear
        assert ledger.mark_echoed(name, 65.0) == MarkOutcome("flushed")
    assert ledger.heard_ms(I2, 0, 65.0) == pytest.approx(5.0)  # only its own 5 ms of playback
    assert ledger.pending_marks == 1
    outcome = ledger.mark_echoed(new_mark, 460.0)
    assert (outcome.kind, outcome.item_id, outcome.played_ms) == ("played", I2, 400.0)


def test_pitfall_6_late_deltas_of_an_interrupted_response_are_refused() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    deliver(ledger, R1, I1, 100.0, now_ms=0.0)
    interruption = ledger.interrupt(40.0)
    assert interruption is not None and interruption.interrupted_response_ids == (R1,)
    assert not ledger.accepts(R1)
    ledger.audio_received(R1, I1, 0, 100.0)  # a delta already in flight: ignored
    with pytest.raises(ValueError):
        ledger.audio_sent(R1, I1, 0, 100.0, now_ms=45.0)
    ledger.item_added(R1, I3)  # ignored as well
    assert ledger.response_finished(R1) is None  # its response.done changes nothing
    assert not ledger.is_active(50.0) and ledger.interrupt(50.0) is None


def test_pitfall_7_heard_comes_from_marks_not_wall_clock_since_first_delta() -> None:
    ledger = PlaybackLedger()
    # Answer 1: 2 s of audio delivered in 100 ms (20x real time).
    start(ledger, R1, I1)
    first = [deliver(ledger, R1, I1, 500.0, now_ms=t) for t in (0.0, 25.0, 50.0, 75.0)]
    ledger.response_finished(R1)
    # Answer 2 arrives at t=200 but queues behind answer 1 until t=2000.
    start(ledger, R2, I2)
    second = [deliver(ledger, R2, I2, 500.0, now_ms=t) for t in (200.0, 210.0)]
    for i, name in enumerate(first):
        ledger.mark_echoed(name, 500.0 * (i + 1))
    # Since its first delta 2300 ms passed on the wall clock; the caller heard 500 ms of it.
    assert ledger.heard_ms(I2, 0, 2500.0) == pytest.approx(500.0)
    assert ledger.mark_echoed(second[0], 2500.0).kind == "played"
    interruption = ledger.interrupt(2700.0)
    assert interruption is not None
    assert interruption.truncations == (Truncation(I2, 0, 700, delete=False),)


def test_pitfall_7_model_stall_leaves_the_carrier_idle() -> None:
    """After a stall the next segment starts when it is sent, not when the previous one ended."""
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    mark = deliver(ledger, R1, I1, 200.0, now_ms=0.0)
    ledger.mark_echoed(mark, 200.0)
    deliver(ledger, R1, I1, 200.0, now_ms=1000.0)  # the model stalled for 800 ms
    assert ledger.heard_ms(I1, 0, 1100.0) == pytest.approx(300.0)  # wall clock would say 1100
    interruption = ledger.interrupt(1100.0)
    assert interruption is not None
    assert interruption.truncations == (Truncation(I1, 0, 300, delete=False),)


def test_pitfall_8_every_queued_answer_is_truncated() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    m1 = deliver(ledger, R1, I1, 1000.0, now_ms=0.0)
    ledger.response_finished(R1)
    start(ledger, R2, I2)
    deliver(ledger, R2, I2, 800.0, now_ms=100.0)
    ledger.response_finished(R2)
    start(ledger, R3, I3)  # announced, no audio yet
    ledger.mark_echoed(m1, 1000.0)
    interruption = ledger.interrupt(1250.0)
    assert interruption is not None
    assert interruption.truncations == (
        Truncation(I2, 0, 250, delete=False),  # the one playing: at what was heard
        Truncation(I3, 0, 0, delete=True),  # queued without audio: deleted
    )
    assert interruption.interrupted_response_ids == (R3,)


# -- more barge-in situations ------------------------------------------------------------------


def test_two_answers_queued_at_once_first_truncated_later_deleted() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    start(ledger, R2, I2)
    deliver(ledger, R1, I1, 600.0, now_ms=0.0)
    deliver(ledger, R2, I2, 600.0, now_ms=5.0)
    interruption = ledger.interrupt(250.0)
    assert interruption is not None
    assert interruption.truncations == (Truncation(I1, 0, 250, False), Truncation(I2, 0, 0, True))
    assert interruption.interrupted_response_ids == (R1, R2)
    assert interruption.cleared_ms == pytest.approx(950.0)


def test_barge_in_before_the_first_delta_deletes_the_item() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    assert ledger.is_active(0.0)
    interruption = ledger.interrupt(10.0)
    assert interruption == Interruption(
        generation=1,
        truncations=(Truncation(I1, 0, 0, delete=True),),
        cleared_ms=0.0,
        episode_ended=None,
        interrupted_response_ids=(R1,),
    )


def test_barge_in_before_any_item_only_cancels_the_response() -> None:
    ledger = PlaybackLedger()
    ledger.response_started(R1)
    interruption = ledger.interrupt(10.0)
    assert interruption is not None
    assert interruption.truncations == () and interruption.interrupted_response_ids == (R1,)


def test_fully_played_item_gets_no_truncation_while_a_later_one_plays() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    m1 = deliver(ledger, R1, I1, 300.0, now_ms=0.0)
    ledger.response_finished(R1)
    start(ledger, R2, I2)
    deliver(ledger, R2, I2, 300.0, now_ms=10.0)
    ledger.mark_echoed(m1, 300.0)
    interruption = ledger.interrupt(400.0)
    assert interruption is not None
    assert [t.item_id for t in interruption.truncations] == [I2]


def test_text_only_item_of_a_finished_response_is_not_deleted() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    ledger.response_finished(R1)  # no audio ever came for I1
    start(ledger, R2, I2)
    deliver(ledger, R2, I2, 300.0, now_ms=0.0)
    interruption = ledger.interrupt(100.0)
    assert interruption is not None
    assert [t.item_id for t in interruption.truncations] == [I2]


def test_interrupt_truncates_the_item_being_played_inside_a_segment() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    marks = [deliver(ledger, R1, I1, 20.0, now_ms=0.0) for _ in range(50)]
    for i, name in enumerate(marks[:10]):
        ledger.mark_echoed(name, 20.0 * (i + 1))
    assert ledger.heard_ms(I1, 0, 207.5) == pytest.approx(207.5)
    # The clock never runs past the unconfirmed segment: a late mark caps the estimate.
    assert ledger.heard_ms(I1, 0, 400.0) == pytest.approx(220.0)
    interruption = ledger.interrupt(207.5)
    assert interruption is not None and interruption.truncations == (Truncation(I1, 0, 207, False),)


# -- marks ---------------------------------------------------------------------------------------


def test_mark_names_carry_the_generation() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    assert deliver(ledger, R1, I1, 20.0, 0.0) == "g0.0"
    assert deliver(ledger, R1, I1, 20.0, 0.0) == "g0.1"
    ledger.interrupt(5.0)
    start(ledger, R2, I2)
    assert deliver(ledger, R2, I2, 20.0, 6.0) == "g1.0"


@pytest.mark.parametrize("name", ["", "g", "g0", "g0.", "gx.1", "g0.x", "mark-1", "g9.0", "g0.7", "g-1.0", "g0.0.0"])
def test_unknown_marks(name: str) -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    deliver(ledger, R1, I1, 20.0, 0.0)
    assert ledger.mark_echoed(name, 10.0) == MarkOutcome("unknown")
    assert ledger.pending_marks == 1


def test_duplicate_echo_is_unknown() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    first = deliver(ledger, R1, I1, 20.0, 0.0)
    deliver(ledger, R1, I1, 20.0, 0.0)
    assert ledger.mark_echoed(first, 20.0).kind == "played"
    assert ledger.mark_echoed(first, 21.0).kind == "unknown"


def test_a_lost_mark_is_confirmed_by_the_next_one() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    marks = [deliver(ledger, R1, I1, 100.0, 0.0) for _ in range(3)]
    outcome = ledger.mark_echoed(marks[1], 200.0)  # marks[0]'s echo never came
    assert (outcome.kind, outcome.played_ms) == ("played", 200.0)
    assert ledger.pending_marks == 1


def test_mark_of_an_empty_buffer_comes_back_at_once() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    mark = ledger.audio_sent(R1, I1, 0, 0.0, now_ms=0.0)
    assert ledger.mark_echoed(mark, 1.0).kind == "played"


def test_bad_durations_are_refused() -> None:
    ledger = PlaybackLedger()
    ledger.response_started(R1)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            ledger.audio_received(R1, I1, 0, bad)
        with pytest.raises(ValueError):
            ledger.audio_sent(R1, I1, 0, bad, 0.0)


# -- episodes (WebSocketMediaStarted / WebSocketMediaEnded) -------------------------------------


def test_episode_ends_on_the_last_mark_after_the_response_finished() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    assert not ledger.episode_active  # so the next audio_sent starts an episode
    marks = [deliver(ledger, R1, I1, 100.0, 0.0) for _ in range(3)]
    assert ledger.episode_active
    assert ledger.response_finished(R1) is None
    assert ledger.mark_echoed(marks[0], 100.0).episode_ended is None
    assert ledger.mark_echoed(marks[1], 200.0).episode_ended is None
    assert ledger.mark_echoed(marks[2], 300.0).episode_ended == EpisodeEnded(300.0)
    assert not ledger.episode_active


def test_episode_ends_on_response_finished_when_everything_already_played() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    mark = deliver(ledger, R1, I1, 100.0, 0.0)
    assert ledger.mark_echoed(mark, 100.0).episode_ended is None  # the response may say more
    assert ledger.response_finished(R1) == EpisodeEnded(100.0)


def test_episode_spans_answers_that_overlap() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    m1 = deliver(ledger, R1, I1, 100.0, 0.0)
    assert ledger.response_finished(R1) is None
    start(ledger, R2, I2)
    was_active = ledger.episode_active
    m2 = deliver(ledger, R2, I2, 100.0, 10.0)
    assert was_active  # no new WebSocketMediaStarted for the second answer
    assert ledger.mark_echoed(m1, 100.0).episode_ended is None
    assert ledger.mark_echoed(m2, 200.0).episode_ended is None
    assert ledger.response_finished(R2) == EpisodeEnded(200.0)


def test_interrupt_ends_the_episode_with_what_was_heard() -> None:
    ledger = PlaybackLedger()
    start(ledger, R1, I1)
    m = deliver(ledger, R1, I1, 100.0, 0.0)
    deliver(ledger, R1, I1, 100.0, 0.0)
    ledger.mark_echoed(m, 100.0)
    interruption = ledger.interrupt(130.0)
    assert interruption is not None
    assert interruption.episode_ended == EpisodeEnded(pytest.approx(130.0), interrupted=True)
    assert not ledger.episode_active


def test_no_state_survives_a_long_call() -> None:
    ledger = PlaybackLedger()
    now = 0.0
    for turn in range(200):
        rid, iid = f"resp_{turn}", f"item_{turn}"
        start(ledger, rid, iid)
        marks = [deliver(ledger, rid, iid, 20.0, now) for _ in range(10)]
        if turn % 2:
            ledger.interrupt(now + 50.0)
            for name in marks:
                ledger.mark_echoed(name, now + 60.0)
        else:
            ledger.response_finished(rid)
            for i, name in enumerate(marks):
                ledger.mark_echoed(name, now + 20.0 * (i + 1))
        now += 1000.0
    assert not ledger.is_active(now)
    # White-box on purpose: the point is that nothing accumulates over a call.
    assert not ledger._items and not ledger._silent_items and not ledger._responses
    assert not ledger._segments


# -- a simulated carrier playing in real time ---------------------------------------------------


@dataclass
class SimulatedCarrier:
    """Twilio's playback in miniature: FIFO real-time playout, marks echoed when reached.

    ``latency_ms`` is one-way network delay: media and clear reach the carrier that much later,
    mark echoes reach the bridge that much later.
    """

    latency_ms: float = 0.0
    buffer_dry_at: float = 0.0
    playout: list[list] = field(default_factory=list)  # [start, end, item_id]
    echoes: deque[tuple[float, str]] = field(default_factory=deque)

    def media(self, item_id: str, duration_ms: float, now_ms: float) -> None:
        start = max(self.buffer_dry_at, now_ms + self.latency_ms)
        self.buffer_dry_at = start + duration_ms
        self.playout.append([start, self.buffer_dry_at, item_id])

    def mark(self, name: str, now_ms: float) -> None:
        reached = max(self.buffer_dry_at, now_ms + self.latency_ms)
        self.echoes.append((reached + self.latency_ms, name))

    def clear(self, now_ms: float) -> None:
        arrives = now_ms + self.latency_ms
        for segment in self.playout:
            segment[0] = min(segment[0], arrives)
            segment[1] = min(segment[1], arrives)
        self.buffer_dry_at = min(self.buffer_dry_at, arrives)
        self.echoes = deque((min(t, arrives + self.latency_ms), name) for t, name in self.echoes)

    def due(self, now_ms: float) -> list[str]:
        out = []
        while self.echoes and self.echoes[0][0] <= now_ms:
            out.append(self.echoes.popleft()[1])
        return out

    def heard(self, item_id: str) -> float:
        return sum(end - start for start, end, item in self.playout if item == item_id)


def run_call(
    deliveries: list[tuple[float, str, str, float]],
    barge_in_ms: float,
    latency_ms: float = 0.0,
    finish_at: dict[str, float] | None = None,
) -> tuple[PlaybackLedger, SimulatedCarrier, Interruption | None, list[MarkOutcome]]:
    """Step a fake clock 1 ms at a time, doing what the runtime does, until the barge-in."""
    ledger = PlaybackLedger()
    carrier = SimulatedCarrier(latency_ms=latency_ms)
    pending = sorted(deliveries)
    finish_at = dict(finish_at or {})
    outcomes: list[MarkOutcome] = []
    responses = {rid: iid for _, rid, iid, _ in deliveries}
    for rid, iid in responses.items():
        start(ledger, rid, iid)
    interruption = None
    now = 0.0
    while now <= barge_in_ms + 200.0:
        for name in carrier.due(now):
            outcomes.append(ledger.mark_echoed(name, now))
        while pending and pending[0][0] <= now:
            _, rid, iid, duration = pending.pop(0)
            if ledger.accepts(rid):
                name = deliver(ledger, rid, iid, duration, now)
                carrier.media(iid, duration, now)
                carrier.mark(name, now)
        for rid, when in list(finish_at.items()):
            if when <= now:
                ledger.response_finished(rid)
                del finish_at[rid]
        if now == barge_in_ms:
            interruption = ledger.interrupt(now)
            if interruption is not None:
                carrier.clear(now)
        now += 1.0
    return ledger, carrier, interruption, outcomes


def fast_answer(rid: str, iid: str, total_ms: float, chunk_ms: float, every_ms: float, t0: float = 0.0):
    count = int(total_ms // chunk_ms)
    return [(t0 + i * every_ms, rid, iid, chunk_ms) for i in range(count)]


@pytest.mark.parametrize("latency_ms", [0.0, 5.0])
@pytest.mark.parametrize("barge_in_ms", [37.0, 480.0, 1234.0, 2999.0])
@pytest.mark.parametrize(
    ("chunk_ms", "every_ms"),
    [(100.0, 20.0), (20.0, 20.0), (40.0, 60.0)],  # 5x real time, real time, slower with gaps
    ids=["fast", "realtime", "starved"],
)
def test_truncation_matches_what_the_simulated_carrier_played(
    latency_ms: float, barge_in_ms: float, chunk_ms: float, every_ms: float
) -> None:
    deliveries = fast_answer(R1, I1, 3000.0, chunk_ms, every_ms, t0=0.0)
    _, carrier, interruption, outcomes = run_call(deliveries, barge_in_ms, latency_ms)
    assert interruption is not None
    (truncation,) = interruption.truncations
    played = carrier.heard(I1)
    assert abs(truncation.audio_end_ms - played) <= 20.0, (truncation, played)
    assert truncation.delete == (truncation.audio_end_ms == 0)
    # Every mark the clear flushed came back as "flushed", none as "played" after the barge-in.
    assert all(o.kind in ("played", "flushed") for o in outcomes)


def test_two_queued_answers_against_the_simulated_carrier() -> None:
    deliveries = fast_answer(R1, I1, 1000.0, 100.0, 10.0) + fast_answer(R2, I2, 1000.0, 100.0, 10.0, t0=300.0)
    _, carrier, interruption, _ = run_call(
        deliveries, barge_in_ms=1400.0, latency_ms=5.0, finish_at={R1: 150.0, R2: 450.0}
    )
    assert interruption is not None
    (truncation,) = interruption.truncations  # answer 1 played out: no truncation for it
    assert truncation.item_id == I2
    assert abs(truncation.audio_end_ms - carrier.heard(I2)) <= 20.0


def test_stale_marks_do_not_count_for_the_next_answer_on_the_simulated_carrier() -> None:
    ledger = PlaybackLedger()
    carrier = SimulatedCarrier(latency_ms=20.0)  # echoes of the clear arrive after answer 2 started
    start(ledger, R1, I1)
    for _ in range(10):
        name = deliver(ledger, R1, I1, 100.0, 0.0)
        carrier.media(I1, 100.0, 0.0)
        carrier.mark(name, 0.0)
    # The first segment played (20..120 at the carrier) and its echo arrived before the barge-in.
    assert [ledger.mark_echoed(n, 140.0).kind for n in carrier.due(140.0)] == ["played"]
    assert ledger.interrupt(150.0) is not None
    carrier.clear(150.0)
    start(ledger, R2, I2)
    name = deliver(ledger, R2, I2, 500.0, 151.0)
    carrier.media(I2, 500.0, 151.0)
    carrier.mark(name, 151.0)
    kinds = [ledger.mark_echoed(n, 190.0).kind for n in carrier.due(190.0)]
    assert kinds == ["flushed"] * 9
    assert ledger.pending_marks == 1 and ledger.episode_active
    assert ledger.heard_ms(I2, 0, 190.0) == pytest.approx(39.0)


# -- property: truncation bounds and monotonic hearing ------------------------------------------

_pick = st.integers(0, 7)  # resolved against what exists at that point of the run
_ms = st.floats(0, 300)
_delta = st.tuples(st.just("delta"), _pick, _pick, _ms, st.floats(0.8, 1.2))
# Repeats in one_of weight the draw toward the runtime's common path (deltas, ticks, echoes), so
# most examples get as far as audio playing and being cut.
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("start")),
        st.tuples(st.just("item"), _pick),
        _delta,
        _delta,
        _delta,
        st.tuples(st.just("received"), _pick, _pick, _ms),
        st.tuples(st.just("sent"), _pick, _pick, _ms),
        st.tuples(st.just("echo_stale"), _pick),
        st.tuples(st.just("echo_next")),
        st.tuples(st.just("echo_next")),
        st.tuples(st.just("tick"), st.floats(0, 150)),
        st.tuples(st.just("tick"), st.floats(0, 150)),
        st.tuples(st.just("finish"), _pick),
        st.tuples(st.just("interrupt")),
    ),
    min_size=20,
    max_size=100,
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(_ops)
def test_property_truncation_bounds_and_monotonic_hearing(ops: list[tuple]) -> None:
    """Random runtimes: audio_end_ms in [0, received], delete iff 0, heard_ms never goes back."""
    ledger = PlaybackLedger()
    now = 0.0
    responses: list[str] = []  # every response ever started, ids unique as on the wire
    items: dict[str, list[str]] = {}  # response -> its items
    in_flight: deque[str] = deque()  # marks sent and not yet echoed, as the carrier holds them
    echoed: list[str] = []  # marks already echoed, to replay as duplicates / stale echoes
    received: dict[str, float] = {}  # per item, since the ledger last forgot its items
    last_heard: dict[str, float] = {}

    def live() -> list[str]:
        return [r for r in responses if ledger.accepts(r)]

    def item_of(rid: str, k: int) -> str:
        own = items.setdefault(rid, [])
        if not own or k >= 6:  # sometimes audio for an item never announced by item_added
            own.append(f"{rid}.i{len(own)}")
            return own[-1]
        return own[k % len(own)]

    for op in ops:
        kind = op[0]
        if kind == "start":
            responses.append(f"r{len(responses)}")
            ledger.response_started(responses[-1])
        elif kind == "item" and responses:
            rid = responses[op[1] % len(responses)]
            items.setdefault(rid, []).append(f"{rid}.i{len(items.get(rid, []))}")
            ledger.item_added(rid, items[rid][-1])
        elif kind in ("delta", "received", "sent") and live():
            rid = live()[op[1] % len(live())]
            iid = item_of(rid, op[2])
            if kind in ("delta", "received"):
                ledger.audio_received(rid, iid, 0, op[3])
                received[iid] = received.get(iid, 0.0) + op[3]
            if kind in ("delta", "sent"):
                # The phone-side duration differs a little from the server's (resampling).
                duration = op[3] * op[4] if kind == "delta" else op[3]
                in_flight.append(ledger.audio_sent(rid, iid, 0, duration, now))
                last_heard.setdefault(iid, 0.0)
        elif kind == "echo_next" and in_flight:
            name = in_flight.popleft()
            echoed.append(name)
            ledger.mark_echoed(name, now)
        elif kind == "echo_stale" and echoed:
            outcome = ledger.mark_echoed(echoed[op[1] % len(echoed)], now)
            assert outcome.kind in ("flushed", "unknown")  # an echo never counts twice
        elif kind == "tick":
            now += op[1]
        elif kind == "finish" and responses:
            ledger.response_finished(responses[op[1] % len(responses)])
        elif kind == "interrupt":
            active = ledger.is_active(now)
            interruption = ledger.interrupt(now)
            assert (interruption is None) == (not active)
            if interruption is not None:
                for t in interruption.truncations:
                    event("truncated mid-item" if t.audio_end_ms else "deleted")  # coverage stats
                    assert isinstance(t.audio_end_ms, int)
                    assert 0 <= t.audio_end_ms <= received.get(t.item_id, 0.0)
                    assert t.delete == (t.audio_end_ms == 0)
                assert interruption.cleared_ms >= 0.0
                assert not ledger.is_active(now) and ledger.pending_marks == 0
                # The carrier echoes every cleared mark; they must all come back "flushed".
                while in_flight:
                    name = in_flight.popleft()
                    echoed.append(name)
                    assert ledger.mark_echoed(name, now).kind == "flushed"
                received.clear()
                last_heard.clear()
            continue
        if not ledger.is_active(now):  # settled: the ledger forgot its items
            received.clear()
            last_heard.clear()
            continue
        for iid, before in last_heard.items():
            heard = ledger.heard_ms(iid, 0, now)
            assert heard >= before - 1e-9, (iid, before, heard)
            last_heard[iid] = heard
