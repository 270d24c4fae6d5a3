"""The GA OpenAI.RealtimeAPIClient against a scripted model over a real socket: one-object methods,
GA event names and payloads, transcription sessions, pitfall 22, and the checks at creation. Every
client event the GA client can send is validated against the `openai` SDK's GA models."""

from __future__ import annotations

import asyncio
import logging

import pytest

from telephony_bridge.naming import snake_case
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_client import create_realtime_api_client
from telephony_bridge.voxengine.realtime_ga import (
    GA_METHODS,
    GAEvents,
    GARealtimeAPIClient,
    GARealtimeAPIEvents,
    RealtimeAPIClientType,
    realtime_url_from_base,
)
from telephony_bridge.voxengine.realtime_ga_factory import create_ga_realtime_api_client
from tests.conformance.oracle import validate_client_event
from tests.integration.scripted_model import ScriptedModel, eventually

pytestmark = pytest.mark.timeout(30)
G = GARealtimeAPIEvents
KEY = "sk-test-ga"


async def make_ga(server: ScriptedModel, **params):
    tasks = TaskOwner("call CA-ga-test")
    environ = {}
    if params.get("transport") == "webrtc":  # the model leg over WebRTC: events on the data channel
        params["webrtcUrl"] = server.webrtc_url
        environ["WEBRTC_HOST_ADDRESSES"] = "127.0.0.1"
    client = await create_ga_realtime_api_client({"url": server.url, "apiKey": KEY, **params}, tasks=tasks, environ=environ)
    await server.connected()
    return client, tasks


def sent(model: ScriptedModel) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "_connection"} for e in model.received]


@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_every_ga_method_sends_its_event_and_each_validates_against_the_sdk(transport):
    async with ScriptedModel(webrtc=transport == "webrtc") as model:
        client, tasks = await make_ga(model, transport=transport)
        user_item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        client.sessionUpdate({"session": {"type": "realtime", "instructions": "Be brief.",
                                          "audio": {"output": {"voice": "marin", "format": {"type": "audio/pcma"}}}}})
        client.session_update({"session": {"instructions": "Beta-shaped is translated.", "voice": "alloy"}, "event_id": "e1"})
        client.inputAudioBufferCommit({})
        client.input_audio_buffer_clear()
        client.conversationItemCreate({"item": user_item})
        client.conversationItemCreate({"previous_item_id": "item_0", "item": {"role": "assistant",
                                       "content": [{"type": "text", "text": "ok"}]}})
        client.conversationItemRetrieve({"item_id": "item_1"})
        client.conversationItemTruncate({"item_id": "item_1", "content_index": 0, "audio_end_ms": 120.7})
        client.conversationItemDelete({"item_id": "item_1"})
        client.responseCreate({})
        client.responseCreate({"response": {"instructions": "Greet.", "output_modalities": ["audio"]}})
        client.responseCancel({"response_id": "resp_1"})
        client.response_cancel()
        await model.wait_for(lambda: len(model.received) == 14)
        events = sent(model)
        for event in events:
            validate_client_event(event, "ga")
        kinds = [e["type"] for e in events]
        assert set(GA_METHODS.values()) - {"session.close"} <= set(kinds)
        _own, first, second = [e["session"] for e in events if e["type"] == "session.update"]
        assert first["audio"]["output"] == {"voice": "marin", "format": {"type": "audio/pcm", "rate": 24000}}
        assert second["audio"]["output"]["voice"] == "alloy"  # the bridge owns the formats, either shape
        assert [e for e in events if e["type"] == "session.update"][2]["event_id"] == "e1"
        assert next(e for e in events if e["type"] == "conversation.item.truncate")["audio_end_ms"] == 120
        assert events[-1] == {"type": "response.cancel"}
        with pytest.raises(TypeError, match="one object"):
            client.conversationItemDelete("item_1")  # Beta's positional form
        await client.aclose()
        await tasks.aclose()


def test_methods_and_twins_are_the_eighteen_of_the_reference():
    methods = ["id", "webSocketId", "close", "sendMediaTo", "stopMediaTo", "clearMediaBuffer", "addEventListener",
               "removeEventListener", *GA_METHODS]
    assert len(methods) == 18
    for name in methods:
        assert callable(getattr(GARealtimeAPIClient, name))
        assert getattr(GARealtimeAPIClient, snake_case(name)) is getattr(GARealtimeAPIClient, name)
    assert len(G) == 46


