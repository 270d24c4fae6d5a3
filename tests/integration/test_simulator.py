"""The phone simulator against a small fake bridge defined here (Starlette + uvicorn on 127.0.0.1).

The fake bridge speaks Twilio's JSON by hand, checks signatures with twilio's RequestValidator,
records every message with the event loop's clock and plays scripted behaviours per called number.
Timing asserts are generous: they check the order of magnitude (a mark after its audio played,
frames paced rather than bursted), not wall-clock precision. Synchronisation is by futures with
timeouts, never by sleeping.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio.request_validator import RequestValidator

from telephony_bridge.audio.g711 import ulaw_decode, ulaw_encode
from telephony_bridge.testing import call_cli
from telephony_bridge.testing.simulator import connect_url_for, place_call

pytestmark = pytest.mark.timeout(30)

PUBLIC_STREAM_URL = "wss://bridge.example.com/media-stream"  # what a deployed bridge would answer
REJECTED_NUMBER = "+15550666"
AGENT = 0x2A  # a μ-law byte that is not silence: the fake agent's "voice"
WAIT = 5.0  # timeout for any single wait on the bridge side


def agent_ms(n: int) -> bytes:
    return bytes([AGENT]) * (n * 8)


def tone_pcm16(seconds: float, hz: float = 440.0) -> bytes:
    t = np.arange(round(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


class FakeStream:
    """One media WebSocket as the bridge sees it."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.loop = asyncio.get_running_loop()
        self.messages: list[tuple[float, dict[str, Any]]] = []  # (loop time, message) in arrival order
        self.headers = dict(ws.headers)
        self.started: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self.echoes: dict[str, asyncio.Future[float]] = {}
        self.frame_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.frames = 0
        self.stream_sid = ""
        self.notes: dict[str, float] = {}  # what the behaviour measured

    @property
    def start(self) -> dict[str, Any]:
        return self.started.result()

    def of(self, event: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if m.get("event") == event]

    async def read(self) -> None:
        try:
            while True:
                msg = json.loads(await self.ws.receive_text())
                self.messages.append((self.loop.time(), msg))
                event = msg["event"]
                if event == "start":
                    self.stream_sid = msg["streamSid"]
                    self.started.set_result(msg)
                elif event == "mark":
                    self._echo(msg["mark"]["name"]).set_result(self.loop.time())
                elif event == "media":
                    self.frames += 1
                    for n, fut in self.frame_waiters:
                        if self.frames >= n and not fut.done():
                            fut.set_result(None)
        except WebSocketDisconnect:
            pass

    def _echo(self, name: str) -> asyncio.Future[float]:
        return self.echoes.setdefault(name, self.loop.create_future())

    async def echo_of(self, name: str) -> float:
        """Loop time at which the simulator echoed ``name``."""
        return await asyncio.wait_for(asyncio.shield(self._echo(name)), WAIT)

    async def frames_reached(self, n: int) -> None:
        fut = self.loop.create_future()
        self.frame_waiters.append((n, fut))
        if self.frames >= n:
            fut.set_result(None)
        await asyncio.wait_for(fut, WAIT)

    async def send(self, message: dict[str, Any]) -> float:
        await self.ws.send_text(json.dumps(message))
        return self.loop.time()

    async def media(self, ulaw: bytes) -> float:
        payload = base64.b64encode(ulaw).decode()
        return await self.send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    async def mark(self, name: str) -> float:
        return await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def clear(self) -> float:
        return await self.send({"event": "clear", "streamSid": self.stream_sid})


Behaviour = Callable[[FakeStream], Awaitable[None]]


