"""Every GPT-Live client event the bridge builds and every server event the local engine sends
validate against `openai.types.live` with unknown fields forbidden (SDK pinned in the test extra)."""

from __future__ import annotations

import base64
import json

import pytest

from telephony_bridge.local_engine.live_session import LiveEngineSession
from telephony_bridge.local_engine.script import Script, ToolCall, Turn
from telephony_bridge.realtime import live_wire
from tests.conformance.live_oracle import ConformanceError, known_types, validate_live


def _client_events() -> list[dict]:
    config = live_wire.live_session_config({
        "instructions": "Be brief.", "audio": {"output": {"voice": "marin"}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-5.6-terra", "tools": [
            {"type": "function", "name": "get_time", "description": "the time", "parameters": {"type": "object", "properties": {}}}]}},
    }, "g711_ulaw")
    return [
        live_wire.session_start(config, "evt_1"),
        live_wire.session_update({"delegation": {"type": "responses", "responses": {"model": "gpt-5.6-terra"}}}),
        json.loads(live_wire.encode_input_audio_append(base64.b64encode(b"\xff" * 160))),
        live_wire.input_audio_append(base64.b64encode(b"\xff" * 160).decode()),
        live_wire.input_audio_mute(), live_wire.input_audio_unmute(),
        live_wire.output_audio_fixture_play(base64.b64encode(bytes(480)).decode()),
        live_wire.instructions_append("Greet the caller."),
        live_wire.thinking_append("Order 42 shipped.", "deleg_1"),
        live_wire.commentary_append("It is noon.", "deleg_1"),
        live_wire.decision_create("evt_d"), live_wire.decision_item_create({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}),
        live_wire.decision_item_delete("item_1"),
        live_wire.response_item_create(live_wire.function_call_output("call_1", '{"time": "12:00"}')),
        live_wire.response_create(), live_wire.session_close(),
    ]


def test_every_client_event_the_bridge_builds_is_valid_and_all_fifteen_are_covered():
    events = _client_events()
    for event in events:
        validate_live(event, "client")
    assert {e["type"] for e in events} == known_types("client") == live_wire.CLIENT_EVENT_TYPES


def test_the_server_event_enum_has_one_member_per_live_server_event():
    assert set(live_wire.SERVER_EVENT_TYPES) == known_types("server")
    members = set(live_wire.LiveAPIEvents) - live_wire.BRIDGE_EVENTS
    assert members == set(live_wire.SERVER_EVENT_TYPES.values())


def test_a_realtime_shaped_session_loses_every_field_live_rejects():
    realtime = {"type": "realtime", "model": "gpt-live-1", "instructions": "x", "output_modalities": ["audio"],
                "tools": [], "tool_choice": "auto", "temperature": 0.8, "turn_detection": {"type": "server_vad"},
                "audio": {"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}},
                          "output": {"voice": "marin", "speed": 1.1, "format": {"type": "audio/pcm", "rate": 24000}}}}
    session = live_wire.live_session_config(realtime, "g711_ulaw")
    validate_live(live_wire.session_start(session), "client")
    assert session["audio"] == {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}}
    with pytest.raises(ConformanceError):  # the oracle itself catches what a strict server rejects
        validate_live({"type": "session.start", "session": {"model": "gpt-live-1", "turn_detection": {}}}, "client")
    with pytest.raises(ConformanceError):
        validate_live({"type": "session.instructions.append", "content": "x"}, "client")


def test_realtime_events_are_not_live_events():
    for event in ({"type": "input_audio_buffer.append", "audio": ""}, {"type": "conversation.item.truncate",
                  "item_id": "x", "content_index": 0, "audio_end_ms": 0}):
        with pytest.raises(ConformanceError):
            validate_live(event, "client")


def _speak(text: str, rate: int, voice: str, speed: float) -> bytes:
    import numpy as np

    n = int(rate * 0.06 * max(1, len(text.split())))
    return (np.sin(np.arange(n) * 0.3) * 8000).astype("<i2").tobytes()


def _drive(session: LiveEngineSession, event: dict, out: list[dict]) -> list[dict]:
    got = session.receive(event)
    for request in session.take_speech_requests():
        got += session.speech_ready(request.id, _speak(request.text, request.sample_rate, request.voice, 1.0), 0)
    out += got
    return got


