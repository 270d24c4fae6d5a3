"""RealtimeAPIClient against a scripted model server over a real socket: formats, dialects, every
server event type, error policy, close reporting, auth failure."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from telephony_bridge.realtime import uplink as uplink_module
from telephony_bridge.realtime.connection import RealtimeConnectionError
from telephony_bridge.realtime.events import RealtimeAPIEvents, event_for_wire_type
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_client import create_realtime_api_client
from tests.conformance.oracle import known_types, validate_client_event
from tests.integration.scripted_model import ScriptedModel, eventually

pytestmark = pytest.mark.timeout(30)
SECRET = "sk-live-very-secret-key-0123456789"


async def make_client(model: ScriptedModel, **params):
    tasks = TaskOwner("call CA-client-test")
    client = await create_realtime_api_client({"url": model.url, "apiKey": SECRET, **params}, tasks=tasks, environ={})
    await model.connected()
    return client, tasks


@pytest.mark.parametrize("dialect, codec, expected", [
    ("ga", "pcm16", {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                                                   "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}),
    ("ga", "g711_ulaw", {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                                       "output": {"format": {"type": "audio/pcmu"}}}}),
    ("beta", "pcm16", {"input_audio_format": "pcm16", "output_audio_format": "pcm16"}),
])
async def test_bridge_sets_formats_on_connect_and_reasserts_them(dialect, codec, expected):
    async with ScriptedModel() as model:
        client, tasks = await make_client(model, dialect=dialect, codec=codec)
        client.sessionUpdate({"instructions": "Be brief.", "input_audio_format": "g711_alaw", "output_audio_format": "g711_alaw"})
        await model.wait_for(lambda: len(model.of_type("session.update")) == 2)
        first, second = model.of_type("session.update")
        assert first["session"] == expected
        assert second["session"]["instructions"] == "Be brief."
        if dialect == "ga":
            assert second["session"]["audio"] == expected["audio"]  # the user's g711_alaw is ignored
        else:
            assert second["session"]["input_audio_format"] == expected["input_audio_format"]
        assert model.headers[0]["Authorization"] == f"Bearer {SECRET}"
        assert ("OpenAI-Beta" in model.headers[0]) == (dialect == "beta")
        for event in model.received:
            validate_client_event({k: v for k, v in event.items() if k != "_connection"}, dialect)
        await client.aclose()
        await tasks.aclose()


async def test_snake_case_twins_send_the_same_events():
    async with ScriptedModel() as model:
        client, tasks = await make_client(model)
        client.conversation_item_create(None, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]})
        client.conversationItemCreate(None, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]})
        client.response_create({"instructions": "x"}, "evt_1")
        client.conversation_item_retrieve("item_1")
        client.conversationItemTruncate("item_1", 0, 120.9)
        client.response_cancel()
        await model.wait_for(lambda: len(model.received) == 7)
        creates = model.of_type("conversation.item.create")
        assert creates[0] == creates[1]
        assert model.of_type("response.create")[0]["event_id"] == "evt_1"
        assert model.of_type("conversation.item.truncate")[0]["audio_end_ms"] == 120
        for event in model.received:
            validate_client_event({k: v for k, v in event.items() if k != "_connection"}, "ga")
        await client.aclose()
        await tasks.aclose()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_every_server_event_type_reaches_its_listener(dialect):
    async with ScriptedModel() as model:
        client, tasks = await make_client(model, dialect=dialect)
        got: list[tuple[str, str]] = []
        for member in RealtimeAPIEvents:
            client.addEventListener(member, lambda e: got.append((e.name, e.data["type"])))
        types = sorted(known_types(dialect, "server") - {"session.created"})
        # The answer to the bridge's own format update is not the scenario's (pitfall 22).
        await model.send({"type": "session.updated", "session": {}})
        for kind in types:
            delta = {"delta": base64.b64encode(b"\0\0" * 480).decode()} if kind.endswith("audio.delta") else {}
            await model.send({"type": kind, **delta})
        await model.send({"type": "totally.new_event"})
        expected = [(event_for_wire_type(k, dialect).name, k) for k in types] + [("Unknown", "totally.new_event")]
        await eventually(lambda: len(got) >= len(expected))
        assert sorted(got) == sorted(expected)
        assert client.closed is False  # the bare `error` event had no fatal code
        await client.aclose()
        await tasks.aclose()


async def test_same_member_fires_for_both_dialects_names():
    for dialect, wire in (("ga", "response.output_audio_transcript.delta"), ("beta", "response.audio_transcript.delta")):
        async with ScriptedModel() as model:
            client, tasks = await make_client(model, dialect=dialect)
            seen = asyncio.get_running_loop().create_future()
            client.addEventListener(RealtimeAPIEvents.ResponseAudioTranscriptDelta, lambda e, seen=seen: seen.set_result(e.data["delta"]))
            await model.send({"type": wire, "delta": "hel"})
            assert await asyncio.wait_for(seen, 5) == "hel"
            await client.aclose()
            await tasks.aclose()


async def test_benign_error_keeps_the_call_fatal_error_closes_once(caplog):
    async with ScriptedModel() as model:
        closes = []
        client, tasks = await make_client(model, onWebSocketClose=lambda e: closes.append((e.code, e.reason, e.wasClean)))
        errors = []
        client.addEventListener(RealtimeAPIEvents.Error, lambda e: errors.append(e.data["error"]["code"]))
        await model.send({"type": "error", "error": {"type": "invalid_request_error", "code": "response_cancel_not_active", "message": "no active response"}})
        await model.send({"type": "error", "error": {"type": "invalid_request_error", "code": "conversation_already_has_active_response", "message": "busy"}})
        await eventually(lambda: len(errors) == 2)
        assert not client.closed and closes == []
        with caplog.at_level(logging.INFO):
            await model.send({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": f"Incorrect API key provided: {SECRET}"}})
            await eventually(lambda: client.closed and len(closes) == 1)
        await asyncio.sleep(0)  # the close handshake finishing must not report a second close
        assert len(closes) == 1 and closes[0][0] == 1000 and "invalid_api_key" in closes[0][1]
        assert SECRET not in caplog.text
        await tasks.aclose()


async def test_server_dropping_the_socket_reports_close_once_without_reconnect():
    async with ScriptedModel() as model:
        closed = asyncio.get_running_loop().create_future()
        client, tasks = await make_client(model, reconnect=False, onWebSocketClose=lambda e: closed.set_result((e.code, e.wasClean)))
        await model.connections[-1].close(4000, "session limit reached")
        code, _clean = await asyncio.wait_for(closed, 5)
        assert code == 4000
        assert client.closed
        client.sessionUpdate({"instructions": "after close"})  # ignored with a warning, no crash
        await tasks.aclose()


@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_auth_failure_raises_without_the_key(transport, caplog):
    async with ScriptedModel(require_key="sk-the-right-one", webrtc=transport == "webrtc") as model:
        webrtc = {"transport": "webrtc", "webrtcUrl": model.webrtc_url} if transport == "webrtc" else {}
        with pytest.raises(RealtimeConnectionError) as info:
            await create_realtime_api_client({"url": model.url, "apiKey": SECRET, **webrtc}, tasks=TaskOwner("t"),
                                             environ={"WEBRTC_HOST_ADDRESSES": "127.0.0.1"})
        assert "401" in str(info.value) and "authentication" in str(info.value)
        assert SECRET not in str(info.value) and SECRET not in repr(info.value.__cause__)
        assert SECRET not in caplog.text


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9/v1/realtime", {"transport": "webrtc", "webrtcUrl": "http://127.0.0.1:9/v1/realtime/calls"}])
async def test_connect_failure_is_clear(url):
    parameters = {"url": url} if isinstance(url, str) else {"url": "ws://127.0.0.1:9/v1/realtime", **url}
    with pytest.raises(RealtimeConnectionError, match="cannot connect"):
        await create_realtime_api_client({**parameters, "apiKey": SECRET}, tasks=TaskOwner("t"), environ={})


async def test_sync_async_and_raising_handlers(caplog):
    async with ScriptedModel() as model:
        client, tasks = await make_client(model)
        order = []
        done = asyncio.Event()

        async def async_handler(e):
            order.append("async")
            done.set()

        client.addEventListener(RealtimeAPIEvents.ResponseDone, lambda e: 1 / 0)
        client.addEventListener("response.done", lambda e: order.append("sync"))
        client.addEventListener("ResponseDone", async_handler)
        with pytest.raises(TypeError):
            client.addEventListener(RealtimeAPIEvents.ResponseDone, None)
        with caplog.at_level(logging.ERROR):
            await model.send({"type": "response.done", "response": {"id": "r1"}})
            await asyncio.wait_for(done.wait(), 5)
        assert order == ["sync", "async"] and "ZeroDivisionError" in caplog.text
        client.removeEventListener(RealtimeAPIEvents.ResponseDone)
        await model.send({"type": "response.done", "response": {"id": "r2"}})
        await client.aclose()
        assert order == ["sync", "async"]
        await tasks.aclose()


@pytest.mark.parametrize("direct_write", [True, False], ids=["direct write", "websockets send()"])
@pytest.mark.parametrize("codec, frame_bytes", [("pcm16", 960), ("g711_ulaw", 160)])
async def test_caller_audio_becomes_input_audio_append(codec, frame_bytes, direct_write, monkeypatch):
    monkeypatch.setattr(uplink_module, "DIRECT_WRITE", direct_write)  # False: a websockets without send_data()
    async with ScriptedModel() as model:
        client, tasks = await make_client(model, codec=codec)
        frame = bytes(range(160))
        for _ in range(10):
            await client.accept_caller_audio(frame)
        await model.wait_for(lambda: len(model.of_type("input_audio_buffer.append")) == 10)
        appends = [base64.b64decode(e["audio"]) for e in model.of_type("input_audio_buffer.append")]
        if codec == "g711_ulaw":
            assert appends == [frame] * 10  # passed through untouched
        else:
            # time-aligned resampler: 1.5 ms of look-ahead held back, then exactly 3x
            assert sum(len(a) for a in appends) == 10 * frame_bytes - 36 * 2
            assert all(len(a) == frame_bytes for a in appends[1:])
        for event in model.received:
            validate_client_event({k: v for k, v in event.items() if k != "_connection"}, "ga")
        await client.aclose()
        await tasks.aclose()


@pytest.mark.parametrize("direct_write", [True, False], ids=["direct write", "websockets send()"])
async def test_each_uplink_write_path_is_the_one_taken(direct_write, monkeypatch):
    """The direct-write shortcut and the `await ws.send()` fallback, each on its own: the other is
    never touched, and the model gets every frame either way."""
    monkeypatch.setattr(uplink_module, "DIRECT_WRITE", direct_write)
    async with ScriptedModel() as model:
        client, tasks = await make_client(model, codec="g711_ulaw")
        await model.wait_for(lambda: bool(model.of_type("session.update")))  # the writer task is idle now
        connection = client._ws
        used = {"direct": 0, "send": 0}
        real_frame, real_send = uplink_module.masked_text_frame, connection.send

        def counting_frame(payload: bytes) -> bytes:
            used["direct"] += 1
            return real_frame(payload)

        async def counting_send(message, text=None):
            used["send"] += 1
            await real_send(message, text=text)

        monkeypatch.setattr(uplink_module, "masked_text_frame", counting_frame)
        connection.send = counting_send
        for _ in range(3):
            await client.accept_caller_audio(b"\x7f" * 160)
        await model.wait_for(lambda: len(model.of_type("input_audio_buffer.append")) == 3)
        assert used == ({"direct": 3, "send": 0} if direct_write else {"direct": 0, "send": 3})
        assert client.stats.caller_frames == 3 and client.stats.caller_audio_dropped_ms == 0
        await client.aclose()
        await tasks.aclose()


async def test_caller_audio_never_waits_for_the_model_socket_to_drain():
    """A frame is handed to the socket without suspending, even while the connection is paused for
    writing (its buffer over the high-water mark): waiting there would hold the carrier's reader."""
    async with ScriptedModel() as model:
        client, tasks = await make_client(model)
        connection = client._ws
        connection.pause_writing()  # what the transport calls when its write buffer fills up
        try:
            for _ in range(5):
                step = client.accept_caller_audio(b"\xff" * 160).__await__()
                with pytest.raises(StopIteration):  # finished at the first step: nothing awaited
                    step.send(None)
        finally:
            connection.resume_writing()
        await model.wait_for(lambda: len(model.of_type("input_audio_buffer.append")) == 5)
        assert client.stats.caller_frames == 5 and client.stats.caller_audio_dropped_ms == 0
        await client.aclose()
        await tasks.aclose()