async def test_ga_events_carry_the_raw_server_event_as_data_payload_with_attribute_access():
    async with ScriptedModel() as model:
        client, tasks = await make_ga(model)
        got = []
        client.addEventListener(G.ConversationItemAdded, lambda e: got.append(("added", e.data.payload.item.id)))
        client.addEventListener("ResponseOutputAudioTranscriptDelta", lambda e: got.append((e.name, e.data["payload"]["delta"])))
        client.addEventListener(G.ResponseDone, lambda e: got.append(("done", e.data.payload.response.output[0].name)))
        client.addEventListener(G.Unknown, lambda e: got.append(("unknown", e.data.payload.type)))
        await model.send({"type": "conversation.item.added", "item": {"id": "item_9", "type": "message"}})
        await model.send({"type": "response.output_audio_transcript.delta", "delta": "hel"})
        await model.send({"type": "response.done", "response": {"id": "r1", "output": [{"type": "function_call", "name": "lookup"}]}})
        await model.send({"type": "conversation.created"})  # no GA member: Unknown, as Voximplant's enum says
        await eventually(lambda: len(got) == 4)
        assert got == [("added", "item_9"), ("ResponseOutputAudioTranscriptDelta", "hel"), ("done", "lookup"),
                       ("unknown", "conversation.created")]
        await client.aclose()
        await tasks.aclose()


async def test_http_response_and_websocket_error_come_from_the_connector():
    async with ScriptedModel() as model:
        tasks = TaskOwner("call CA-ga-connector")
        client = await create_ga_realtime_api_client({"url": model.url, "reconnect": False}, tasks=tasks, environ={})
        got = []  # listening right after the awaited create, as scenarios do
        client.addEventListener(G.HTTPResponse, lambda e: got.append(e.data.payload.status_code))
        client.addEventListener(G.WebSocketError, lambda e: got.append(e.data.payload.code))
        await eventually(lambda: got == [101])
        ws = await model.connected()
        ws.transport.abort()
        await eventually(lambda: len(got) == 2)
        assert got[1] != 1000
        await tasks.aclose()


@pytest.mark.parametrize("shape", ["ga", "beta"])
async def test_pitfall_22_the_bridges_own_session_update_is_not_a_scenario_session_updated(shape):
    """The scripted model answers every session.update in order, without echoing event ids (as GA
    servers do). Only the answer to the scenario's update reaches SessionUpdated."""
    async with ScriptedModel() as model:
        tasks = TaskOwner("call CA-ga-22")
        params = {"url": model.url, "apiKey": KEY}
        if shape == "ga":
            client = await create_ga_realtime_api_client(params, tasks=tasks, environ={})
        else:
            client = await create_realtime_api_client(params, tasks=tasks, environ={})
        await model.connected()
        updated = []
        client.addEventListener("SessionUpdated", lambda e: updated.append(e))
        if shape == "ga":
            client.sessionUpdate({"session": {"instructions": "Mine."}})
        else:
            client.sessionUpdate({"instructions": "Mine."})
        await model.wait_for(lambda: len(model.of_type("session.update")) == 2)
        for number, _ in enumerate(model.of_type("session.update")):
            await model.send({"type": "session.updated", "event_id": f"event_srv{number}",
                              "session": {"instructions": ["", "Mine."][number]}})
        await eventually(lambda: client.session.get("instructions") == "Mine.")
        await asyncio.sleep(0.05)
        assert len(updated) == 1
        data = updated[0].data.payload if shape == "ga" else updated[0].data
        assert data.session.instructions == "Mine."
        # A refused scenario update is dropped from the queue by the id its error names.
        client.sessionUpdate({"session": {"instructions": "Bad."}} if shape == "ga" else {"instructions": "Bad."})
        client.sessionUpdate({"session": {"instructions": "Good."}} if shape == "ga" else {"instructions": "Good."})
        await model.wait_for(lambda: len(model.of_type("session.update")) == 4)
        bad = model.of_type("session.update")[2]
        await model.send({"type": "error", "error": {"type": "invalid_request_error", "message": "no", "event_id": bad["event_id"]}})
        await model.send({"type": "session.updated", "session": {"instructions": "Good."}})
        await eventually(lambda: len(updated) == 2)
        await client.aclose()
        await tasks.aclose()


