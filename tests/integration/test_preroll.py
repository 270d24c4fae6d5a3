"""A scenario that connects the caller late still gives the model the caller's first word."""

from __future__ import annotations

import base64

import pytest

from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.integration.scripted_model import ScriptedModel
from tests.integration.twilio_peer import TwilioPeer

pytestmark = pytest.mark.timeout(60)

# Connects the caller to its model only when the caller presses a key: everything the caller said
# before is audio that arrived before sendMediaBetween. μ-law to the model, so the frames can be
# recognised byte for byte in the model's input.
LATE_SCENARIO = '''
async def on_alerting(e):
    call = e.call
    client = []
    call.handleTones(True)
    call.addEventListener(CallEvents.ToneReceived, lambda ev: VoxEngine.sendMediaBetween(call, client[0]))
    call.addEventListener(CallEvents.Disconnected, lambda ev: VoxEngine.terminate())
    call.answer()
    client.append(await OpenAI.Beta.createRealtimeAPIClient({"codec": "g711_ulaw"}))


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
'''


def frame(n: int) -> bytes:
    return bytes([n]) * 160


def appended(model: ScriptedModel) -> bytes:
    return b"".join(base64.b64decode(e["audio"]) for e in model.of_type("input_audio_buffer.append"))


@pytest.mark.parametrize("preroll_ms", [1000, 0])
async def test_caller_audio_before_send_media_reaches_the_model_first(tmp_path, preroll_ms):
    (tmp_path / "default.py").write_text(LATE_SCENARIO)
    async with ScriptedModel() as model:
        settings = Settings(scenarios_dir=tmp_path, realtime_url=model.url, preroll_ms=preroll_ms)
        async with running_bridge(settings) as runtime:
            peer = await TwilioPeer.open(f"ws://127.0.0.1:{runtime.settings.port}/media-stream")
            await peer.start({"scenario": "default"})
            await model.wait_for(lambda: model.of_type("session.update"))  # the scenario holds its client
            for n in range(1, 11):  # the caller's first 200 ms: nobody takes them yet
                await peer.media(frame(n))
            await peer.dtmf("1")  # now the scenario connects the media
            for n in range(11, 16):
                await peer.media(frame(n))
            kept = range(1, 16) if preroll_ms else range(11, 16)
            expected = b"".join(frame(n) for n in kept)
            await model.wait_for(lambda: len(appended(model)) >= len(expected) and appended(model).endswith(frame(15)))
            assert appended(model) == expected
            await peer.stop()
            await peer.wait_closed()