@dataclass
class FakeBridge:
    token: str | None = None
    behaviours: dict[str, Behaviour] = field(default_factory=dict)  # by called number
    webhooks: list[dict[str, str]] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    base_url: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/incoming-call", self.incoming_call, methods=["POST"]),
                WebSocketRoute("/media-stream", self.media_stream),
            ]
        )

    async def incoming_call(self, request: Request) -> Response:
        params = {k: str(v) for k, v in (await request.form()).items()}
        if self.token is not None:
            signature = request.headers.get("x-twilio-signature", "")
            if not RequestValidator(self.token).validate(str(request.url), params, signature):
                return Response("bad signature", status_code=403)
        self.webhooks.append(params)
        if params["To"] == REJECTED_NUMBER:
            twiml = "<Response><Reject/></Response>"
        else:
            twiml = (
                f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{PUBLIC_STREAM_URL}">'
                f'<Parameter name="to" value="{params["To"]}"/><Parameter name="scenario" value="support"/>'
                "</Stream></Connect></Response>"
            )
        return Response(twiml, media_type="text/xml")

    async def media_stream(self, ws: WebSocket) -> None:
        await ws.accept()
        if self.token is not None:
            signature = ws.headers.get("x-twilio-signature", "")
            if not RequestValidator(self.token).validate(PUBLIC_STREAM_URL, {}, signature):
                await ws.close(code=1008, reason="bad signature")
                return
        stream = FakeStream(ws)
        self.streams.append(stream)
        reader = asyncio.create_task(stream.read())
        behaviour_task = None
        try:
            await asyncio.wait_for(asyncio.shield(stream.started), WAIT)
            behaviour = self.behaviours.get(stream.start["start"]["customParameters"]["to"])
            if behaviour is not None:
                behaviour_task = asyncio.create_task(behaviour(stream))
                await asyncio.wait({reader, behaviour_task}, return_when=asyncio.FIRST_COMPLETED)
                if behaviour_task.done() and behaviour_task.exception() is not None:
                    self.failures.append(behaviour_task.exception())
            await reader
        except BaseException as e:
            self.failures.append(e)
            raise
        finally:
            for task in (reader, behaviour_task):
                if task is not None:
                    task.cancel()


@pytest.fixture
async def start_bridge():
    servers = []

    async def start(token: str | None = None) -> FakeBridge:
        bridge = FakeBridge(token=token)
        # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and
        # with Nagle on, back-to-back messages from the bridge would wait ~40 ms for delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # connections wait in the backlog until uvicorn accepts: no start-up race
        bridge.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            bridge.app(), log_level="warning", lifespan="off", ws="websockets-sansio", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        servers.append((server, asyncio.create_task(server.serve(sockets=[sock])), bridge))
        return bridge

    yield start
    for server, task, bridge in servers:
        server.should_exit = True
        await asyncio.wait_for(task, 5)
        assert not bridge.failures, bridge.failures


def sequence_numbers(stream: FakeStream) -> list[int]:
    return [int(m["sequenceNumber"]) for _, m in stream.messages if "sequenceNumber" in m]


# -- behaviours --------------------------------------------------------------------------------------


async def play_400ms_with_two_marks(stream: FakeStream) -> None:
    sent_at = await stream.media(agent_ms(100))
    await stream.media(agent_ms(100))
    await stream.mark("m1")  # after 200 ms of audio
    await stream.media(agent_ms(100))
    await stream.media(agent_ms(100))
    await stream.mark("m2")  # after 400 ms
    stream.notes = {"sent_at": sent_at}
    await stream.echo_of("m2")


async def play_2s_then_clear_after_first_mark(stream: FakeStream) -> None:
    sent_at = None
    for i in range(1, 5):  # 2 s in four 500 ms pieces, each followed by a mark
        t = await stream.media(agent_ms(500))
        sent_at = sent_at or t
        await stream.mark(f"c{i}")
    await stream.echo_of("c1")
    cleared_at = await stream.clear()
    stream.notes = {"sent_at": sent_at, "cleared_at": cleared_at}
    await stream.echo_of("c4")
    after_at = await stream.media(agent_ms(100))  # audio after a clear plays from its arrival
    await stream.mark("after")
    stream.notes["after_at"] = after_at
    await stream.echo_of("after")


async def hang_up_after_ten_frames(stream: FakeStream) -> None:
    await stream.frames_reached(10)
    await stream.ws.close(code=1000, reason="goodbye")


async def send_garbage(stream: FakeStream) -> None:
    await stream.send({"event": "media", "streamSid": "MZwrong", "media": {"payload": "//8="}})
    await stream.send({"event": "media", "streamSid": stream.stream_sid, "media": {"payload": "not base64!"}})
    await stream.send({"event": "playAudio", "streamSid": stream.stream_sid})
    await stream.ws.send_bytes(b"\x00\x01")
    await stream.mark("still-works")


# -- tests ---------------------------------------------------------------------------------------------


