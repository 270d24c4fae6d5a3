"""OpenAI.RealtimeWebSocket (the Agents SDK's OpenAIRealtimeWebSocket shape) over a stand-in engine:
its events, interrupt (the bridge's barge-in on a call), mute, and every client event it sends valid
against the openai SDK's types."""

from __future__ import annotations

import base64

import pytest

from telephony_bridge.voxengine.realtime_websocket_shape import OpenAIRealtimeWebSocket, session_config_for_wire
from tests.conformance.oracle import validate_client_event
from tests.unit.shape_fakes import FakeChannel, factory

CONFIG = {
    "instructions": "Be brief.",
    "audio": {"input": {"turnDetection": {"type": "server_vad", "silenceDurationMs": 500, "interruptResponse": True},
                        "transcription": {"model": "whisper-1"}},
              "output": {"voice": "alloy"}},
    "tools": [{"type": "function", "name": "check", "description": "d",
               "parameters": {"type": "object", "properties": {"someDate": {"type": "string"}}}}],
}


async def connected(**options):
    engines = []
    transport = OpenAIRealtimeWebSocket({}, engine_factory=factory(engines))
    changes = []
    transport.on("connection_change", changes.append)
    assert transport.status == "disconnected" and transport.connectionState["status"] == "disconnected"
    await transport.connect({"apiKey": "k", "model": "gpt-realtime", "initialSessionConfig": CONFIG, **options})
    assert changes == ["connecting", "connected"] and transport.status == "connected"
    return transport, engines[0]


def record(transport, *names):
    seen = []
    for name in names:
        transport.on(name, lambda *args, name=name: seen.append((name, *args)))
    return seen


def test_the_sdks_camel_case_session_config_becomes_a_wire_session():
    session = session_config_for_wire({**CONFIG, "model": "x", "providerData": {"tool_choice": "auto"}})
    assert session["audio"]["input"]["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 500,
                                                            "interrupt_response": True}
    assert session["tools"] == CONFIG["tools"]  # JSON schemas are not renamed
    assert session["tool_choice"] == "auto" and "model" not in session


async def test_connect_sends_the_initial_session_and_every_method_sends_conformant_events():
    transport, engine = await connected()
    assert engine.parameters["apiKey"] == "k" and transport.currentModel == "gpt-realtime"
    transport.sendAudio(b"\x00\x01" * 480, {"commit": True})
    transport.send_message("Hello")
    transport.sendMessage({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                          {}, triggerResponse=False)
    transport.addImage("data:image/png;base64,AAAA", {"triggerResponse": False})
    transport.sendFunctionCallOutput({"callId": "call_1", "name": "check"}, '{"ok": true}', True)
    transport.updateSessionConfig({"instructions": "Be briefer."})
    transport.sendEvent({"type": "input_audio_buffer.clear"})
    old = [{"itemId": "item_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
           {"itemId": "item_2", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "b"}]}]
    new = [old[0], {"itemId": "item_3", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "c"}]}]
    transport.resetHistory(old, new)
    assert engine.types() == [
        "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "conversation.item.create",
        "response.create", "conversation.item.create", "conversation.item.create", "conversation.item.create",
        "response.create", "session.update", "input_audio_buffer.clear", "conversation.item.delete",
        "conversation.item.create"]
    assert engine.sent[-2] == {"type": "conversation.item.delete", "item_id": "item_2"}
    assert engine.sent[-1]["previous_item_id"] == "item_1" and engine.sent[-1]["item"]["id"] == "item_3"
    for event in engine.sent:
        validate_client_event(event, "ga")


