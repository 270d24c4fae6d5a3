"""Model WebSocket drops and session recycling: the call survives, the new session is replayed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.testing.fault_proxy import FaultProxy
from telephony_bridge.voxengine.realtime_client import create_realtime_api_client
from tests.conformance.oracle import validate_client_event
from tests.integration.scripted_model import ScriptedModel, eventually

pytestmark = pytest.mark.timeout(60)


async def make_client(model: ScriptedModel, **params):
    tasks = TaskOwner("call CA-reconnect")
    environ = {}
    if params.get("transport") == "webrtc":  # events on the data channel, caller audio on the track
        params["webrtcUrl"] = model.webrtc_url
        environ["WEBRTC_HOST_ADDRESSES"] = "127.0.0.1"
    client = await create_realtime_api_client({"url": model.url, "apiKey": "k", **params}, tasks=tasks, environ=environ)
    await model.connected()
    events: list[tuple[str, dict]] = []
    for member in (MediaEvents.WebSocketReconnecting, MediaEvents.WebSocketReconnected):
        client.addEventListener(member, lambda e: events.append((e.name, dict(e))))
    return client, tasks, events


async def conversation_so_far(model: ScriptedModel) -> None:
    await model.send({"type": "conversation.item.added", "item": {"id": "u1", "type": "message", "role": "user", "content": [{"type": "input_audio"}]}})
    await model.send({"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "content_index": 0, "transcript": "Book a table for two."})
    await model.response_started("resp_1", "a1")
    await model.send({"type": "response.output_audio_transcript.done", "item_id": "a1", "response_id": "resp_1", "output_index": 0, "content_index": 0, "transcript": "Done, a table for two at eight."})
    await model.response_done("resp_1")


@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_drop_reconnects_replays_session_and_conversation_and_resumes_audio(transport):
    async with ScriptedModel(webrtc=transport == "webrtc") as model:
        client, tasks, events = await make_client(model, transport=transport)
        client.sessionUpdate({"instructions": "You book tables.", "voice": "alloy"})
        await conversation_so_far(model)
        await client.accept_caller_audio(b"\xff" * 160)
        await model.wait_for(lambda: model.of_type("input_audio_buffer.append", 0))
        await model.drop(1011, "internal error")
        await model.wait_for(lambda: len(model.connections) == 2 and len(model.of_type("conversation.item.create", 1)) == 2)
        [session] = model.of_type("session.update", 1)
        assert session["session"]["instructions"] == "You book tables."
        assert session["session"]["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}
        replayed = [e["item"] for e in model.of_type("conversation.item.create", 1)]
        assert replayed[0]["role"] == "user" and replayed[0]["content"][0]["text"] == "Book a table for two."
        assert replayed[1]["role"] == "assistant" and replayed[1]["content"][0] == {"type": "output_text", "text": "Done, a table for two at eight."}
        await eventually(lambda: any(name == "WebSocketReconnected" for name, _ in events))
        reconnected = next(fields for name, fields in events if name == "WebSocketReconnected")
        assert reconnected["replayedItems"] == 2 and reconnected["recycled"] is False
        await client.accept_caller_audio(b"\xff" * 160)  # media resumes on the new connection
        await model.wait_for(lambda: model.of_type("input_audio_buffer.append", 1))
        client.responseCreate({})  # control messages go to the new connection
        await model.wait_for(lambda: model.of_type("response.create", 1))
        assert not client.closed and client.stats.reconnects == 1
        for event in model.received:
            validate_client_event({k: v for k, v in event.items() if k != "_connection"}, "ga")
        await client.aclose()
        await tasks.aclose()


async def test_gives_up_after_the_attempts_and_reports_close_once():
    model = ScriptedModel()
    await model.__aenter__()
    closes = []
    client, tasks, events = await make_client(model, maxReconnectAttempts=3, onWebSocketClose=lambda e: closes.append(e.code))
    await model.__aexit__(None, None, None)  # the model is gone for good
    await eventually(lambda: client.closed, timeout=10)
    assert closes == [1001]  # the last close the server sent: going away
    assert [name for name, _ in events].count("WebSocketReconnecting") == 3
    await tasks.aclose()


async def test_recycles_the_session_at_a_turn_boundary_before_the_cap():
    async with ScriptedModel() as model:
        client, tasks, events = await make_client(model, sessionMaxDurationS=0.05)
        await model.response_started("resp_1", "a1")
        await asyncio.sleep(0.1)  # the session is now older than its cap, but an answer is in progress
        await model.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u2"})
        await model.response_done("resp_1")
        await model.send({"type": "rate_limits.updated", "rate_limits": []})
        assert len(model.connections) == 1  # not while the caller is speaking
        await model.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "u2"})
        await model.response_started("resp_2", "a2")
        await model.response_done("resp_2")  # the turn boundary
        await model.wait_for(lambda: len(model.connections) == 2)
        await eventually(lambda: any(name == "WebSocketReconnected" for name, _ in events))
        reconnected = next(fields for name, fields in events if name == "WebSocketReconnected")
        assert reconnected["recycled"] is True and reconnected["attempt"] == 1
        await client.aclose()
        await tasks.aclose()


# --- a model that goes silent mid-answer with its socket open (pitfalls 20 and 21) -----------

def reconnect_fields(events: list[tuple[str, dict]], name: str) -> dict:
    return next(fields for event, fields in events if event == name)


def asked_again_after_replay(model: ScriptedModel) -> bool:
    kinds = [e["type"] for e in model.received if e["_connection"] == 1]
    return kinds[0] == "session.update" and "response.create" in kinds and all(
        kind != "conversation.item.create" for kind in kinds[kinds.index("response.create"):])


async def test_model_silent_mid_answer_is_cut_off_and_asked_for_the_answer_again():
    async with ScriptedModel() as model:
        client, tasks, events = await make_client(model)
        await conversation_so_far(model)
        await model.response_started("resp_2", "a2")
        await model.audio("resp_2", "a2", 200)
        # ... and nothing more. The socket stays open and answers pings: only the answer tells.
        await model.wait_for(lambda: len(model.connections) == 2 and model.of_type("response.create", 1))
        assert asked_again_after_replay(model)
        await eventually(lambda: any(name == "WebSocketReconnected" for name, _ in events))
        assert "silent mid-answer" in reconnect_fields(events, "WebSocketReconnecting")["reason"]
        assert reconnect_fields(events, "WebSocketReconnected")["resumedAnswer"] is True
        assert client.stats.reconnects == 1 and not client.closed
        await client.aclose()
        await tasks.aclose()


async def test_half_open_socket_mid_answer_is_noticed_without_pings():
    async with ScriptedModel() as model, FaultProxy(urlsplit(model.url).port) as proxy:
        tasks = TaskOwner("call CA-half-open")
        events: list[tuple[str, dict]] = []
        client = await create_realtime_api_client({"url": proxy.url(), "apiKey": "k", "pingIntervalS": None}, tasks=tasks, environ={})
        for member in (MediaEvents.WebSocketReconnecting, MediaEvents.WebSocketReconnected):
            client.addEventListener(member, lambda e: events.append((e.name, dict(e))))
        await model.connected()
        await model.response_started("resp_1", "a1")
        await model.audio("resp_1", "a1", 100)
        await eventually(lambda: client.stats.model_audio_deltas == 1)
        proxy.make_half_open()  # no pings either: without the answer watchdog nothing would notice
        await model.wait_for(lambda: len(model.connections) == 2 and model.of_type("response.create", 1))
        assert asked_again_after_replay(model)
        await eventually(lambda: any(name == "WebSocketReconnected" for name, _ in events))
        assert [name for name, _ in events] == ["WebSocketReconnecting", "WebSocketReconnected"]
        await client.aclose()
        await tasks.aclose()


@pytest.mark.parametrize("caller_speaking", [False, True])
async def test_drop_mid_answer_asks_again_unless_the_caller_has_the_floor(caller_speaking):
    async with ScriptedModel() as model:
        client, tasks, events = await make_client(model)
        await model.response_started("resp_1", "a1")
        await model.audio("resp_1", "a1", 100)
        if caller_speaking:  # a barge-in: the caller's turn comes when they stop (server VAD)
            await model.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u2"})
        await model.send({"type": "rate_limits.updated", "rate_limits": []})
        await eventually(lambda: client.stats.model_audio_deltas == 1 and client._caller_speaking is caller_speaking)
        await model.drop(1011, "internal error")
        await model.wait_for(lambda: len(model.connections) == 2)
        await eventually(lambda: any(name == "WebSocketReconnected" for name, _ in events))
        assert reconnect_fields(events, "WebSocketReconnected")["resumedAnswer"] is not caller_speaking
        client.conversationItemRetrieve("marker")  # the writer's next message: everything before it has arrived
        await model.wait_for(lambda: model.of_type("conversation.item.retrieve", 1))
        assert bool(model.of_type("response.create", 1)) is not caller_speaking
        await client.aclose()
        await tasks.aclose()


# --- the real thing: the embedded engine dies and comes back during a live call ---------------

import orjson  # noqa: E402

from telephony_bridge.local_engine import LocalEngine, Script  # noqa: E402
from telephony_bridge.local_engine.tts import synthesize  # noqa: E402
from telephony_bridge.server.settings import Settings  # noqa: E402
from telephony_bridge.testing.processes import free_port  # noqa: E402
from telephony_bridge.testing.servers import running_bridge  # noqa: E402
from telephony_bridge.testing.simulator import place_call  # noqa: E402

PROJECT_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def caller_says(at_s: float, text: str, total_s: float) -> bytes:
    audio = bytearray(b"\x00" * int(at_s * 8000) * 2)
    audio += synthesize(text, 8000, "en-us+f3")
    audio += b"\x00" * max(0, int(total_s * 8000) * 2 - len(audio))
    return bytes(audio)


@pytest.mark.slow
@pytest.mark.parametrize("kill_when", ["mid-answer", "mid-caller-speech"])
async def test_engine_killed_and_restarted_mid_call_the_call_goes_on(tmp_path, kill_when):
    port = free_port()
    first = LocalEngine(port=port, script=Script.from_turns(["Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?"]))
    second = LocalEngine(port=port, script=Script.from_turns(["Sorry, I missed that. I am back now. What can I do for you?"]))
    await first.start()
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "default.py").write_text((PROJECT_SCENARIOS / "default.py").read_text())  # the receptionist
    settings = Settings(scenarios_dir=scenarios, realtime_url=first.url, calls_dir=tmp_path)
    call_sid = "CA" + "7" * 32
    # mid-answer: kill 1.5 s into the greeting, caller asks at 4 s. mid-caller-speech: caller talks at 2-4 s over the greeting; kill at 2.6 s.
    speech_at = 4.0 if kill_when == "mid-answer" else 2.0
    kill_at = 1.5 if kill_when == "mid-answer" else 2.6
    async with running_bridge(settings) as runtime:
        call = asyncio.create_task(place_call(
            runtime.settings.base_url,
            caller_audio=caller_says(speech_at, "Can you say that again please?", 9.5),
            duration_s=9.5, call_sid=call_sid))
        await eventually(lambda: first.connections, timeout=10)
        await asyncio.sleep(kill_at)  # the call's own clock: where in the conversation to pull the plug
        await first.stop()
        await second.start()
        result = await call
        await second.stop()
    journal = orjson.loads((tmp_path / f"{call_sid}.json").read_bytes())
    kinds = [e["event"] for e in journal]
    assert "model.reconnected" in kinds
    after = kinds[kinds.index("model.reconnected"):]
    assert "agent.audio_started" in after  # the new session answered the caller, and the caller heard it
    assert journal[-1]["event"] == "call.ended" and journal[-1]["reason"] == "caller hung up"
    assert result.error is None and result.closed_by == "caller"
    downtime = next(e for e in journal if e["event"] == "model.reconnected")["downtimeMs"]
    assert downtime < 2000
    heard_after = result.playout.played_ms
    assert heard_after > 2000

