"""server/call_record.py: a call's journal becomes its stored record and timeline."""

from __future__ import annotations

from tests.store.journal_samples import GREETING, record


def test_the_record_holds_the_numbers_times_outcome_recording_and_latency():
    call = record()
    assert (call.from_number, call.to_number, call.scenario, call.carrier) == ("+15550199", "+15550600", "recording", "twilio")
    assert call.end_reason == "caller_hung_up" and call.duration_s == 4.287
    assert (call.ended_at - call.started_at).total_seconds() == 4.285
    assert call.recording == "20260101-000000-0123456789abcdef0123.wav" and call.recording_offset_s == 0.25
    assert (call.barge_ins, call.tool_calls) == (1, 1)
    assert call.latency == {"turns_ms": [800], "first_audio_ms": 11, "median_turn_ms": 800, "max_turn_ms": 800}


def test_both_sides_transcripts_with_times_and_the_agent_cut_at_what_the_caller_heard():
    kinds = [(i.kind, i.start_s, i.end_s) for i in record().items]
    assert kinds == [("agent", 0.011, 1.524), ("caller", 1.524, 2.368), ("barge_in", 1.524, 1.524),
                     ("tool_call", 2.7, 2.95), ("agent", 3.168, 3.9), ("dtmf", 4.0, 4.0)]
    greeting, caller, barge_in, tool, answer, _ = record().items
    assert greeting.text == GREETING and greeting.data["heard_ms"] == 1500
    heard = greeting.data["heard_text"]
    assert GREETING.startswith(heard) and 0 < len(heard.split()) < len(GREETING.split())
    assert caller.text == "Wait, what time is it?"
    assert barge_in.data["heard_ms"] == 1500 and barge_in.data["item_id"] == "item_A"
    assert tool.data == {"name": "get_time", "arguments": "{}", "call_id": "call_1", "output": '{"time": "12:00"}',
                         "duration_ms": 250}
    assert answer.text == "It's noon." and answer.data["latency_ms"] == 800 and "heard_ms" not in answer.data


def test_a_deleted_answer_was_not_heard_at_all():
    from telephony_bridge.server.call_record import timeline_items
    from tests.store.journal_samples import journal

    entries = journal()
    entries[4] = {"t": 1.524, "event": "barge_in", "truncations": [{"item_id": "item_A", "audio_end_ms": None, "deleted": True}]}
    greeting = timeline_items(entries)[0]
    assert greeting.data["heard_ms"] == 0 and greeting.data["heard_text"] == ""