async def test_a_failing_audio_write_drops_the_model_connection_not_the_carrier(caplog, monkeypatch):
    async with ScriptedModel() as model:
        client, tasks = await make_client(model, reconnect=False)

        def broken(payload: bytes) -> bytes:
            raise RuntimeError("framing exploded")

        monkeypatch.setattr(uplink_module, "masked_text_frame", broken)  # an internal error on the write path
        with caplog.at_level(logging.ERROR, logger="telephony_bridge.realtime"):
            await client.accept_caller_audio(b"\xff" * 160)  # must not raise into the carrier reader
        assert client.stats.caller_audio_dropped_ms == 20
        assert "writing caller audio to the model failed" in caplog.text
        await eventually(lambda: client.closed)  # the reader saw the connection go
        await client.accept_caller_audio(b"\xff" * 160)  # and later frames are dropped quietly
        assert client.stats.caller_audio_dropped_ms == 40
        await tasks.aclose()


async def test_local_address_is_the_model_connection_seen_from_the_model_and_outlives_it():
    async with ScriptedModel() as model:
        client, tasks = await make_client(model)
        seen_by_model = tuple(model.connections[0].remote_address[:2])
        assert tuple(client.local_address[:2]) == seen_by_model
        await client.aclose()
        assert tuple(client.local_address[:2]) == seen_by_model  # the call-flow kit reads it after the call
        await tasks.aclose()


