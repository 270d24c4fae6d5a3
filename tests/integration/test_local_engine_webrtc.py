"""The local engine over WebRTC on 127.0.0.1: SDP offer over HTTP (GA `/v1/realtime/calls`, Live
`/v1/live/sessions`), events on the `oai-events` data channel, audio on Opus tracks, driven by a
bare aiortc peer (tests/integration/webrtc_peer.py). The engine's session logic is the
WebSocket one; what these check is the transport: the answer, the audio both ways, OpenAI's
`output_audio_buffer.*` events, and refusals of bad offers."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from telephony_bridge.local_engine import LocalEngine, Script, synthesize
from telephony_bridge.local_engine.webrtc_endpoint import WebRTCEndpoint
from tests.conformance.oracle import validate_server_event
from tests.integration.webrtc_peer import EnginePeer

pytestmark = pytest.mark.timeout(60)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(float)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


@pytest.fixture
async def engine():
    async with LocalEngine(
        script=Script.from_turns(["Hello from the engine."]), webrtc=True, realtime_factor=math.inf
    ) as engine:
        yield engine


async def test_a_realtime_call_gets_an_sdp_answer_events_on_the_data_channel_and_audio_on_the_track(engine):
    peer = EnginePeer()
    try:
        response = await peer.connect(engine.webrtc_url + "?model=gpt-realtime-2.1")
        assert response.status_code == 201
        assert response.headers["content-type"].startswith("application/sdp")
        assert response.headers["location"].startswith("/v1/realtime/calls/rtc_")
        created = await peer.event("session.created")
        assert created["session"]["model"] == "gpt-realtime-2.1"
        peer.send({"type": "response.create"})
        await peer.event("output_audio_buffer.stopped")
        kinds = peer.types()
        # Audio went on the track, not the data channel; the buffer events frame it.
        assert "response.output_audio.delta" not in kinds
        assert kinds.index("output_audio_buffer.started") < kinds.index("output_audio_buffer.stopped")
        assert "response.done" in kinds
        for event in peer.events:
            if not event["type"].startswith("output_audio_buffer."):
                validate_server_event(event, "ga")
        # About as long as the line (espeak: ~1.3 s), heard as speech, not silence.
        await peer.wait_for(lambda: len(peer.heard) > 24000 * 2 * 0.8)
        assert rms(bytes(peer.heard)) > 300
    finally:
        await peer.close()


async def test_the_engine_hears_the_caller_over_the_track(engine):
    peer = EnginePeer()
    try:
        await peer.connect(engine.webrtc_url)
        await peer.event("session.created")
        peer.mic.write(bytes(24000) + synthesize("Hello, can you hear me?", 24000, "en-us+f3") + bytes(48000))
        started = await peer.event("input_audio_buffer.speech_started")
        stopped = await peer.event("input_audio_buffer.speech_stopped")
        # The track carried silence before the words: the VAD found them after it (less its
        # 300 ms prefix padding), and a turn as long as the words (~1.4 s).
        assert started["audio_start_ms"] >= 150
        assert stopped["audio_end_ms"] > started["audio_start_ms"] + 800
    finally:
        await peer.close()


async def test_multipart_offer_with_a_session_configures_the_session(engine):
    peer = EnginePeer()
    try:
        offer = await peer.offer()
        session = {"type": "realtime", "model": "gpt-realtime-2.1", "instructions": "Be brief."}
        response = await peer.connect(
            engine.webrtc_url, files={"sdp": (None, offer), "session": (None, __import__("json").dumps(session))}
        )
        assert response.status_code == 201, response.text
        updated = await peer.event("session.updated")
        assert updated["session"]["instructions"] == "Be brief."
    finally:
        await peer.close()


async def test_a_live_session_over_webrtc_starts_from_the_posted_config(engine):
    peer = EnginePeer()
    try:
        offer = await peer.offer()
        body = {"session": {"model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": offer}}
        response = await peer.connect(engine.webrtc_live_url, json=body)
        assert response.status_code == 201, response.text
        assert response.json()["session"]["id"].startswith("live_")
        started = await peer.event("session.started")
        assert started["session"]["model"] == "gpt-live-1"
        # Asked to greet, the agent speaks; its audio (paced by the caller's input, which the
        # microphone track sends as silence) reaches the track.
        peer.send({"type": "session.instructions.append", "content": "Greet the caller.", "delegation_id": None})
        await peer.event("session.output_transcript.delta")
        await peer.wait_for(lambda: rms(bytes(peer.heard[-24000:])) > 300 if len(peer.heard) > 48000 else False)
    finally:
        await peer.close()


@pytest.mark.parametrize(
    "request_args, status, code",
    [
        ({"content": "not sdp", "headers": {"Content-Type": "application/sdp"}}, 400, "invalid_offer"),
        ({"content": "v=0\r\nbroken", "headers": {"Content-Type": "application/sdp"}}, 400, "invalid_offer"),
        ({"content": "{}", "headers": {"Content-Type": "application/json"}}, 415, "unsupported_media_type"),
        ({"content": "v=0" + "x" * 70000, "headers": {"Content-Type": "application/sdp"}}, 413, "request_too_large"),
        ({"files": {"session": (None, "{}")}}, 400, "missing_required_parameter"),
    ],
)
async def test_bad_offers_are_refused_with_an_api_shaped_error_and_the_engine_goes_on(
    engine, request_args, status, code
):
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(engine.webrtc_url, **request_args)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    peer = EnginePeer()
    try:
        assert (await peer.connect(engine.webrtc_url)).status_code == 201  # the next call is served
        await peer.event("session.created")
    finally:
        await peer.close()


async def test_a_required_key_is_checked_and_never_echoed():
    async with LocalEngine(webrtc=True, require_key="sk-right") as engine:
        peer = EnginePeer()
        try:
            response = await peer.connect(engine.webrtc_url, key="sk-wrong-secret")
            assert response.status_code == 401
            assert "sk-wrong-secret" not in response.text and "sk-right" not in response.text
        finally:
            await peer.close()


async def test_an_event_sent_the_moment_the_channel_opens_is_not_lost(engine, monkeypatch):
    # The engine's session task starting late (a loaded machine) must not lose what the client
    # sends as soon as the channel is open: the channel has a listener from its first moment.
    run = WebRTCEndpoint._run

    async def late_run(self, *args):
        await asyncio.sleep(0.3)
        await run(self, *args)

    monkeypatch.setattr(WebRTCEndpoint, "_run", late_run)
    peer = EnginePeer()
    update = {"type": "session.update", "session": {"type": "realtime", "instructions": "First thing said."}}
    peer.channel.on("open", lambda: peer.send(update))  # before the engine's session could be running
    try:
        await peer.connect(engine.webrtc_url)
        updated = await peer.event("session.updated")
        assert updated["session"]["instructions"] == "First thing said."
    finally:
        await peer.close()


async def test_back_to_back_answers_take_turns_on_the_track_one_stopped_before_the_next_started():
    script = Script.from_turns(["The first answer, said in full.", "Then the second one."])
    async with LocalEngine(script=script, webrtc=True, realtime_factor=math.inf) as engine:
        peer = EnginePeer()
        try:
            await peer.connect(engine.webrtc_url)
            await peer.event("session.created")
            peer.send({"type": "response.create"})
            await peer.event("response.done")  # all its audio is queued on the track by now
            peer.send({"type": "response.create"})
            await peer.wait_for(lambda: peer.types().count("output_audio_buffer.stopped") == 2)
            buffer = [(e["type"].rsplit(".", 1)[1], e["response_id"]) for e in peer.events if e["type"].startswith("output_audio_buffer.")]
            first, second = [e["response"]["id"] for e in peer.events if e["type"] == "response.created"]
            assert buffer == [("started", first), ("stopped", first), ("started", second), ("stopped", second)]
        finally:
            await peer.close()


async def test_the_engine_command_takes_webrtc_offers_with_its_flag():
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telephony_bridge.local_engine", "--port", "0", "--webrtc", "--realtime-factor", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    peer = EnginePeer()
    try:
        url = None
        async with asyncio.timeout(30):
            while url is None:
                line = (await proc.stdout.readline()).decode()
                assert line, "the engine exited before printing its WebRTC URL"
                if "REALTIME_WEBRTC_URL=" in line:
                    url = line.split("REALTIME_WEBRTC_URL=", 1)[1].strip()
        assert (await peer.connect(url)).status_code == 201
        await peer.event("session.created")
    finally:
        await peer.close()
        proc.terminate()
        await proc.wait()