async def test_call_streams_caller_audio_like_twilio_and_echoes_marks_after_their_audio(start_bridge):
    bridge = await start_bridge()
    bridge.behaviours["+15550101"] = play_400ms_with_two_marks
    caller = tone_pcm16(0.5)
    result = await place_call(bridge.base_url, to="+15550101", caller_audio=caller, duration_s=1.2)

    assert result.error is None and not result.rejected and result.protocol_errors == []
    assert result.warnings == []  # wss:// in the TwiML
    assert result.connected_url == bridge.base_url.replace("http://", "ws://") + "/media-stream"
    hook = bridge.webhooks[0]
    assert hook["CallSid"] == result.call_sid and hook["AccountSid"] == result.account_sid
    assert (hook["To"], hook["From"], hook["CallStatus"], hook["Direction"], hook["ApiVersion"]) == (
        "+15550101", "+15550199", "ringing", "inbound", "2010-04-01")
    assert result.call_sid.startswith("CA") and len(result.call_sid) == 34

    stream = bridge.streams[0]
    first = stream.messages[0][1]
    assert first == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = stream.start
    assert start["sequenceNumber"] == "1" and start["streamSid"] == result.stream_sid
    assert start["start"] == {
        "accountSid": result.account_sid,
        "streamSid": result.stream_sid,
        "callSid": result.call_sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"to": "+15550101", "scenario": "support"},
    }
    assert result.custom_parameters == {"to": "+15550101", "scenario": "support"}
    assert sequence_numbers(stream) == list(range(1, len(stream.messages)))  # everything but `connected`
    assert all(isinstance(m["sequenceNumber"], str) for _, m in stream.messages[1:])

    # 1.2 s of stream = 60 frames of 20 ms, chunk from 1 and timestamp in ms, as strings.
    media = stream.of("media")
    assert len(media) == result.frames_sent == 60
    assert [m["media"]["chunk"] for _, m in media] == [str(i) for i in range(1, 61)]
    assert [m["media"]["timestamp"] for _, m in media] == [str(20 * i) for i in range(60)]
    assert all(m["media"]["track"] == "inbound" and m["streamSid"] == result.stream_sid for _, m in media)
    sent = b"".join(base64.b64decode(m["media"]["payload"]) for _, m in media)
    assert sent == ulaw_encode(caller).ljust(60 * 160, b"\xff") == result.caller_ulaw
    # Paced in real time, not bursted: 59 frame intervals span about 1.18 s.
    span = media[-1][0] - media[0][0]
    assert 0.9 < span < 1.6, span
    assert sum(t - media[0][0] < 0.5 for t, _ in media) in range(20, 30)

    # Marks come back once their audio has played: 200 and 400 ms after the audio was sent.
    sent_at = stream.notes["sent_at"]
    m1, m2 = await stream.echo_of("m1"), await stream.echo_of("m2")
    assert 0.195 <= m1 - sent_at < 0.35, m1 - sent_at
    assert 0.395 <= m2 - sent_at < 0.55, m2 - sent_at
    assert [(e.name, e.flushed) for e in result.marks_echoed] == [("m1", False), ("m2", False)]
    playing_from_ms = result.heard_ulaw.index(AGENT) / 8
    for echo, played in zip(result.marks_echoed, (200, 400), strict=False):
        assert played <= echo.echoed_ms - playing_from_ms <= played + 20  # echoed once its audio played
    mark_echoes = stream.of("mark")
    assert [m["mark"]["name"] for _, m in mark_echoes] == ["m1", "m2"]
    assert all(m["streamSid"] == result.stream_sid for _, m in mark_echoes)

    # The caller heard 400 ms of the agent and silence around it; the call lasted 1.2 s.
    assert result.playout.played_ms == 400 and result.playout.clears == 0
    assert result.stream_duration_ms >= 1200
    assert len(result.heard_ulaw) == round(result.stream_duration_ms * 8)
    assert result.heard_ulaw.count(AGENT) == 400 * 8
    begin = result.heard_ulaw.index(AGENT)
    assert result.heard_ulaw[begin : begin + 3200] == agent_ms(400)
    assert len(result.heard_pcm16) == 2 * len(result.heard_ulaw)

    stop = stream.of("stop")[0][1]
    assert stop["stop"] == {"accountSid": result.account_sid, "callSid": result.call_sid}
    assert stream.messages[-1][1]["event"] == "stop"
    assert (result.closed_by, result.close_code) == ("caller", 1000)

    kinds = [e.kind for e in result.timeline]
    expected = "webhook twiml connect connected start caller_audio media mark mark_echo stop close hangup"
    assert set(expected.split()) <= set(kinds)
    assert [e.t_ms for e in result.timeline] == sorted(e.t_ms for e in result.timeline)
    assert result.timeline[0].kind == "webhook" and result.timeline[0].t_ms < 0
    assert sum(e.kind == "media" for e in result.timeline) == 2  # one burst: first and last message


