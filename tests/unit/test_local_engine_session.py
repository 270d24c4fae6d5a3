"""The local engine's sans-I/O session: plain dicts in, plain dicts out, time passed in by hand.

Every event the session emits is checked against the openai SDK's models for its dialect (strict).
"""

import base64
import json
import math

import numpy as np
import pytest

from telephony_bridge.audio import g711
from telephony_bridge.local_engine.script import Script, ToolCall, Turn
from telephony_bridge.local_engine.session import EngineSession
from tests.conformance.oracle import validate_server_event

AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
TRANSCRIPT_DELTA = {"ga": "response.output_audio_transcript.delta", "beta": "response.audio_transcript.delta"}
TRANSCRIPT_DONE = {"ga": "response.output_audio_transcript.done", "beta": "response.audio_transcript.done"}
TEXT_DELTA = {"ga": "response.output_text.delta", "beta": "response.text.delta"}
ITEM_ADDED = {"ga": "conversation.item.added", "beta": "conversation.item.created"}

MS_PER_WORD = 200


def fake_speak(text: str, rate: int, voice: str, speed: float) -> bytes:
    """A loud tone, MS_PER_WORD per word: deterministic and instant."""
    samples = rate * MS_PER_WORD // 1000 * len(text.split())
    t = np.arange(samples)
    return (np.sin(2 * np.pi * 300 * t / rate) * 8000).astype("<i2").tobytes()


def tone_pcm(ms: int, rate: int = 24000, amplitude: float = 8000) -> bytes:
    t = np.arange(rate * ms // 1000)
    return (np.sin(2 * np.pi * 440 * t / rate) * amplitude).astype("<i2").tobytes()


def silence_pcm(ms: int, rate: int = 24000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


class Harness:
    def __init__(self, dialect: str, script: Script | None = None, **options) -> None:
        options.setdefault("speak", fake_speak)
        options.setdefault("seed", 7)
        self.dialect = dialect
        self.session = EngineSession(dialect, script or Script.from_turns(["Hello there, how can I help?"]), **options)
        self.now = 0.0
        self.log: list[dict] = []
        self.created = self.take(self.session.start(self.now))[0]

    def take(self, events: list[dict]) -> list[dict]:
        for event in events:
            validate_server_event(event, self.dialect)
        self.log += events
        return events

    def send(self, event: dict) -> list[dict]:
        return self.take(self.session.receive(event, self.now))

    def send_text(self, text) -> list[dict]:
        return self.take(self.session.receive_text(text, self.now))

    def tick(self, now: float) -> list[dict]:
        self.now = now
        return self.take(self.session.tick(now))

    def run_until_idle(self, limit_ms: float = 120_000) -> list[dict]:
        events = []
        while (deadline := self.session.next_deadline_ms()) is not None:
            assert deadline <= limit_ms
            events += self.tick(max(self.now, deadline))
        return events

    def append(self, pcm: bytes, frame_bytes: int = 960) -> list[dict]:
        events = []
        for offset in range(0, len(pcm), frame_bytes):
            chunk = pcm[offset:offset + frame_bytes]
            events += self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()})
        return events

    def update(self, ga: dict | None = None, beta: dict | None = None) -> list[dict]:
        session = {"type": "realtime", **(ga or {})} if self.dialect == "ga" else (beta or {})
        return self.send({"type": "session.update", "session": session})

    def set_turn_detection(self, value) -> list[dict]:
        return self.update(ga={"audio": {"input": {"turn_detection": value}}}, beta={"turn_detection": value})

    def enable_transcription(self) -> list[dict]:
        return self.update(ga={"audio": {"input": {"transcription": {"model": "whisper-1"}}}},
                           beta={"input_audio_transcription": {"model": "whisper-1"}})


def types(events: list[dict]) -> list[str]:
    return [event["type"] for event in events]


def errors(events: list[dict]) -> list[dict]:
    return [event["error"] for event in events if event["type"] == "error"]


def joined_audio(events: list[dict], dialect: str) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == AUDIO_DELTA[dialect])


@pytest.fixture(params=["ga", "beta"])
def dialect(request):
    return request.param


# ---------------------------------------------------------------------- session


