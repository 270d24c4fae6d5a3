"""The local engine over a real socket on 127.0.0.1, driven by the OFFICIAL openai client (GA and beta).

Every server event received is validated against the SDK's models for the dialect (strict), and is
also parsed by the SDK connection the way an application would. Tests wait on events, never on sleeps.
"""

import asyncio
import base64
import json
import math

import pytest
import websockets
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect

from telephony_bridge.local_engine import LocalEngine, Script, ToolCall, Turn, synthesize
from telephony_bridge.local_engine.server import add_arguments, run
from tests.conformance.oracle import validate_server_event

pytestmark = pytest.mark.timeout(30)

GREETING = "Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?"
AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
TRANSCRIPT_DONE = {"ga": "response.output_audio_transcript.done", "beta": "response.audio_transcript.done"}
TOOLS = [
    {"type": "function", "name": "get_current_time", "description": "The current time.",
     "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "end_call", "description": "Hang up.",
     "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}},
]


def caller_says(text: str) -> bytes:
    """Caller speech (a distinct voice) followed by a second of silence so the VAD ends the turn."""
    return synthesize(text, 24000, "en-us+f3") + bytes(48000)


class Peer:
    """An openai SDK connection plus a strict record of everything the engine sent."""

    def __init__(self, connection, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.events: list[dict] = []

    async def until(self, predicate, timeout: float = 15.0) -> list[dict]:
        """Events received until (and including) the first that satisfies `predicate`."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.connection.recv_bytes()
                event = json.loads(raw)
                validate_server_event(event, self.dialect)
                assert self.connection.parse_event(raw).type == event["type"]  # the SDK's own parsing
                self.events.append(event)
                seen.append(event)
                if predicate(event):
                    return seen

    async def until_type(self, event_type: str, timeout: float = 15.0) -> list[dict]:
        return await self.until(lambda event: event["type"] == event_type, timeout)

    async def send_audio(self, pcm: bytes, chunk_bytes: int = 4800) -> None:
        for offset in range(0, len(pcm), chunk_bytes):
            await self.connection.input_audio_buffer.append(audio=base64.b64encode(pcm[offset:offset + chunk_bytes]).decode())

    async def configure(self, **ga_session) -> dict:
        if self.dialect == "ga":
            session = {"type": "realtime", "tools": TOOLS,
                       "audio": {"input": {"transcription": {"model": "whisper-1"}}}, **ga_session}
        else:
            session = {"tools": TOOLS, "input_audio_transcription": {"model": "whisper-1"}}
        await self.connection.session.update(session=session)
        return (await self.until_type("session.updated"))[-1]


def open_peer(engine: LocalEngine, dialect: str, api_key: str = "test"):
    client = AsyncOpenAI(api_key=api_key, websocket_base_url=engine.base_url)
    if dialect == "ga":
        return client.realtime.connect(model="gpt-realtime")
    return client.beta.realtime.connect(model="gpt-4o-realtime-preview")


@pytest.fixture(params=["ga", "beta"])
def dialect(request):
    return request.param


async def test_official_client_runs_the_receptionist_call(dialect):
    async with LocalEngine(realtime_factor=16) as engine:
        async with open_peer(engine, dialect) as connection:
            peer = Peer(connection, dialect)
            created = (await peer.until_type("session.created"))[0]["session"]
            assert ("type" in created) is (dialect == "ga")
            updated = await peer.configure()
            assert updated["session"]["tools"][0]["name"] == "get_current_time"

            # 1. greeting
            await connection.response.create()
            greeting = await peer.until_type("response.done")
            audio = b"".join(base64.b64decode(e["delta"]) for e in greeting if e["type"] == AUDIO_DELTA[dialect])
            assert 4.0 <= len(audio) / 48000 <= 8.0
            assert [e["transcript"] for e in greeting if e["type"] == TRANSCRIPT_DONE[dialect]] == [GREETING]
            assert greeting[-1]["response"]["status"] == "completed"

            # 2. the caller asks for the time: VAD, transcription from the script, a tool call
            await peer.send_audio(caller_says("What time is it?"))
            turn = await peer.until_type("response.done")
            names = [e["type"] for e in turn]
            assert names.index("input_audio_buffer.speech_started") < names.index("input_audio_buffer.speech_stopped")
            assert names.index("input_audio_buffer.committed") < names.index("response.created")
            started = next(e for e in turn if e["type"] == "input_audio_buffer.speech_started")
            stopped = next(e for e in turn if e["type"] == "input_audio_buffer.speech_stopped")
            speech_ms = len(synthesize("What time is it?", 24000, "en-us+f3")) / 48
            assert started["audio_start_ms"] <= 100 and abs(stopped["audio_end_ms"] - speech_ms) <= 150
            transcript = next(e for e in turn if e["type"] == "conversation.item.input_audio_transcription.completed")
            assert transcript["transcript"] == "What time is it?"
            call = next(e for e in turn if e["type"] == "response.function_call_arguments.done")
            assert turn[-1]["response"]["output"][-1]["name"] == "get_current_time"

            # 3. the tool answers; the script reads the answer
            await connection.conversation.item.create(item={
                "type": "function_call_output", "call_id": call["call_id"], "output": json.dumps({"time": "10:42 AM"})})
            await connection.response.create()
            answer = await peer.until_type("response.done")
            assert [e["transcript"] for e in answer if e["type"] == TRANSCRIPT_DONE[dialect]] == [
                "It's 10:42 AM. Is there anything else I can do for you?"]

            # 4. goodbye and end_call
            await peer.send_audio(caller_says("No, that's all. Bye!"))
            goodbye = await peer.until_type("response.done")
            output = goodbye[-1]["response"]["output"]
            assert [item["type"] for item in output] == ["message", "function_call"]
            assert output[1]["name"] == "end_call" and json.loads(output[1]["arguments"]) == {
                "reason": "caller said goodbye"}
    assert len(peer.events) > 100  # every one of them validated against the SDK's models


async def test_barge_in_cancels_the_response_and_truncate_follows_what_was_sent(dialect):
    async with LocalEngine(realtime_factor=1.0) as engine:  # real-time pacing: the greeting lasts ~6 s
        async with open_peer(engine, dialect) as connection:
            peer = Peer(connection, dialect)
            await peer.until_type("session.created")
            await connection.response.create()
            first = await peer.until_type(AUDIO_DELTA[dialect])
            item_id = first[-1]["item_id"]
            await peer.send_audio(caller_says("Wait, stop."))
            interrupted = await peer.until_type("response.done")
            names = [e["type"] for e in interrupted]
            assert names.index("input_audio_buffer.speech_started") < names.index("response.done")
            response = interrupted[-1]["response"]
            assert response["status"] == "cancelled"
            assert response["status_details"]["reason"] == "turn_detected"
            assert response["output"][0]["status"] == "incomplete"
            sent = b"".join(base64.b64decode(e["delta"]) for e in peer.events if e["type"] == AUDIO_DELTA[dialect])
            sent_ms = len(sent) // 48
            assert 0 < sent_ms < 5000

            await connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=sent_ms + 500)
            (error,) = [e for e in await peer.until_type("error") if e["type"] == "error"]
            assert error["error"]["message"] == f"Audio content of {sent_ms}ms is already shorter than {sent_ms + 500}ms"
            await connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=sent_ms // 2)
            truncated = (await peer.until_type("conversation.item.truncated"))[-1]
            assert truncated["audio_end_ms"] == sent_ms // 2
            await connection.conversation.item.retrieve(item_id=item_id)
            retrieved = (await peer.until_type("conversation.item.retrieved"))[-1]["item"]
            assert len(base64.b64decode(retrieved["content"][0]["audio"])) == (sent_ms // 2) * 48
            await connection.conversation.item.retrieve(item_id="item_missing")
            assert (await peer.until_type("error"))[-1]["error"]["param"] == "item_id"
            # the caller's turn still got its answer (the next scripted turn)
            if not any(e["type"] == "response.done" and e["response"]["status"] == "completed" for e in peer.events):
                await peer.until(lambda e: e["type"] == "response.done")
            answer = [e for e in peer.events if e["type"] == "response.done"][-1]["response"]
            assert answer["status"] == "completed" and answer["output"][-1]["name"] == "get_current_time"


async def test_g711_session_as_the_bridge_uses_it(dialect):
    script = Script.from_turns([Turn(say="One moment.", call=ToolCall("lookup", {"q": "x"}), then="Found {output}.")])
    async with LocalEngine(script=script, realtime_factor=math.inf) as engine:
        async with open_peer(engine, dialect) as connection:
            peer = Peer(connection, dialect)
            await peer.until_type("session.created")
            if dialect == "ga":
                await connection.session.update(session={"type": "realtime", "audio": {
                    "input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}})
            else:
                await connection.session.update(session={"input_audio_format": "g711_ulaw",
                                                         "output_audio_format": "g711_ulaw"})
            await peer.until_type("session.updated")
            await connection.response.create()
            events = await peer.until_type("response.done")
            audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == AUDIO_DELTA[dialect])
            assert 0.5 < len(audio) / 8000 < 3  # μ-law: 8000 bytes per second
            call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            await connection.conversation.item.create(item={
                "type": "function_call_output", "call_id": call["call_id"], "output": "the answer"})
            await connection.response.create()
            events = await peer.until_type("response.done")
            assert [e["transcript"] for e in events if e["type"] == TRANSCRIPT_DONE[dialect]] == ["Found the answer."]


async def test_handshake_404_401_and_any_key_accepted():
    async with LocalEngine(require_key="sk-right", realtime_factor=math.inf) as engine:
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            await ws_connect(f"ws://127.0.0.1:{engine.port}/v1/other")
        assert caught.value.response.status_code == 404
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            await ws_connect(engine.url, additional_headers={"Authorization": "Bearer sk-wrong"})
        assert caught.value.response.status_code == 401
        assert b"sk-wrong" not in caught.value.response.body
        with pytest.raises(Exception, match="401"):
            async with open_peer(engine, "ga", api_key="sk-wrong"):
                pass
        async with open_peer(engine, "ga", api_key="sk-right") as connection:
            assert (await Peer(connection, "ga").until_type("session.created"))
    async with LocalEngine(realtime_factor=math.inf) as engine:
        async with ws_connect(engine.url + "?model=anything") as ws:  # no key at all: fine
            assert json.loads(await ws.recv())["type"] == "session.created"


async def test_malformed_messages_get_errors_and_the_connection_survives():
    async with LocalEngine(script=Script.from_turns(["Still here."]), realtime_factor=math.inf,
                           max_message_bytes=64 * 1024) as engine:
        async with ws_connect(engine.url, additional_headers={"OpenAI-Beta": "realtime=v1"}) as ws:
            created = json.loads(await ws.recv())
            validate_server_event(created, "beta")
            await ws.send("{oops")
            error = json.loads(await ws.recv())
            validate_server_event(error, "beta")
            assert (error["type"], error["error"]["code"]) == ("error", "invalid_json")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 100_000}))
            assert json.loads(await ws.recv())["error"]["code"] == "message_too_large"
            await ws.send(json.dumps({"type": "no.such.event"}))
            assert json.loads(await ws.recv())["error"]["param"] == "type"
            await ws.send(json.dumps({"type": "response.create"}))
            while (event := json.loads(await ws.recv()))["type"] != "response.done":
                validate_server_event(event, "beta")
            assert event["response"]["output"][0]["content"][0]["transcript"] == "Still here."


async def test_set_script_applies_to_new_sessions_only():
    async with LocalEngine(script=Script.from_turns(["First script."]), realtime_factor=math.inf) as engine:
        async with open_peer(engine, "ga") as old_connection:
            old = Peer(old_connection, "ga")
            await old.until_type("session.created")
            engine.set_script(Script.from_turns(["Second script."]))
            async with open_peer(engine, "ga") as new_connection:
                new = Peer(new_connection, "ga")
                await new.until_type("session.created")
                await old_connection.response.create()
                await new_connection.response.create()
                said_old = [e["transcript"] for e in await old.until_type("response.done")
                            if e["type"] == TRANSCRIPT_DONE["ga"]]
                said_new = [e["transcript"] for e in await new.until_type("response.done")
                            if e["type"] == TRANSCRIPT_DONE["ga"]]
        assert (said_old, said_new) == (["First script."], ["Second script."])
        assert engine.sessions_started == 2


async def test_cli_options_and_a_bad_script(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--script", str(tmp_path / "missing.toml")])
    assert (args.host, args.port, args.realtime_factor) == ("127.0.0.1", 0, 4.0)
    assert await run(args) == 2
    assert "missing.toml" in capsys.readouterr().out