async def test_trace_logs_no_audio_and_no_key(caplog):
    async with ScriptedModel() as model:
        with caplog.at_level(logging.INFO, logger="telephony_bridge.realtime"):
            client, tasks = await make_client(model, trace=True)
            await client.accept_caller_audio(b"\x7f" * 160)
            client.sessionUpdate({"instructions": "traced"})
            await model.send({"type": "response.output_audio_transcript.delta", "delta": "hello"})
            await model.wait_for(lambda: len(model.of_type("session.update")) == 2)
            await asyncio.sleep(0)
        assert "traced" in caplog.text and "hello" in caplog.text
        assert SECRET not in caplog.text
        assert base64.b64encode(b"\x7f" * 160).decode()[:40] not in caplog.text
        await client.aclose()
        await tasks.aclose()


async def test_beta_function_call_done_gets_the_name_scenarios_expect():
    async with ScriptedModel() as model:
        client, tasks = await make_client(model, dialect="beta")
        seen = asyncio.get_running_loop().create_future()
        client.addEventListener(RealtimeAPIEvents.ResponseFunctionCallArgumentsDone, lambda e: seen.set_result(e.data))
        await model.send({"type": "response.output_item.added", "response_id": "r1", "output_index": 0,
                          "item": {"id": "fc_1", "type": "function_call", "name": "get_current_time", "call_id": "call_1", "arguments": ""}})
        await model.send({"type": "response.function_call_arguments.done", "response_id": "r1", "item_id": "fc_1",
                          "output_index": 0, "call_id": "call_1", "arguments": "{}"})  # beta: no "name"
        data = await asyncio.wait_for(seen, 5)
        assert data["name"] == "get_current_time" and data["call_id"] == "call_1"
        await client.aclose()
        await tasks.aclose()