def test_session_created_is_realistic(dialect):
    h = Harness(dialect, model="gpt-realtime")
    session = h.created["session"]
    if dialect == "ga":
        assert session["type"] == "realtime" and session["model"] == "gpt-realtime"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert session["output_modalities"] == ["audio"]
    else:
        assert session["id"].startswith("sess_")
        assert session["input_audio_format"] == "pcm16" and session["turn_detection"]["type"] == "server_vad"
        assert session["modalities"] == ["text", "audio"]


def test_session_update_merges_and_echoes(dialect):
    h = Harness(dialect)
    if dialect == "ga":
        (updated,) = h.update(ga={"instructions": "Be brief.",
                                  "audio": {"input": {"format": {"type": "audio/pcmu"}}}})
        session = updated["session"]
        assert session["instructions"] == "Be brief."
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}  # kept
        assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500  # kept
    else:
        (updated,) = h.update(beta={"instructions": "Be brief.", "input_audio_format": "g711_ulaw",
                                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 700}})
        session = updated["session"]
        assert session["input_audio_format"] == "g711_ulaw" and session["output_audio_format"] == "pcm16"
        assert session["turn_detection"] == {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                             "silence_duration_ms": 700, "create_response": True,
                                             "interrupt_response": True}
    assert h.session.settings.input_format == "g711_ulaw"