async def test_clear_flushes_pending_marks_at_once_and_cuts_the_heard_audio(start_bridge, tmp_path):
    bridge = await start_bridge()
    bridge.behaviours["+15550102"] = play_2s_then_clear_after_first_mark
    caller = tone_pcm16(0.4)
    result = await place_call(bridge.base_url, to="+15550102", caller_audio=caller, duration_s=1.5)
    assert result.error is None and result.protocol_errors == []

    stream = bridge.streams[0]
    notes = stream.notes
    c1 = await stream.echo_of("c1")
    assert 0.495 <= c1 - notes["sent_at"] < 0.65
    flushed_at = [await stream.echo_of(f"c{i}") for i in (2, 3, 4)]
    assert all(t - notes["cleared_at"] < 0.1 for t in flushed_at)  # at once, not when c2 would play (+0.5 s)
    assert [(e.name, e.flushed) for e in result.marks_echoed] == [
        ("c1", False), ("c2", True), ("c3", True), ("c4", True), ("after", False)]
    flushed = result.marks_echoed[1:4]
    assert {e.echoed_ms for e in flushed} == {result.clears[0].at_ms}

    (clear,) = result.clears
    assert clear.flushed_marks == ("c2", "c3", "c4")
    assert 1350 <= clear.dropped_ms <= 1505
    assert result.playout.cleared_ms == clear.dropped_ms and result.playout.clears == 1
    assert result.playout.played_ms == pytest.approx(2000 - clear.dropped_ms + 100)

    # Heard: the agent from the first media until the clear, then silence, then the 100 ms after it.
    heard = result.heard_ulaw
    begin = heard.index(AGENT)
    cut = round(clear.at_ms * 8)
    assert heard[begin:cut] == bytes([AGENT]) * (cut - begin)
    assert heard[cut:].count(AGENT) == 100 * 8  # after the cut, only the audio sent after the clear
    assert heard.count(AGENT) == round((2000 - clear.dropped_ms + 100) * 8)
    echo_after = result.marks_echoed[-1]
    assert echo_after.echoed_ms - echo_after.received_ms == pytest.approx(100, abs=5)

    # WAV outputs: mono heard audio and stereo caller/agent, both as long as the stream.
    heard_path, stereo_path = tmp_path / "heard.wav", tmp_path / "stereo.wav"
    result.write_heard_wav(heard_path)
    result.write_stereo_wav(stereo_path)
    with wave.open(str(heard_path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() == len(heard) == round(result.stream_duration_ms * 8)
        assert w.readframes(w.getnframes()) == ulaw_decode(heard)
    with wave.open(str(stereo_path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        assert w.getnframes() == max(len(heard), len(result.caller_ulaw))
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert frames[: len(result.caller_ulaw), 0].tobytes() == result.caller_pcm16
    assert frames[: len(heard), 1].tobytes() == result.heard_pcm16
    assert result.caller_pcm16[: len(caller)] == ulaw_decode(ulaw_encode(caller))


async def test_dtmf_goes_out_at_its_time_between_the_right_frames(start_bridge):
    bridge = await start_bridge()
    result = await place_call(bridge.base_url, to="+15550103", digits=[(0.55, "#"), (0.3, "5")], duration_s=0.8)
    stream = bridge.streams[0]
    events = [m for _, m in stream.messages[2:]]  # after connected and start
    dtmf = [m for m in events if m["event"] == "dtmf"]
    assert [m["dtmf"] for m in dtmf] == [{"track": "inbound_track", "digit": d} for d in "5#"]
    assert all(m["streamSid"] == result.stream_sid for m in dtmf)
    for digit, before, after in (("5", "280", "300"), ("#", "540", "560")):
        i = next(i for i, m in enumerate(events) if m.get("dtmf", {}).get("digit") == digit)
        assert events[i - 1]["media"]["timestamp"] == before and events[i + 1]["media"]["timestamp"] == after
    start_rx = stream.of("start")[0][0]
    arrivals = [t - start_rx for t, _ in stream.of("dtmf")]
    assert 0.25 < arrivals[0] < 0.45 and 0.5 < arrivals[1] < 0.7, arrivals
    assert [d for _, d in result.digits_sent] == ["5", "#"]
    assert result.digits_sent[0][0] == pytest.approx(300, abs=50)
    assert result.digits_sent[1][0] == pytest.approx(550, abs=50)
    assert result.frames_sent == 40 and stream.frames == 40
    assert sequence_numbers(stream) == list(range(1, len(stream.messages)))
    assert [e.detail.split()[1] for e in result.timeline if e.kind == "dtmf"] == ["5", "#"]


async def test_server_closing_the_websocket_ends_the_call(start_bridge):
    bridge = await start_bridge()
    bridge.behaviours["+15550104"] = hang_up_after_ten_frames
    result = await place_call(bridge.base_url, to="+15550104", duration_s=10)
    assert (result.closed_by, result.close_code, result.close_reason) == ("server", 1000, "goodbye")
    assert 10 <= result.frames_sent <= 15
    assert result.stream_duration_ms < 1000
    assert bridge.streams[0].of("stop") == []  # the caller did not hang up: Twilio sends no stop
    assert result.timeline[-1].kind == "close"


async def test_hangup_after_silence_waits_for_the_agent_to_finish(start_bridge):
    bridge = await start_bridge()
    bridge.behaviours["+15550105"] = play_400ms_with_two_marks
    result = await place_call(bridge.base_url, to="+15550105", caller_audio=tone_pcm16(0.2), hangup_after_silence_s=0.3)
    assert result.closed_by == "caller"
    # The agent's 400 ms end at ~400 ms; 300 ms of silence later the caller hangs up.
    assert 650 <= result.stream_duration_ms < 900, result.stream_duration_ms
    assert any(e.kind == "hangup" and "nothing played" in e.detail for e in result.timeline)


async def test_signed_requests_pass_the_bridges_validator_and_a_wrong_token_is_refused(start_bridge):
    bridge = await start_bridge(token="s3cret-token")
    good = await place_call(bridge.base_url, to="+15550106", auth_token="s3cret-token", duration_s=0.1)
    assert good.error is None and good.connected and good.close_code == 1000
    expected = RequestValidator("s3cret-token").compute_signature(PUBLIC_STREAM_URL, {})
    assert bridge.streams[0].headers["x-twilio-signature"] == expected

    wrong = await place_call(bridge.base_url, to="+15550106", auth_token="wrong", duration_s=0.1)
    unsigned = await place_call(bridge.base_url, to="+15550106", duration_s=0.1)
    for result in (wrong, unsigned):
        assert result.rejected and not result.connected
        assert result.webhook_status == 403
        assert result.error.startswith(f"HTTP 403 from {bridge.base_url}/incoming-call: the bridge refused the signature")
    assert len(bridge.streams) == 1


async def test_rejected_call_never_opens_a_stream(start_bridge):
    bridge = await start_bridge()
    events = []
    result = await place_call(bridge.base_url, to=REJECTED_NUMBER, on_event=events.append)
    assert result.rejected and result.error is None and not result.connected
    assert "<Reject/>" in result.twiml
    assert bridge.streams == [] and result.heard_ulaw == b""
    assert [e.kind for e in events] == ["webhook", "twiml"] and events == result.timeline
    assert "Reject" in events[1].detail


async def test_bridge_protocol_mistakes_are_reported_and_the_call_goes_on(start_bridge):
    bridge = await start_bridge()
    bridge.behaviours["+15550107"] = send_garbage
    result = await place_call(bridge.base_url, to="+15550107", duration_s=0.3)
    errors = result.protocol_errors
    assert len(errors) == 4, errors
    assert "streamSid 'MZwrong'" in errors[0]
    assert "not base64" in errors[1]
    assert "unknown event 'playAudio'" in errors[2]
    assert "binary frame" in errors[3]
    assert [e.name for e in result.marks_echoed] == ["still-works"]
    assert result.media_received == 0 and result.close_code == 1000


async def test_cli_runs_a_call_from_a_wav_file_and_writes_the_outputs(start_bridge, tmp_path, capsys):
    bridge = await start_bridge()
    bridge.behaviours["+15550108"] = play_400ms_with_two_marks
    # 0.3 s of 44.1 kHz stereo: converted to 8 kHz mono on the way in.
    t = np.arange(round(0.3 * 44100)) / 44100
    samples = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")
    audio = tmp_path / "caller.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(44100)
        w.writeframes(np.repeat(samples, 2).tobytes())
    parser = argparse.ArgumentParser()
    call_cli.add_arguments(parser)
    paths = {name: tmp_path / name for name in ("heard.wav", "stereo.wav", "timeline.json")}
    args = parser.parse_args([
        "--url", bridge.base_url, "--to", "+15550108", "--audio", str(audio), "--digits", "0.1:7",
        "--duration", "0.6", "--auth-token", "", "--heard-wav", str(paths["heard.wav"]),
        "--stereo-wav", str(paths["stereo.wav"]), "--timeline-json", str(paths["timeline.json"]), "--show-marks",
    ])
    assert await call_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "mark_echo" in out and "caller heard 400 ms" in out and "dtmf" in out
    assert sum(line.split()[1:2] == ["media"] for line in out.splitlines()) == 2  # one burst, summarised
    assert "400 ms of audio, 2 marks" in out
    stream = bridge.streams[0]
    assert stream.frames == 30
    sent = b"".join(base64.b64decode(m["media"]["payload"]) for _, m in stream.of("media"))
    assert b"\xff" * 160 not in sent[:2400] and sent[2400:] == b"\xff" * 2400  # 0.3 s of voice, then silence
    with wave.open(str(paths["heard.wav"])) as w:
        assert w.getnchannels() == 1 and w.getnframes() >= 0.6 * 8000
    with wave.open(str(paths["stereo.wav"])) as w:
        assert w.getnchannels() == 2 and w.getnframes() >= 0.6 * 8000
    timeline = json.loads(paths["timeline.json"].read_text())
    assert {"t_ms", "kind", "detail"} <= set(timeline[0]) and timeline[-1]["kind"] == "close"

    assert parser.parse_args(["--digits", "5.0:1,7.5:#"]).digits == [(5.0, "1"), (7.5, "#")]
    with pytest.raises(SystemExit):
        parser.parse_args(["--digits", "5.0:x"])


def test_stream_url_is_mapped_to_the_local_bridge_when_the_public_host_differs():
    public = "wss://bridge.example.com/media-stream"
    assert connect_url_for(public, "http://127.0.0.1:8080") == "ws://127.0.0.1:8080/media-stream"
    prefixed = public.replace(".com/", ".com/p/")
    assert connect_url_for(prefixed, "https://gw.local:8443") == "wss://gw.local:8443/p/media-stream"
    local = "ws://127.0.0.1:8080/media-stream"  # same host: used as it is
    assert connect_url_for(local, "http://127.0.0.1:8080/") == local


async def test_nothing_listening_or_a_wrong_path_is_said_plainly_not_called_a_rejection(start_bridge):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{unused.getsockname()[1]}"
    refused = await place_call(nobody, duration_s=0.1)
    assert refused.error.startswith(f"no bridge answered at {nobody} (connection refused")
    bridge = await start_bridge()
    wrong_path = await place_call(bridge.base_url + "/nope", duration_s=0.1)
    assert wrong_path.error.startswith(f"HTTP 404 from {bridge.base_url}/nope/incoming-call")
    for result in (refused, wrong_path):
        assert "rejected by the bridge's TwiML" not in result.summary()


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    call_cli.add_arguments(parser)
    return parser.parse_args(["--auth-token", "", "--calls-dir", "", *argv])


async def test_cli_by_default_hangs_up_once_the_agent_has_finished_and_shows_the_conversation(start_bridge, capsys):
    bridge = await start_bridge()
    bridge.behaviours["+15550109"] = play_2s_then_clear_after_first_mark
    assert await call_cli.run(cli_args("--url", bridge.base_url, "--to", "+15550109", "--hangup-after-silence", "0.5")) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # The whole conversation, no per-mark noise: one line for the clear that flushed three marks.
    assert [line.split()[1] for line in lines if line.split()[1:2] == ["clear"]] == ["clear"]
    assert "flushing 3 mark(s)" in out and "mark_echo" not in out
    agent = [line for line in lines if line.split()[1:2] == ["agent"]]
    assert len(agent) == 2 and "[interrupted: 1.5 s not heard]" in agent[0] and "speaks for 0.1 s" in agent[1]
    assert any("hangup" in line and "nothing played to the caller for 500 ms" in line for line in lines)
    assert "closed by caller" in out