async def test_a_model_frame_that_is_not_json_or_not_utf8_is_skipped_and_a_clean_close_is_clean(caplog):
    # The reader takes frames as bytes (orjson checks UTF-8 itself): invalid UTF-8 in a text frame is
    # one bad frame, logged and skipped like any non-JSON frame, not the end of the model connection.
    async with ScriptedModel() as model:
        closed = asyncio.get_running_loop().create_future()
        client, tasks = await make_client(model, reconnect=False, onWebSocketClose=lambda e: closed.set_result((e.code, e.reason, e.wasClean)))
        errors = []
        client.addEventListener(RealtimeAPIEvents.Error, lambda e: errors.append(e.data["error"]["code"]))
        ws = model.connections[-1]
        with caplog.at_level(logging.WARNING):
            await ws.send(b'{"type": "error", "error": {"code": "\xff\xfe"}}', text=True)
            await ws.send("not json at all")
            await model.send({"type": "error", "error": {"type": "invalid_request_error", "code": "after_the_bad_frames"}})
            await eventually(lambda: errors == ["after_the_bad_frames"])
        assert caplog.text.count("not JSON; ignored") == 2
        assert not client.closed
        await ws.close(1000, "bye")
        assert await asyncio.wait_for(closed, 5) == (1000, "bye", True)
        await tasks.aclose()
