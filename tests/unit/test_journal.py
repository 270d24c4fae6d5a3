"""The call journal: what each model event becomes, where its files go, and what it logs."""

from __future__ import annotations

import logging

import orjson
import pytest

from telephony_bridge.realtime.events import MediaEvents as M
from telephony_bridge.realtime.events import RealtimeAPIEvents as E
from telephony_bridge.realtime.observer import (
    ClientEventSent,
    Interrupted,
    MediaEvent,
    ServerEvent,
    Truncation,
)
from telephony_bridge.server.journal import CallJournal, UnsafeFileName, safe_child

CALL = "CA" + "0" * 32


def events_of(journal: CallJournal) -> list[dict]:
    return [{k: v for k, v in entry.items() if k != "t"} for entry in journal.entries]


@pytest.mark.parametrize("member, event, expected", [
    (E.InputAudioBufferSpeechStarted, {"audio_start_ms": 1200, "item_id": "i"},
     {"event": "caller.speech_started", "audio_start_ms": 1200}),
    (E.InputAudioBufferSpeechStopped, {"audio_end_ms": 2400}, {"event": "caller.speech_stopped", "audio_end_ms": 2400}),
    (E.ConversationItemInputAudioTranscriptionCompleted, {"transcript": "where is my order"},
     {"event": "caller.transcript", "text": "where is my order"}),
    (E.ResponseCreated, {"response": {"id": "resp_1", "status": "in_progress"}},
     {"event": "agent.response_started", "response_id": "resp_1"}),
    (E.ResponseAudioTranscriptDelta, {"item_id": "item_1", "delta": "Hel"},
     {"event": "agent.transcript_delta", "item_id": "item_1", "text": "Hel"}),
    (E.ResponseAudioTranscriptDone, {"item_id": "item_1", "transcript": "Hello"},
     {"event": "agent.transcript", "item_id": "item_1", "text": "Hello"}),
    (E.ResponseFunctionCallArgumentsDone, {"name": "lookup_order", "arguments": '{"q":"1"}', "call_id": "call_9"},
     {"event": "agent.tool_call", "name": "lookup_order", "arguments": '{"q":"1"}', "call_id": "call_9"}),
    (E.ResponseDone, {"response": {"id": "resp_1", "status": "cancelled", "output": []}},
     {"event": "agent.response_done", "response_id": "resp_1", "status": "cancelled"}),
    (E.Error, {"error": {"code": "bad", "message": "no", "type": "invalid_request_error"}},
     {"event": "model.error", "code": "bad", "message": "no"}),
    (M.WebSocketMediaStarted, {"encoding": "PCM16", "tag": "x", "customParameters": {}},
     {"event": "agent.audio_started", "encoding": "PCM16"}),
    (M.WebSocketMediaEnded, {"mediaInfo": {"duration": 1.23456}, "tag": "x"}, {"event": "agent.audio_ended", "duration_s": 1.235}),
    (M.WebSocketReconnecting, {"attempt": 2, "code": 1006}, {"event": "model.reconnecting", "attempt": 2, "code": 1006}),
    (M.WebSocketReconnected, {"attempt": 1}, {"event": "model.reconnected", "attempt": 1}),
])
def test_each_model_event_becomes_one_entry_with_only_its_meaningful_fields(member, event, expected):
    journal = CallJournal("call X", None)
    journal.model_event(None, MediaEvent(member, event) if isinstance(member, M) else ServerEvent(member, event))
    assert events_of(journal) == [expected]


def test_unlisted_events_and_other_client_events_are_not_journaled():
    journal = CallJournal("call X", None)
    journal.model_event(None, ServerEvent(E.SessionCreated, {"session": {"id": "s"}}))
    journal.model_event(None, ServerEvent(E.ResponseAudioDelta, {"delta": "AAAA"}))  # audio never enters the journal
    journal.model_event(None, ClientEventSent({"type": "input_audio_buffer.append", "audio": "AAAA"}))
    journal.model_event(None, ClientEventSent({"type": "conversation.item.create", "item": {"type": "message"}}))
    assert journal.entries == []


def test_a_tool_result_the_scenario_sends_and_a_barge_in_are_journaled():
    journal = CallJournal("call X", None)
    journal.model_event(None, ClientEventSent({"type": "conversation.item.create",
                                               "item": {"type": "function_call_output", "call_id": "call_9", "output": "shipped"}}))
    journal.model_event(None, Interrupted((Truncation("item_1", 840, False),)))
    assert events_of(journal) == [
        {"event": "agent.tool_result", "call_id": "call_9", "output": "shipped"},
        {"event": "barge_in", "truncations": [{"item_id": "item_1", "audio_end_ms": 840, "deleted": False}]},
    ]


