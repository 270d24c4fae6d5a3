"""The GPT-Live client against the local engine in Live mode, over real sockets: a reconnect through
the fault-injection proxy (no resume on Live: a new session seeded with the transcript), and input
kept flowing in real time without the carrier gap fill doubling a hold."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from telephony_bridge.local_engine import LocalEngine, Script
from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.realtime.live_wire import LiveAPIEvents
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.testing.fault_proxy import FaultProxy
from telephony_bridge.voxengine.live_client_factory import create_live_api_client, resolve_live_url
from tests.conformance.live_oracle import validate_live
from tests.integration.scripted_model import eventually

pytestmark = pytest.mark.timeout(60)


def tone(text: str, rate: int, voice: str, speed: float) -> bytes:
    n = int(rate * 0.15 * max(1, len(text.split())))
    return (np.sin(np.arange(n) * 0.3) * 8000).astype("<i2").tobytes()


async def live_client(url: str, tasks: TaskOwner):
    client = await create_live_api_client({"apiKey": "k"}, tasks=tasks, environ={"LIVE_URL": url})
    seen: list[tuple[str, dict]] = []
    for member in (LiveAPIEvents.HTTPResponse, LiveAPIEvents.ConnectorInformation, LiveAPIEvents.SessionStarted, LiveAPIEvents.SessionOutputTranscriptDelta, LiveAPIEvents.AgentStartedSpeaking,
                   LiveAPIEvents.AgentStoppedSpeaking, MediaEvents.WebSocketReconnected):
        client.addEventListener(member, lambda e: seen.append((e.name, dict(e.data["payload"]) if "data" in e else dict(e))))
    client.sessionStart({"session": {"model": "gpt-live-1", "instructions": "Be brief.", "temperature": 0.8}})
    return client, seen


async def test_a_drop_starts_a_new_session_seeded_with_the_transcript_so_far():
    async with LocalEngine(script=Script.from_turns(["Hello there, this is Acme."]), synthesize=tone) as engine:
        async with FaultProxy(engine.port) as proxy:
            tasks = TaskOwner("call CA-live-reconnect")
            client, seen = await live_client(proxy.url("/v1/live/sessions"), tasks)
            await eventually(lambda: client.webSocketId() is not None)
            client.sessionInstructionsAppend({"content": "Greet the caller.", "delegation_id": None})
            # nobody on the line: the bridge's keeper streams silence, so the model's timeline runs
            await eventually(lambda: any(role == "assistant" and "Acme." in text for role, text in client.transcript), timeout=10)
            first_session = client.webSocketId()
            assert proxy.drop_all() == 1
            await eventually(lambda: len(engine.live_sessions) == 2 and engine.live_sessions[1].session is not None, timeout=10)
            [start] = [e for e in engine.live_sessions[1].received if e["type"] == "session.start"]
            assert start["session"]["input"] == [{"type": "message", "role": "assistant",
                                                  "content": [{"type": "output_text", "text": "Hello there, this is Acme."}]}]
            assert start["session"]["instructions"] == "Be brief." and "temperature" not in start["session"]
            await eventually(lambda: client.webSocketId() not in (None, first_session))
            [reconnected] = [fields for name, fields in seen if name == "WebSocketReconnected"]
            assert reconnected["replayedItems"] == 1 and client.stats.reconnects == 1
            assert [name for name, _ in seen].count("AgentStartedSpeaking") >= 1
            names = [name for name, _ in seen]
            assert names.index("HTTPResponse") < names.index("ConnectorInformation") < names.index("SessionStarted")
            assert seen[0][1]["statusCode"] == 101
            for session in engine.live_sessions:
                for event in session.received:
                    validate_live(event, "client")
            client.sessionClose()
            await eventually(lambda: client.closed, timeout=5)
            await tasks.aclose()


async def test_a_two_second_hold_reaches_the_model_as_two_seconds():
    async with LocalEngine(script=Script.from_turns(["Hi."]), synthesize=tone) as engine:
        tasks = TaskOwner("call CA-live-hold")
        client, _ = await live_client(engine.live_url, tasks)
        await eventually(lambda: client.webSocketId() is not None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(25):  # 0.5 s of the caller in real time
            await client.accept_caller_audio(b"\x7e" * 160)
            await asyncio.sleep(0.02)
        await asyncio.sleep(2.0)  # on hold: the carrier sends nothing
        # back from hold: the carrier's timestamps show 2 s missing, and the gap filler prepends it
        await client.accept_caller_audio(b"\xff" * 16000 + b"\x7e" * 160)
        for _ in range(10):
            await client.accept_caller_audio(b"\x7e" * 160)
            await asyncio.sleep(0.02)
        elapsed_ms = (loop.time() - started) * 1000
        session = engine.live_sessions[-1]
        await eventually(lambda: abs(session.position_ms - client.uplink.sent_ms) < 30)
        stats = client.stats_live()
        assert abs(stats["inputMs"] - elapsed_ms) < 350, (stats, elapsed_ms)  # not elapsed + 2 s
        assert stats["silenceFilledMs"] > 1500 and stats["gapFillTrimmedMs"] > 1500
        await client.aclose()
        await tasks.aclose()


def test_endpoint_resolution():
    assert resolve_live_url("https://api.openai.com/", {}, None, "k") == "wss://api.openai.com/v1/live/sessions"
    assert resolve_live_url("http://127.0.0.1:9000/v1", {}, None, "k") == "ws://127.0.0.1:9000/v1/live/sessions"
    assert resolve_live_url(None, {"LIVE_URL": "ws://127.0.0.1:9000/x"}, "ws://127.0.0.1:1/v1/realtime", None) == "ws://127.0.0.1:9000/x"
    assert resolve_live_url(None, {}, "ws://127.0.0.1:1/v1/realtime", None) == "ws://127.0.0.1:1/v1/live/sessions"
    assert resolve_live_url(None, {}, "ws://127.0.0.1:1/v1/realtime", "k") == "wss://api.openai.com/v1/live/sessions"


async def test_pcm16_when_asked_converts_once_at_the_edge():
    async with LocalEngine(script=Script.from_turns(["Hi."]), synthesize=tone) as engine:
        tasks = TaskOwner("call CA-live-pcm")
        client = await create_live_api_client({"apiKey": "k"}, tasks=tasks, environ={"LIVE_URL": engine.live_url})
        client.sessionStart({"session": {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcm", "rate": 24000}}}})
        await eventually(lambda: client.webSocketId() is not None)
        session = engine.live_sessions[-1]
        assert session.codec == "pcm16" and client.codec == "pcm16"
        for _ in range(10):
            await client.accept_caller_audio(b"\x7e" * 160)  # μ-law 20 ms from the phone
        await eventually(lambda: session.position_ms >= 200)
        assert client.uplink.sent_ms >= 200 and session._input_bytes % 2 == 0  # PCM16 24 kHz (48 bytes a ms), whole samples
        client.sessionInstructionsAppend({"content": "Greet.", "delegation_id": None})
        await eventually(lambda: client._connection.output_ms >= 300, timeout=5)
        assert client.stats.model_audio_deltas and client.stats.model_audio_ms == client._connection.output_ms
        await client.aclose()
        await tasks.aclose()