async def test_server_events_become_the_transports_events():
    transport, engine = await connected()
    seen = record(transport, "*", "audio", "audio_start", "audio_done", "turn_started", "turn_done", "usage_update",
                  "function_call", "item_update", "item_deleted", "transcript_delta", "audio_transcript_delta", "error",
                  "response.created")
    pcm = b"\x01\x00" * 480  # 20 ms
    engine.server({"type": "response.created", "response": {"id": "resp_1"}})
    engine.server({"type": "response.output_item.added", "response_id": "resp_1", "item": {
        "id": "item_a", "type": "message", "role": "assistant", "status": "in_progress", "content": []}})
    engine.server({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_a", "content_index": 0,
                   "delta": base64.b64encode(pcm).decode()})
    engine.server({"type": "response.output_audio_transcript.delta", "response_id": "resp_1", "item_id": "item_a",
                   "content_index": 0, "delta": "Hi"})
    engine.server({"type": "response.output_audio.done", "response_id": "resp_1", "item_id": "item_a", "content_index": 0})
    engine.server({"type": "response.output_item.done", "response_id": "resp_1", "item": {
        "id": "item_f", "type": "function_call", "status": "completed", "name": "check", "call_id": "call_1",
        "arguments": "{}"}})
    engine.server({"type": "response.done", "response": {"id": "resp_1", "output": [], "usage": {
        "input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}})
    engine.server({"type": "conversation.item.deleted", "item_id": "item_a"})
    engine.server({"type": "error", "error": {"message": "x"}})
    names = [name for name, *_ in seen if name != "*"]
    assert names == ["response.created", "turn_started", "item_update", "audio_start", "audio",
                     "audio_transcript_delta", "transcript_delta", "audio_done", "item_update", "function_call",
                     "usage_update", "turn_done", "item_deleted", "error"]
    assert len([name for name, *_ in seen if name == "*"]) == 9
    events = {name: args[0] for name, *args in seen if args}
    assert events["audio"] == {"type": "audio", "data": pcm, "responseId": "resp_1"}
    assert events["transcript_delta"] == {"type": "transcript_delta", "delta": "Hi", "itemId": "item_a", "responseId": "resp_1"}
    assert events["function_call"] == {"type": "function_call", "id": "item_f", "callId": "call_1", "name": "check",
                                       "arguments": "{}"}
    assert events["usage_update"]["totalTokens"] == 7 and events["turn_done"]["response"]["id"] == "resp_1"
    assert events["item_deleted"] == {"itemId": "item_a"} and events["error"]["error"]["type"] == "error"
    assert events["item_update"]["callId"] == "call_1"


async def test_speech_started_interrupts_through_the_bridges_barge_in_on_a_call():
    transport, engine = await connected()
    transport.set_caller_format("ulaw")  # Call.sendMediaTo(transport)
    channel = engine._channels[1] = FakeChannel()
    seen = record(transport, "audio_interrupted")
    engine.server({"type": "input_audio_buffer.speech_started", "item_id": "item_u", "audio_start_ms": 900})
    assert channel.interrupts == [True] and seen == [("audio_interrupted",)]
    engine.server({"type": "input_audio_buffer.speech_started", "item_id": "item_v", "audio_start_ms": 1900})
    assert seen == [("audio_interrupted",)]  # nothing was playing the second time


async def test_off_a_call_interrupt_is_the_sdks_arithmetic():
    transport, engine = await connected()
    engine.server({"type": "response.created", "response": {"id": "resp_1"}})
    pcm = b"\x00\x00" * 24_000  # one second
    engine.server({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_a", "content_index": 0,
                   "delta": base64.b64encode(pcm).decode()})
    transport.interrupt()
    cancel, truncate = engine.sent[-2:]
    assert cancel == {"type": "response.cancel"}
    assert truncate["type"] == "conversation.item.truncate" and truncate["item_id"] == "item_a"
    assert 0 <= truncate["audio_end_ms"] < 1000
    before = len(engine.sent)
    transport.interrupt()  # nothing current any more
    assert len(engine.sent) == before


async def test_mute_on_a_call_stops_caller_audio_and_off_a_call_raises_as_the_sdk():
    transport, engine = await connected()
    assert transport.muted is None
    with pytest.raises(RuntimeError):
        transport.mute(True)
    transport.set_caller_format("ulaw")
    assert transport.muted is False and transport.accept_caller_audio == engine.accept_caller_audio
    transport.mute(True)
    assert transport.muted is True and transport.accept_caller_audio.__name__ == "_dropped"
    transport.close()
    assert engine.closed and transport.status == "disconnected"
