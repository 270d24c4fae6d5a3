"""OpenAI.RealtimeClient (openai-realtime-api-beta's shape) over a stand-in engine: events, wildcards,
onNext, tools that run themselves, the conversation cache, waitForNext*, cancelResponse; every
client event it sends valid against the openai SDK's types."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from array import array

import pytest

from telephony_bridge.voxengine.realtime_client_shape import RealtimeClient
from telephony_bridge.voxengine.shape_events import RealtimeEventHandler
from tests.conformance.oracle import validate_client_event
from tests.unit.shape_fakes import FakeChannel, factory

WEATHER = {"name": "get_weather", "description": "Weather at a place.",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}


async def connected(**settings):
    engines = []
    client = RealtimeClient(settings, engine_factory=factory(engines))
    await client.connect()
    return client, engines[0]


def assert_conformant(engine):
    for event in engine.sent:
        validate_client_event(event, "ga")


def assistant_audio_turn(engine, item_id="item_a", response_id="resp_1", samples=(1, 2, 3, 4)):
    pcm = array("h", samples).tobytes()
    engine.server({"type": "response.created", "response": {"id": response_id, "output": []}})
    engine.server({"type": "response.output_item.added", "response_id": response_id,
                   "item": {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}})
    engine.server({"type": "response.content_part.added", "item_id": item_id, "content_index": 0,
                   "part": {"type": "audio", "transcript": ""}})
    engine.server({"type": "response.output_audio_transcript.delta", "item_id": item_id, "content_index": 0, "delta": "Hi "})
    engine.server({"type": "response.output_audio.delta", "item_id": item_id, "content_index": 0,
                   "response_id": response_id, "delta": base64.b64encode(pcm).decode()})
    engine.server({"type": "response.output_audio_transcript.delta", "item_id": item_id, "content_index": 0, "delta": "there"})


# --- the event handler ---------------------------------------------------------------------------
async def test_on_runs_before_on_next_and_on_next_fires_once():
    handler = RealtimeEventHandler()
    seen = []
    handler.on("conversation.updated", lambda e: seen.append(("on", e)))
    handler.onNext("conversation.updated", lambda e: seen.append(("next", e)))
    handler.dispatch("conversation.updated", 1)
    handler.dispatch("conversation.updated", 2)
    assert seen == [("on", 1), ("next", 1), ("on", 2)]


async def test_wildcards_off_and_off_next():
    handler = RealtimeEventHandler()
    seen = []

    def everything(e):
        seen.append(("all", e))

    handler.on("server.*", lambda e: seen.append(("server", e)))
    handler.on("*", everything)
    handler.on_next("server.response.*", lambda e: seen.append(("next", e)))  # the snake_case twin
    handler.dispatch("server.response.done", "a")
    handler.dispatch("client.response.create", "b")
    handler.off("*", everything)
    handler.dispatch("server.session.created", "c")
    handler.onNext("x", lambda e: seen.append("never"))
    handler.offNext("x")
    handler.dispatch("x", None)
    assert seen == [("server", "a"), ("all", "a"), ("next", "a"), ("all", "b"), ("server", "c")]


async def test_handlers_without_arguments_coroutines_raising_and_non_callable(caplog):
    handler = RealtimeEventHandler()
    seen = []
    handler.on("conversation.interrupted", lambda: seen.append("no args"))  # JS ignores the extra argument

    async def later(event):
        seen.append(("async", event))

    def broken(event):
        raise RuntimeError("boom")

    handler.on("conversation.interrupted", broken)
    handler.on("conversation.interrupted", later)
    with caplog.at_level(logging.ERROR):
        handler.dispatch("conversation.interrupted", "e")
        await asyncio.sleep(0)
    assert seen == ["no args", ("async", "e")]
    assert "boom" in caplog.text
    with pytest.raises(TypeError):
        handler.on("error", "not a function")


async def test_wait_for_next_returns_the_event_or_none_after_the_timeout():
    handler = RealtimeEventHandler()
    waiting = asyncio.ensure_future(handler.waitForNext("close"))
    await asyncio.sleep(0)
    handler.dispatch("close", {"error": True})
    assert await waiting == {"error": True}
    assert await handler.wait_for_next("close", 10) is None  # milliseconds, as in the library


# --- the client ----------------------------------------------------------------------------------
async def test_connect_sends_the_session_with_the_added_tools_and_everything_is_conformant():
    engines = []
    client = RealtimeClient({"apiKey": "k", "model": "gpt-realtime"}, engine_factory=factory(engines))
    client.updateSession({"instructions": "You are a great, upbeat friend."})
    client.update_session(turn_detection={"type": "server_vad"}, input_audio_transcription={"model": "whisper-1"})
    client.addTool(WEATHER, lambda args: {"ok": True})
    assert not client.isConnected()
    await client.connect()
    engine = engines[0]
    assert client.is_connected() and engine.parameters["apiKey"] == "k" and engine.parameters["codec"] == "pcm16"
    [update] = engine.sent
    session = update["session"]
    assert session["instructions"] == "You are a great, upbeat friend."
    assert session["tools"] == [{"type": "function", **WEATHER}]
    assert session["audio"]["input"]["turn_detection"] == {"type": "server_vad"}
    client.sendUserMessageContent([{"type": "input_text", "text": "How are you?"}])
    client.appendInputAudio(array("h", [0] * 240))
    client.deleteItem("item_x")
    client.removeTool("get_weather")
    assert engine.types()[1:] == ["conversation.item.create", "response.create", "input_audio_buffer.append",
                                  "conversation.item.delete", "session.update"]
    assert engine.sent[-1]["session"]["tools"] == []
    assert_conformant(engine)
    with pytest.raises(RuntimeError):
        await client.connect()  # already connected


async def test_create_response_commits_input_audio_without_turn_detection():
    client, engine = await connected()
    client.appendInputAudio(b"\x01\x00" * 240)
    client.createResponse()
    assert engine.types()[-3:] == ["input_audio_buffer.append", "input_audio_buffer.commit", "response.create"]
    assert client.conversation.queuedInputAudio is not None and len(client.inputAudioBuffer) == 0
    assert_conformant(engine)


async def test_a_registered_tool_runs_itself_its_result_goes_back_and_a_response_is_created():
    client, engine = await connected()
    calls = []

    async def get_weather(args):
        calls.append(args)
        return {"temperature": 18.5}

    client.addTool(WEATHER, get_weather)
    client.addTool({**WEATHER, "name": "broken"}, lambda args: 1 / 0)
    engine.server({"type": "response.created", "response": {"id": "resp_1", "output": []}})
    for item_id, call_id, name in (("item_f", "call_1", "get_weather"), ("item_g", "call_2", "broken"),
                                   ("item_h", "call_3", "declared_in_update_session")):
        engine.server({"type": "response.output_item.added", "response_id": "resp_1",
                       "item": {"id": item_id, "type": "function_call", "status": "in_progress", "name": name,
                                "call_id": call_id, "arguments": ""}})
        engine.server({"type": "response.function_call_arguments.delta", "item_id": item_id, "call_id": call_id,
                       "delta": '{"location": "Paris"}'})
        done = {"id": item_id, "type": "function_call", "status": "completed", "name": name, "call_id": call_id,
                "arguments": '{"location": "Paris"}'}
        engine.server({"type": "response.output_item.done", "response_id": "resp_1", "item": done})
        engine.server({"type": "conversation.item.done", "item": done})  # GA says it twice: runs once
    await asyncio.sleep(0.01)
    assert calls == [{"location": "Paris"}]
    outputs = [e["item"] for e in engine.sent if e["type"] == "conversation.item.create"]
    assert outputs == [
        {"type": "function_call_output", "call_id": "call_1", "output": json.dumps({"temperature": 18.5})},
        {"type": "function_call_output", "call_id": "call_2", "output": json.dumps({"error": "division by zero"})},
    ]  # a tool declared through updateSession is the scenario's to answer
    assert engine.types().count("response.create") == 2
    tool = client.conversation.getItem("item_f")["formatted"]["tool"]
    assert tool == {"type": "function", "name": "get_weather", "call_id": "call_1", "arguments": '{"location": "Paris"}'}
    assert_conformant(engine)


async def test_the_conversation_cache_formats_text_transcript_audio_and_tells_its_events():
    client, engine = await connected()
    events = []
    for name in ("conversation.updated", "conversation.item.appended", "conversation.item.completed",
                 "conversation.interrupted", "realtime.event", "error"):
        client.on(name, lambda e, name=name: events.append((name, e)))
    engine.server({"type": "conversation.item.added", "previous_item_id": None, "item": {
        "id": "item_u", "type": "message", "role": "user", "status": "completed",
        "content": [{"type": "input_text", "text": "How are you?"}]}})
    assistant_audio_turn(engine)
    engine.server({"type": "response.output_item.done", "response_id": "resp_1", "item": {
        "id": "item_a", "type": "message", "role": "assistant", "status": "completed", "content": []}})
    engine.server({"type": "input_audio_buffer.speech_started", "item_id": "item_s", "audio_start_ms": 100})
    engine.server({"type": "error", "error": {"type": "invalid_request_error", "message": "x"}})
    client.createResponse()

    user, assistant = client.conversation.getItems()
    assert user["formatted"]["text"] == "How are you?" and user["status"] == "completed"
    assert assistant["formatted"]["transcript"] == "Hi there"
    assert list(assistant["formatted"]["audio"]) == [1, 2, 3, 4] and assistant["status"] == "completed"
    assert client.getConversationItems() == [user, assistant]
    names = [name for name, _ in events if name != "realtime.event"]
    assert names == ["conversation.updated", "conversation.item.appended", "conversation.item.completed",  # user item
                     "conversation.updated", "conversation.item.appended",  # assistant item appears
                     "conversation.updated", "conversation.updated", "conversation.updated",  # transcript, audio, transcript
                     "conversation.updated", "conversation.item.completed",  # done
                     "conversation.interrupted", "error"]
    deltas = [e["delta"] for name, e in events if name == "conversation.updated" and e["delta"]]
    assert deltas[0] == {"transcript": "Hi "} and list(deltas[1]["audio"]) == [1, 2, 3, 4]
    realtime = [e for name, e in events if name == "realtime.event"]
    assert [e["source"] for e in realtime].count("server") == 10
    assert realtime[-1]["source"] == "client" and realtime[-1]["event"] == {"type": "response.create"}
    assert realtime[-1]["time"].endswith("Z")

    # truncation cuts the audio at the heard sample and clears the transcript; deletion drops the item
    engine.server({"type": "conversation.item.truncated", "item_id": "item_a", "content_index": 0, "audio_end_ms": 0.1})
    assert len(assistant["formatted"]["audio"]) == 2 and assistant["formatted"]["transcript"] == ""
    engine.server({"type": "conversation.item.deleted", "item_id": "item_u"})
    assert client.conversation.getItems() == [assistant]


async def test_server_events_are_dispatched_raw_on_client_realtime():
    client, engine = await connected()
    seen = []
    client.realtime.on("server.*", lambda e: seen.append(e["type"]))
    client.realtime.on("client.*", lambda e: seen.append("→" + e["type"]))
    engine.server({"type": "session.created", "session": {}})
    client.realtime.send("conversation.item.create", {"item": {
        "type": "function_call_output", "call_id": "my-call-id", "output": "{function_succeeded:true}"}})
    client.realtime.send("response.create")
    assert seen == ["session.created", "→conversation.item.create", "→response.create"]
    assert client.sessionCreated and await client.waitForSessionCreated()
    assert_conformant(engine)


async def test_wait_for_next_item_and_next_completed_item():
    client, engine = await connected()
    appended = asyncio.ensure_future(client.waitForNextItem())
    completed = asyncio.ensure_future(client.wait_for_next_completed_item())
    await asyncio.sleep(0)
    assistant_audio_turn(engine)
    assert (await appended)["item"]["id"] == "item_a"
    assert not completed.done()
    engine.server({"type": "response.output_item.done", "response_id": "resp_1",
                   "item": {"id": "item_a", "type": "message", "role": "assistant", "status": "completed"}})
    assert (await completed)["item"]["id"] == "item_a"


async def test_cancel_response_off_a_call_truncates_at_the_sample_count():
    client, engine = await connected()
    assistant_audio_turn(engine)
    assert client.cancelResponse("item_a", 48_000)["item"]["id"] == "item_a"
    assert engine.sent[-2:] == [{"type": "response.cancel"},
                                {"type": "conversation.item.truncate", "item_id": "item_a", "content_index": 0,
                                 "audio_end_ms": 2000}]
    with pytest.raises(KeyError):
        client.cancelResponse("item_unknown")
    assert_conformant(engine)


async def test_cancel_response_on_a_call_is_the_bridges_barge_in():
    client, engine = await connected()
    assistant_audio_turn(engine)
    channel = engine._channels[1] = FakeChannel()
    before = len(engine.sent)
    client.cancelResponse("item_a")  # no sample count: what the caller heard, by the bridge's playout
    assert channel.interrupts == [True] and len(engine.sent) == before  # the channel sends cancel and truncate
    client.cancelResponse()  # nothing playing any more: only the cancel
    assert engine.sent[-1] == {"type": "response.cancel"}


async def test_media_graph_goes_to_the_engine_and_close_is_told():
    engines = []
    client = RealtimeClient({}, engine_factory=factory(engines))
    call = type("Call", (), {"attach_playout": lambda self, c: None})()
    client.set_caller_format("ulaw")  # Call.sendMediaTo(client) before connect
    client.sendMediaTo(call)  # VoxEngine.sendMediaBetween
    assert client.accept_caller_audio.__name__ == "_dropped"
    closed = []
    client.on("close", closed.append)
    await client.connect()
    engine = engines[0]
    assert engine.caller_format == "ulaw" and engine.media_to == [call]
    assert client.accept_caller_audio == engine.accept_caller_audio  # the uplink itself, nothing in between
    client.disconnect()
    assert engine.closed and not client.isConnected() and closed[0]["error"] is False
    assert client.reset() and client.tools == {} and client.sessionConfig["turn_detection"] is None


def test_every_camel_case_name_of_the_shapes_has_its_snake_case_twin():
    from telephony_bridge.naming import CAMEL_CASE_METHODS, snake_case
    from telephony_bridge.voxengine.context import OpenAINamespace
    from telephony_bridge.voxengine.realtime_client_shape import RealtimeAPI
    from telephony_bridge.voxengine.realtime_conversation_cache import RealtimeConversation
    from telephony_bridge.voxengine.realtime_websocket_shape import OpenAIRealtimeWebSocket
    from telephony_bridge.voxengine.shape_engine import EngineFront

    for cls in (RealtimeEventHandler, RealtimeClient, RealtimeAPI, RealtimeConversation, OpenAIRealtimeWebSocket,
                EngineFront, OpenAINamespace):
        defined = [name for name in CAMEL_CASE_METHODS if name in cls.__dict__]
        assert defined, cls
        for camel in defined:
            assert getattr(cls, snake_case(camel)) is getattr(cls, camel), (cls, camel)