def test_entries_carry_seconds_since_the_journal_started(monkeypatch):
    clock = iter([100.0, 101.2345])
    monkeypatch.setattr("telephony_bridge.server.journal.time.monotonic", lambda: next(clock))
    journal = CallJournal("call X", None)
    journal.record("call.started", caller="+1555")
    assert journal.entries == [{"t": 1.234, "event": "call.started", "caller": "+1555"}]


def test_with_a_directory_entries_stream_to_jsonl_and_the_whole_journal_is_written_at_close(tmp_path):
    directory = tmp_path / "calls"  # created on open
    journal = CallJournal("call X", directory)
    journal.open(CALL)
    journal.record("call.started", caller="+1555")
    journal.record("dtmf", digit="5")
    live = directory / f"{CALL}.jsonl"
    assert [orjson.loads(line)["event"] for line in live.read_bytes().splitlines()] == ["call.started", "dtmf"]  # flushed as it happens
    assert not (directory / f"{CALL}.json").exists()

    journal.close()

    assert journal.path == directory / f"{CALL}.json"
    assert orjson.loads(journal.path.read_bytes()) == journal.entries
    assert [entry["event"] for entry in journal.entries] == ["call.started", "dtmf"]


def test_without_a_directory_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    journal = CallJournal("call X", None)
    journal.open(CALL)
    journal.record("call.started")
    journal.close()
    assert journal.path is None and list(tmp_path.iterdir()) == []


def test_quiet_events_log_at_debug_and_the_rest_at_info(caplog):
    journal = CallJournal("call X", None)
    with caplog.at_level(logging.INFO, logger="telephony_bridge.call"):
        journal.record("agent.transcript_delta", text="Hel")
        journal.record("agent.audio_started", encoding="PCM16")
        journal.record("caller.transcript", text="hello", unused=None)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, "call X caller.transcript text='hello'")]
    assert len(journal.entries) == 3  # quiet means not logged, never not journaled

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="telephony_bridge.call"):
        journal.record("agent.transcript_delta", text="lo")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.DEBUG, "call X agent.transcript_delta text='lo'")]


def test_a_long_log_summary_is_cut_at_300_characters(caplog):
    journal = CallJournal("call X", None)
    with caplog.at_level(logging.INFO, logger="telephony_bridge.call"):
        journal.record("caller.transcript", text="x" * 1000)
    message = caplog.records[0].getMessage()
    assert message.endswith("…") and len(message) == len("call X caller.transcript ") + 300 + 1
    assert journal.entries[0]["text"] == "x" * 1000  # the journal keeps it whole


# -- safe_child: a call id from a peer never becomes a path outside the directory ----------------

@pytest.mark.parametrize("stem", [CALL, "a", "call-1_2", "Z" * 128])
def test_plain_names_are_files_in_the_directory(tmp_path, stem):
    assert safe_child(tmp_path, stem, ".json") == tmp_path / f"{stem}.json"


@pytest.mark.parametrize("stem", [
    "", "..", ".", "../etc/passwd", "a/b", "a\\b", "/abs", "C:evil", "a.b", ".hidden", "-flag", "_x",
    "a\x00b", "name\n", "Z" * 129, "é", None, 42,
])
def test_anything_but_a_plain_name_is_refused(tmp_path, stem):
    with pytest.raises(UnsafeFileName):
        safe_child(tmp_path, stem, ".json")


def test_a_refused_call_id_writes_nothing(tmp_path):
    journal = CallJournal("call X", tmp_path)
    with pytest.raises(UnsafeFileName):
        journal.open("../outside")
    journal.record("call.started")
    journal.close()
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "outside.jsonl").exists()
    assert journal.path is None


def test_a_name_inside_a_symlinked_subdirectory_is_refused(tmp_path):
    # A plain name that resolves elsewhere (the directory's entry is a symlink) is still refused.
    outside = tmp_path / "outside"
    outside.mkdir()
    directory = tmp_path / "calls"
    directory.mkdir()
    (directory / "CAlink.json").symlink_to(outside / "CAlink.json")
    with pytest.raises(UnsafeFileName):
        safe_child(directory, "CAlink", ".json")