def _audio(ms: int, loud: bool = False) -> dict:
    if loud:
        import numpy as np

        from telephony_bridge.audio import g711
        pcm = (np.sin(np.arange(8 * ms) * 0.2) * 12000).astype("<i2").tobytes()
        data = g711.ulaw_encode(pcm)
    else:
        data = b"\xff" * (8 * ms)
    return live_wire.input_audio_append(base64.b64encode(data).decode())


@pytest.mark.parametrize("delegation", ["responses", "client"])
def test_every_event_the_local_engine_sends_is_valid(delegation):
    script = Script.from_turns(["Hello there.", Turn(hears="What time is it?", call=ToolCall("get_time"), then="It is {output.time}.")])
    session = LiveEngineSession(script, seed=1)
    out: list[dict] = []
    config = {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}}
    if delegation == "responses":
        config["delegation"] = {"type": "responses", "responses": {"model": "gpt-5.6-terra"}}
    assert session.start(0) == []
    _drive(session, {"type": "session.input_audio.append", "audio": ""}, out)  # before the start: an error
    _drive(session, {"type": "session.start", "session": {"model": "gpt-live-1", "turn_detection": {}}}, out)
    _drive(session, live_wire.session_start(config, "c1"), out)
    _drive(session, live_wire.instructions_append("Greet the caller."), out)
    for _ in range(20):
        _drive(session, _audio(100), out)
    for _ in range(10):  # the caller asks; the engine delegates once they stop
        _drive(session, _audio(100, loud=True), out)
    for _ in range(10):
        _drive(session, _audio(100), out)
    created = [e for e in out if e["type"] == "session.delegation.created"]
    assert created and created[0]["delegation"]["target"] == delegation
    delegation_id = created[0]["delegation"]["id"]
    if delegation == "responses":
        [call] = [e["event"]["item"] for e in out if e["type"] == "response.event" and e["event"]["type"] == "response.output_item.done"]
        _drive(session, live_wire.response_item_create(live_wire.function_call_output(call["call_id"], '{"time": "12:00"}')), out)
        _drive(session, live_wire.response_create(), out)
        for _ in range(30):
            _drive(session, _audio(100), out)
        _drive(session, live_wire.commentary_append("One more thing.", None), out)
    else:
        _drive(session, live_wire.commentary_append("It is 12:00.", delegation_id), out)
    for _ in range(30):
        _drive(session, _audio(100), out)
    _drive(session, live_wire.thinking_append("noted", None), out)
    _drive(session, live_wire.input_audio_mute(), out)
    _drive(session, live_wire.input_audio_unmute(), out)
    _drive(session, live_wire.output_audio_fixture_play(base64.b64encode(bytes(4800)).decode()), out)
    for _ in range(3):
        _drive(session, _audio(100), out)
    _drive(session, live_wire.decision_item_create({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}), out)
    _drive(session, live_wire.decision_item_delete("item_1"), out)
    _drive(session, live_wire.session_update({"triggers": []}), out)
    _drive(session, {"type": "input_audio_buffer.commit"}, out)
    session._usage_at = 0
    _drive(session, _audio(100), out)
    _drive(session, live_wire.session_close(), out)
    for event in out:
        validate_live(event, "server")
    kinds = {e["type"] for e in out}
    expected = {"session.started", "session.updated", "session.input_audio.muted", "session.input_audio.unmuted",
                "session.output_audio.fixture.playing", "session.output_audio.fixture.played",
                "session.instructions.appended", "session.thinking.appended", "session.commentary.appended",
                "session.output_audio.delta", "session.input_transcript.delta", "session.output_transcript.delta",
                "session.delegation.created", "decision.item.created", "decision.item.deleted",
                "session.usage.updated", "session.closed", "error"}
    if delegation == "responses":
        expected.add("response.event")
    assert expected <= kinds, expected - kinds
    said = "".join(e["delta"] for e in out if e["type"] == "session.output_transcript.delta")
    assert "Hello there." in said and "It is 12:00." in said
    # continuous output in step with the input, 100 ms per delta: μ-law 8 kHz, 800 bytes
    deltas = [e for e in out if e["type"] == "session.output_audio.delta"]
    assert all(len(base64.b64decode(e["delta"])) == 800 for e in deltas)
    assert len(deltas) * 100 == session.position_ms
    errors = [e["error"]["code"] for e in out if e["type"] == "error"]
    assert errors == ["session_not_started", "unknown_parameter", "invalid_value"]