@pytest.mark.parametrize("dialect_, session, code, param", [
    ("ga", {"type": "realtime", "bogus": 1}, "unknown_parameter", "session.bogus"),
    ("ga", {"instructions": "no type"}, "missing_required_parameter", "session.type"),
    ("ga", {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
     "invalid_value", "session.audio.input.format.rate"),
    ("ga", {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
     "invalid_value", "session.audio.input.turn_detection.threshold"),
    ("beta", {"input_audio_format": "mp3"}, "invalid_value", "session.input_audio_format"),
    ("beta", {"instructions": 5}, "invalid_type", "session.instructions"),
    ("beta", {"input_audio_transcription": {"enabled": True}}, "unknown_parameter",
     "session.input_audio_transcription.enabled"),
    ("beta", {"audio": {}}, "unknown_parameter", "session.audio"),
])
def test_bad_session_update_is_an_error_and_changes_nothing(dialect_, session, code, param):
    h = Harness(dialect_)
    before = json.dumps(h.session.session, sort_keys=True)
    (error,) = errors(h.send({"type": "session.update", "session": session, "event_id": "evt_1"}))
    assert (error["type"], error["code"], error["param"], error["event_id"]) == (
        "invalid_request_error", code, param, "evt_1")
    assert json.dumps(h.session.session, sort_keys=True) == before


def test_malformed_and_unknown_events_get_error_events_and_the_session_goes_on(dialect):
    h = Harness(dialect)
    assert errors(h.send_text("{not json"))[0]["code"] == "invalid_json"
    assert errors(h.send_text("[1, 2]"))[0]["code"] == "invalid_type"
    unknown = errors(h.send({"type": "response.explode", "event_id": "e9"}))[0]
    assert unknown["param"] == "type" and unknown["event_id"] == "e9"
    assert "response.create" in unknown["message"]
    assert errors(h.send({"type": "input_audio_buffer.append", "audio": "***"}))[0]["param"] == "audio"
    too_big = EngineSession(dialect, max_message_bytes=1000).receive_text("x" * 1001, 0)
    assert too_big[0]["error"]["code"] == "message_too_large"
    assert types(h.send({"type": "response.create"}))[0] == "response.created"  # still alive


# ---------------------------------------------------------------------- responses


def test_a_response_streams_paced_audio_and_word_transcripts(dialect):
    text = "Hello there, how can I help?"
    h = Harness(dialect, Script.from_turns([text]), realtime_factor=4.0, chunk_ms=100)
    first = h.send({"type": "response.create"})
    assert types(first) == ["response.created", "response.output_item.added", ITEM_ADDED[dialect],
                            "response.content_part.added", AUDIO_DELTA[dialect], TRANSCRIPT_DELTA[dialect]]
    # 6 words * 200 ms = 1200 ms of audio in 12 chunks of 100 ms, one every 25 ms at 4x.
    assert h.session.next_deadline_ms() == 25
    assert types(h.tick(24.9)) == []
    assert AUDIO_DELTA[dialect] in types(h.tick(25))
    rest = h.run_until_idle()
    assert h.now == pytest.approx(1200 / 4)  # the response lasts its audio / realtime factor
    audio = joined_audio(h.log, dialect)
    assert audio == fake_speak(text, 24000, "", 1.0)
    deltas = [e for e in h.log if e["type"] == AUDIO_DELTA[dialect]]
    assert len(deltas) == 12 and all(len(base64.b64decode(d["delta"])) == 4800 for d in deltas)
    assert "".join(e["delta"] for e in h.log if e["type"] == TRANSCRIPT_DELTA[dialect]) == text
    tail = types(rest)[-7 if dialect == "ga" else -6:]
    expected_tail = [AUDIO_DELTA[dialect].replace("delta", "done"), TRANSCRIPT_DONE[dialect],
                     "response.content_part.done", "response.output_item.done"]
    expected_tail += ["conversation.item.done"] if dialect == "ga" else []
    assert tail == [*expected_tail, "response.done", "rate_limits.updated"]
    done = [e for e in h.log if e["type"] == "response.done"][-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["transcript"] == text
    assert done["usage"]["output_token_details"]["audio_tokens"] > 0
    assert not h.session.response_active


def test_infinite_realtime_factor_sends_everything_at_once(dialect):
    h = Harness(dialect, realtime_factor=math.inf)
    events = h.send({"type": "response.create"})
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
    assert h.session.next_deadline_ms() is None


def test_speech_is_requested_when_no_synthesiser_is_given(dialect):
    h = Harness(dialect, speak=None, realtime_factor=math.inf)
    h.send({"type": "response.create"})
    (request,) = h.session.take_speech_requests()
    assert (request.text, request.sample_rate, request.voice) == ("Hello there, how can I help?", 24000, "en-us")
    assert h.session.take_speech_requests() == []
    assert h.session.next_deadline_ms() is None  # waiting for speech, not for time
    assert h.take(h.session.speech_ready("speech_stale", b"\0\0", 0)) == []
    events = h.take(h.session.speech_ready(request.id, tone_pcm(300), 0))
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]


def test_failed_speech_fails_the_response(dialect):
    h = Harness(dialect, speak=None)
    h.send({"type": "response.create"})
    (request,) = h.session.take_speech_requests()
    done = h.take(h.session.speech_failed(request.id, "no voice", 0))
    response = next(e for e in done if e["type"] == "response.done")["response"]
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["code"] == "speech_synthesis_failed"
    assert response["output"][0]["status"] == "incomplete"


def test_a_synthesiser_that_raises_fails_the_response_not_the_session(dialect):
    def broken(text, rate, voice, speed):
        raise RuntimeError("unknown espeak voice 'xx'")

    h = Harness(dialect, speak=broken)
    events = h.send({"type": "response.create"})
    assert events[-2]["response"]["status"] == "failed"
    assert "unknown espeak voice" in events[-2]["response"]["status_details"]["error"]["message"]
    assert types(h.send({"type": "response.create"}))[0] == "response.created"


def test_only_one_response_at_a_time_and_cancel(dialect):
    h = Harness(dialect)
    response_id = h.send({"type": "response.create"})[0]["response"]["id"]
    (error,) = errors(h.send({"type": "response.create", "event_id": "evt_2"}))
    assert error["code"] == "conversation_already_has_active_response" and response_id in error["message"]
    assert error["event_id"] == "evt_2"
    cancelled = h.send({"type": "response.cancel"})
    done = next(e for e in cancelled if e["type"] == "response.done")["response"]
    assert (done["status"], done["status_details"]) == ("cancelled", {"type": "cancelled", "reason": "client_cancelled"})
    assert done["output"][0]["status"] == "incomplete"
    assert TRANSCRIPT_DONE[dialect] in types(cancelled)
    (error,) = errors(h.send({"type": "response.cancel"}))
    assert error["code"] == "response_cancel_not_active"
    assert h.session.next_deadline_ms() is None


def test_text_only_and_out_of_band_responses(dialect):
    h = Harness(dialect, Script.from_turns(["One two three.", "Four."]))
    modalities = {"output_modalities": ["text"]} if dialect == "ga" else {"modalities": ["text"]}
    events = h.send({"type": "response.create", "response": {**modalities, "metadata": {"topic": "x"}}})
    assert "".join(e["delta"] for e in events if e["type"] == TEXT_DELTA[dialect]) == "One two three."
    assert AUDIO_DELTA[dialect] not in types(events)
    done = events[-2]["response"]
    assert done["metadata"] == {"topic": "x"}
    assert done["output"][0]["content"][0]["text"] == "One two three."
    mark = len(h.log)
    h.send({"type": "response.create", "response": {"conversation": "none"}})
    h.run_until_idle()
    out_of_band = h.log[mark:]
    assert "response.done" in types(out_of_band)
    assert not any(t.startswith("conversation.item") for t in types(out_of_band))
    assert [e for e in h.log if e["type"] == "response.done"][-1]["response"]["conversation_id"] is None
    assert len(h.session.items) == 1


def test_say_instruction_speaks_verbatim_without_using_a_turn(dialect):
    h = Harness(dialect, Script.from_turns(["First turn."]), realtime_factor=math.inf)
    h.send({"type": "response.create", "response": {"instructions": 'Say exactly: "Please hold."'}})
    h.send({"type": "response.create", "response": {"instructions": "Greet the caller warmly."}})
    transcripts = [e["transcript"] for e in h.log if e["type"] == TRANSCRIPT_DONE[dialect]]
    assert transcripts == ["Please hold.", "First turn."]


def test_turns_run_out_into_the_fallback(dialect):
    h = Harness(dialect, Script.from_turns(["Only line."], fallback="No more."), realtime_factor=math.inf)
    for _ in range(3):
        h.send({"type": "response.create"})
    transcripts = [e["transcript"] for e in h.log if e["type"] == TRANSCRIPT_DONE[dialect]]
    assert transcripts == ["Only line.", "No more.", "No more."]


def test_tool_call_round_trip(dialect):
    script = Script.from_turns([
        Turn(say="Let me check.", call=ToolCall("get_current_time", {"timezone": "UTC"}),
             then="It is {output.time} now."),
        "Anything else?",
    ])
    h = Harness(dialect, script, realtime_factor=math.inf)
    events = h.send({"type": "response.create"})
    assert types(events).count("response.output_item.added") == 2
    done_args = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    call_id = done_args["call_id"]
    assert json.loads(done_args["arguments"]) == {"timezone": "UTC"}
    assert done_args.get("name") == ("get_current_time" if dialect == "ga" else None)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(deltas) == done_args["arguments"] and len(deltas) > 1
    response = events[-2]["response"]
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["call_id"] == call_id and response["output"][1]["name"] == "get_current_time"

    created = h.send({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": call_id, "output": json.dumps({"time": "10:42"})}})
    assert types(created)[0] == ITEM_ADDED[dialect]
    h.send({"type": "response.create"})
    h.send({"type": "response.create"})
    transcripts = [e["transcript"] for e in h.log if e["type"] == TRANSCRIPT_DONE[dialect]]
    assert transcripts == ["Let me check.", "It is 10:42 now.", "Anything else?"]
    (error,) = errors(h.send({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": "call_nope", "output": "x"}}))
    assert error["param"] == "item.call_id"


# ---------------------------------------------------------------------- input audio and turn detection


def test_server_vad_commits_transcribes_and_responds(dialect):
    script = Script.from_turns(["Hi.", {"hears": "What time is it?", "say": "Noon."}])
    h = Harness(dialect, script, realtime_factor=math.inf)
    h.enable_transcription()
    h.send({"type": "response.create"})
    h.append(silence_pcm(1000))
    events = h.append(tone_pcm(800) + silence_pcm(700))
    names = types(events)
    expected = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed"]
    expected += ["conversation.item.added", "conversation.item.done"] if dialect == "ga" else ["conversation.item.created"]
    expected += ["conversation.item.input_audio_transcription.completed", "response.created"]
    assert names[:len(expected)] == expected
    started, stopped, committed = events[:3]
    assert abs(started["audio_start_ms"] - (1000 - 300)) <= 20
    assert abs(stopped["audio_end_ms"] - 1800) <= 20
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert committed["previous_item_id"] == h.session.items[0].id
    item = events[3]["item"]
    assert (item["role"], item["content"][0]["type"]) == ("user", "input_audio")
    transcription = events[len(expected) - 2]
    assert transcription["transcript"] == "What time is it?"
    assert [e["transcript"] for e in h.log if e["type"] == TRANSCRIPT_DONE[dialect]] == ["Hi.", "Noon."]
    # the next turn has no `hears`: a placeholder with the speech duration
    h.append(tone_pcm(1500) + silence_pcm(700))
    last = [e for e in h.log if e["type"] == "conversation.item.input_audio_transcription.completed"][-1]
    assert last["transcript"] == "[speech 1.5 s]"


@pytest.mark.parametrize("frame_bytes", [960, 10**9], ids=["20ms-frames", "one-append"])
def test_positions_count_stream_audio_across_turns(dialect, frame_bytes):
    h = Harness(dialect, realtime_factor=math.inf)
    h.set_turn_detection({"type": "server_vad", "create_response": False, "prefix_padding_ms": 100,
                          "silence_duration_ms": 300})
    h.append(silence_pcm(500) + tone_pcm(400) + silence_pcm(400) + silence_pcm(300) + tone_pcm(200)
             + silence_pcm(400), frame_bytes=frame_bytes)
    assert types(h.log).count("input_audio_buffer.committed") == 2
    marks = [(e["type"].rsplit("_", 1)[1], e.get("audio_start_ms", e.get("audio_end_ms")))
             for e in h.log if e["type"].startswith("input_audio_buffer.speech")]
    assert [m[0] for m in marks] == ["started", "stopped", "started", "stopped"]
    truth = [500 - 100, 900, 1600 - 100, 1800]
    assert all(abs(mark[1] - expected) <= 20 for mark, expected in zip(marks, truth, strict=False))
    assert "response.created" not in types(h.log)


def test_barge_in_cancels_the_response_in_flight(dialect):
    h = Harness(dialect, Script.from_turns(["A long greeting with quite a few words in it.", "Next."]))
    h.send({"type": "response.create"})
    h.tick(100)
    assert h.session.response_active
    events = h.append(tone_pcm(300))
    names = types(events)
    assert names[0] == "input_audio_buffer.speech_started"
    done = events[names.index("response.done")]["response"]
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    heard = done["output"][0]["content"][0]["transcript"]
    assert heard and "A long greeting with quite a few words in it.".startswith(heard)
    assert not h.session.response_active
    h.append(silence_pcm(600))
    h.run_until_idle()
    assert [e["transcript"] for e in h.log if e["type"] == TRANSCRIPT_DONE[dialect]][-1] == "Next."


def test_interrupt_response_false_lets_the_response_finish(dialect):
    h = Harness(dialect, Script.from_turns(["A long greeting with quite a few words in it."]))
    h.set_turn_detection({"type": "server_vad", "interrupt_response": False, "create_response": True})
    h.send({"type": "response.create"})
    events = h.append(tone_pcm(300) + silence_pcm(600))
    assert "input_audio_buffer.speech_stopped" in types(events)
    assert "response.done" not in types(events) and types(events).count("response.created") == 0
    h.run_until_idle()
    assert [e["response"]["status"] for e in h.log if e["type"] == "response.done"] == ["completed"]


def test_manual_commit_and_clear_with_turn_detection_off(dialect):
    h = Harness(dialect)
    h.set_turn_detection(None)
    h.append(tone_pcm(50))
    (error,) = errors(h.send({"type": "input_audio_buffer.commit"}))
    assert error["code"] == "input_audio_buffer_commit_empty" and "50.00ms" in error["message"]
    assert types(h.send({"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    events = h.append(tone_pcm(400) + silence_pcm(900))
    assert events == []  # no VAD
    committed = h.send({"type": "input_audio_buffer.commit"})
    assert types(committed)[0] == "input_audio_buffer.committed"
    assert "response.created" not in types(committed)
    assert len(h.session.items[0].content[0].audio) == 1300 * 48
    assert errors(h.send({"type": "input_audio_buffer.commit"}))  # empty again


def test_g711_ulaw_in_and_out(dialect):
    h = Harness(dialect, realtime_factor=math.inf)
    if dialect == "ga":
        h.update(ga={"audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}})
    else:
        h.update(beta={"input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw"})
    caller = g711.ulaw_encode(silence_pcm(600, 8000) + tone_pcm(500, 8000) + silence_pcm(700, 8000))
    events = h.append(caller, frame_bytes=160)  # 20 ms Twilio frames
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert abs(started["audio_start_ms"] - 300) <= 20 and abs(stopped["audio_end_ms"] - 1100) <= 20
    audio = joined_audio(h.log, dialect)
    assert audio == g711.ulaw_encode(fake_speak("Hello there, how can I help?", 8000, "", 1.0))
    response = next(e for e in h.log if e["type"] == "response.created")["response"]
    if dialect == "ga":
        assert response["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    else:
        assert response["output_audio_format"] == "g711_ulaw"


# ---------------------------------------------------------------------- conversation items


def test_truncate_retrieve_delete(dialect):
    h = Harness(dialect, Script.from_turns(["Hello there, how can I help?"]), realtime_factor=math.inf)
    h.send({"type": "response.create"})
    item_id = h.session.items[0].id  # 1200 ms of audio were sent
    (error,) = errors(h.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                              "audio_end_ms": 1500}))
    assert error["message"] == "Audio content of 1200ms is already shorter than 1500ms"
    assert errors(h.send({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0,
                          "audio_end_ms": 10}))[0]["param"] == "item_id"
    assert errors(h.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 3,
                          "audio_end_ms": 10}))[0]["code"] == "unsupported_content_type"
    (truncated,) = h.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                           "audio_end_ms": 700})
    assert truncated == {**truncated, "type": "conversation.item.truncated", "item_id": item_id,
                         "content_index": 0, "audio_end_ms": 700}
    (retrieved,) = h.send({"type": "conversation.item.retrieve", "item_id": item_id})
    content = retrieved["item"]["content"][0]
    assert len(base64.b64decode(content["audio"])) == 700 * 48
    assert content["transcript"] == ""  # as the real API: no text the caller did not hear
    assert errors(h.send({"type": "conversation.item.retrieve", "item_id": "item_nope"}))
    assert h.send({"type": "conversation.item.delete", "item_id": item_id})[0]["type"] == "conversation.item.deleted"
    (error,) = errors(h.send({"type": "conversation.item.delete", "item_id": item_id}))
    assert "does not exist" in error["message"]


def test_user_items_cannot_be_truncated_and_items_can_be_placed(dialect):
    h = Harness(dialect)
    first = h.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}})
    first_id = first[0]["item"]["id"]
    assert first[0]["previous_item_id"] is None
    assert errors(h.send({"type": "conversation.item.truncate", "item_id": first_id, "content_index": 0,
                          "audio_end_ms": 0}))[0]["code"] == "unsupported_content_type"
    root = h.send({"type": "conversation.item.create", "previous_item_id": "root", "item": {
        "id": "item_sys", "type": "message", "role": "system", "content": [{"type": "input_text", "text": "Rules"}]}})
    assert root[0]["item"]["id"] == "item_sys" and root[0]["previous_item_id"] is None
    assert [item.id for item in h.session.items] == ["item_sys", first_id]
    assert errors(h.send({"type": "conversation.item.create", "previous_item_id": "item_x", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "?"}]}}))
    assert errors(h.send({"type": "conversation.item.create", "item": {
        "id": "item_sys", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "dup"}]}}))
    assistant_type = "output_text" if dialect == "ga" else "text"
    made = h.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "assistant", "content": [{"type": assistant_type, "text": "Earlier reply"}]}})
    assert made[0]["item"]["content"][0] == {"type": assistant_type, "text": "Earlier reply"}
    wrong = "text" if dialect == "ga" else "output_text"
    assert errors(h.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "assistant", "content": [{"type": wrong, "text": "x"}]}}))


def test_ids_are_deterministic_with_a_seed(dialect):
    first = Harness(dialect, seed=3, realtime_factor=math.inf)
    second = Harness(dialect, seed=3, realtime_factor=math.inf)
    first.send({"type": "response.create"})
    second.send({"type": "response.create"})
    assert first.log == second.log
