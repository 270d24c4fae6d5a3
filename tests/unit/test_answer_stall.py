"""The answer-stall decision on plain timelines (seconds): when a silent model counts as stalled."""

from telephony_bridge.realtime.stall import AnswerStallPolicy


def test_idle_model_is_never_stalled():
    policy = AnswerStallPolicy(1.0)
    policy.reset(0.0)
    assert policy.deadline() is None
    assert not policy.stalled(100.0)  # silence between turns is not a stall


def test_answer_that_never_starts_speaking_gets_the_longer_first_audio_allowance():
    policy = AnswerStallPolicy(1.0, first_audio_timeout_s=4.0)
    policy.response_started("r1", 10.0)
    assert not policy.stalled(13.9)  # a slow start is not a stall
    assert policy.stalled(14.0)


def test_once_audio_flows_one_second_of_silence_after_the_playout_is_a_stall():
    policy = AnswerStallPolicy(1.0, first_audio_timeout_s=4.0)
    policy.response_started("r1", 0.0)
    policy.heard(2.5)
    policy.audio_received(2.5, 100)
    assert not policy.stalled(3.4)
    assert policy.stalled(3.5)


def test_any_event_is_a_sign_of_life():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.audio_received(0.0, 100)
    for t in (0.5, 1.2, 1.9):  # transcript deltas
        policy.heard(t)
    assert not policy.stalled(2.8)
    assert policy.stalled(2.9)


def test_audio_sent_ahead_is_played_out_before_the_model_counts_as_stalled():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.heard(0.1)
    policy.audio_received(0.1, 3000)  # the model sent 3 s of answer at once, then went quiet
    assert not policy.stalled(2.0)  # quiet for 1.9 s, but the caller still hears the answer
    assert policy.deadline() == 3.1
    assert policy.stalled(3.1)  # the playout ran dry


def test_audio_queues_behind_audio_still_playing():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    for t in (0.0, 0.1, 0.2, 0.3):
        policy.heard(t)
        policy.audio_received(t, 500)
    assert policy.playout_ends_at == 2.0
    assert policy.deadline() == 2.0


def test_stall_reached_by_silence_when_the_playout_ran_dry_earlier():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.heard(0.0)
    policy.audio_received(0.0, 200)
    policy.heard(0.5)  # a transcript delta after the audio
    assert policy.deadline() == 1.5


def test_finished_or_cancelled_audio_is_not_due():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.response_started("r2", 0.0)
    policy.audio_finished("r1")  # its audio is complete; response.done may come later
    assert policy.stalled(10.0)  # r2 still owes audio
    policy.audio_finished("r2")  # cancelled at a barge-in
    assert policy.deadline() is None and not policy.stalled(5.0)


def test_reset_forgets_the_old_session():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.audio_received(0.0, 5000)
    policy.reset(2.0)
    assert policy.deadline() is None
    policy.response_started("r2", 2.1)
    policy.audio_received(2.1, 100)
    assert policy.deadline() == 3.1  # the old session's queued audio no longer counts


def test_zero_timeout_turns_the_detection_off():
    policy = AnswerStallPolicy(0)
    policy.response_started("r1", 0.0)
    assert policy.deadline() is None and not policy.stalled(60.0)


def test_time_the_bridge_itself_was_held_up_is_not_the_models_silence():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.heard(0.0)
    policy.audio_received(0.0, 100)  # the first delta; the next is due 25 ms later
    policy.bridge_paused(1.1, now=1.15)  # the process was not scheduled: the watchdog woke 1.1 s late
    assert not policy.stalled(1.15)  # the model's next delta may be sitting unread, or not yet sent
    assert policy.stalled(1.1 + 1.0)  # a model that stays silent once the bridge runs again is cut off


def test_a_pause_never_counts_the_model_as_heard_after_now():
    policy = AnswerStallPolicy(1.0)
    policy.response_started("r1", 0.0)
    policy.heard(0.9)  # the reader ran before the watchdog after the pause
    policy.audio_received(0.9, 100)
    policy.bridge_paused(0.8, now=1.0)
    assert policy.last_heard_at == 1.0