async def test_transcription_client_opens_a_transcription_session():
    async with ScriptedModel() as model:
        client, tasks = await make_ga(model, type=RealtimeAPIClientType.TRANSCRIPTION, model="gpt-live-transcribe")
        client.sessionUpdate({"session": {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-live-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad"}, "format": {"type": "audio/pcmu"}}}}})
        await model.wait_for(lambda: len(model.of_type("session.update")) == 2)
        own, mine = (e for e in sent(model) if e["type"] == "session.update")
        for event in (own, mine):
            validate_client_event(event, "ga")
            assert event["session"]["type"] == "transcription"
            assert event["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert own["session"]["audio"]["input"]["transcription"] == {"model": "gpt-live-transcribe"}
        assert mine["session"]["audio"]["input"]["transcription"]["language"] == "en"
        path = model.connections[0].request.path
        assert "intent=transcription" in path and "model=" not in path
        await client.aclose()
        await tasks.aclose()


async def test_translation_client_speaks_the_translation_protocol_and_closes_gracefully():
    async with ScriptedModel() as model:
        closes = []
        client, tasks = await make_ga(model, type=RealtimeAPIClientType.TRANSLATION,
                                      onWebSocketClose=lambda e: closes.append(e.code))
        path = model.connections[0].request.path
        assert path == "/v1/realtime/translations?model=gpt-realtime-translate"
        got = []
        for name in ("SessionInputTranscriptDelta", "SessionOutputTranscriptDelta", "SessionClosed"):
            client.addEventListener(G[name], lambda e: got.append((e.name, e.data.payload.type, e.data.payload.get("delta"))))
        client.sessionUpdate({"session": {"audio": {"output": {"language": "es"}}}})
        await model.send({"type": "session.input_transcript.delta", "delta": "Hello", "elapsed_ms": 200})
        await model.send({"type": "session.output_transcript.delta", "delta": "Hola", "elapsed_ms": 200})
        client.sessionClose()
        await model.wait_for(lambda: len(model.received) == 2)
        # No session.update of the bridge's own: the scenario's is the first event.
        assert [e["type"] for e in sent(model)] == ["session.update", "session.close"]
        for event in sent(model):
            validate_client_event(event, "translation")
        await model.send({"type": "session.closed"})
        await eventually(lambda: len(got) == 3)
        assert got == [("SessionInputTranscriptDelta", "session.input_transcript.delta", "Hello"),
                       ("SessionOutputTranscriptDelta", "session.output_transcript.delta", "Hola"),
                       ("SessionClosed", "session.closed", None)]
        await model.drop(1000, "")  # the server hangs up after session.closed: no reconnect
        await eventually(lambda: closes == [1000])
        assert len(model.connections) == 1 and client.closed
        await tasks.aclose()


async def test_translation_model_base_url_and_refusals_at_creation():
    async with ScriptedModel() as model:
        base = model.url.removesuffix("/v1/realtime") + "/v1"
        tasks = TaskOwner("call CA-tr")
        client = await create_ga_realtime_api_client({"type": "translation", "baseUrl": base, "model": "gpt-realtime-translate-2"},
                                                     tasks=tasks, environ={"REALTIME_MODEL": "gpt-realtime-2.1"})
        await model.connected()
        assert model.connections[0].request.path == "/v1/realtime/translations?model=gpt-realtime-translate-2"
        with pytest.raises(ValueError, match="translation session"):
            client.responseCreate({})
        await client.aclose()
        await tasks.aclose()
    with pytest.raises(ValueError, match="PCM16 24 kHz"):
        await create_ga_realtime_api_client({"type": "translation", "codec": "g711_ulaw"}, tasks=TaskOwner("t"), environ={})


async def test_beta_dialect_toward_openai_is_an_error_at_creation():
    for create in (create_ga_realtime_api_client, create_realtime_api_client):
        with pytest.raises(ValueError, match="beta_api_shape_disabled"):
            await create({"dialect": "beta", "apiKey": KEY}, tasks=TaskOwner("t"), environ={"OPENAI_API_KEY": KEY})


async def test_default_model_from_environment_and_retired_models_warn(caplog):
    async with ScriptedModel() as model:
        client, tasks = await make_ga(model)
        assert client.model == "gpt-realtime-2.1"
        await client.aclose()
        tasks2 = TaskOwner("call CA-ga-model")
        with caplog.at_level(logging.WARNING, "telephony_bridge.realtime"):
            other = await create_ga_realtime_api_client({"url": model.url}, tasks=tasks2, environ={"REALTIME_MODEL": "gpt-realtime"})
        assert other.model == "gpt-realtime"
        assert any("2027-01-20" in r.getMessage() for r in caplog.records)
        await other.aclose()
        await tasks.aclose()
        await tasks2.aclose()


def test_base_url_becomes_the_realtime_websocket():
    assert realtime_url_from_base("https://api.openai.com/") == "wss://api.openai.com/v1/realtime"
    assert realtime_url_from_base("http://127.0.0.1:9000/v1") == "ws://127.0.0.1:9000/v1/realtime"
    assert realtime_url_from_base("ws://proxy/v1/realtime") == "ws://proxy/v1/realtime"


def test_media_events_keep_voximplants_values():
    assert GAEvents.WebSocketMediaStarted.value == "OpenAI.Events.WebSocketMediaStarted"
    assert GAEvents.WebSocketMediaEnded.value == "OpenAI.Events.WebSocketMediaEnded"
