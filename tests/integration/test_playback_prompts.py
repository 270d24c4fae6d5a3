"""call.startPlayback / stopPlayback: a WAV prompt to the caller, finished when the phone played it."""

from __future__ import annotations

import asyncio

import pytest

from telephony_bridge.audio.files import write_mono_wav
from telephony_bridge.testing.servers import running_bridge
from tests.integration.playout_peer import PlayoutPeer
from tests.integration.scripted_model import eventually
from tests.integration.twilio_peer import TwilioPeer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def prompt(tmp_path):
    path = tmp_path / "prompt.wav"
    write_mono_wav(path, b"\x00\x20" * (16000 * 3 // 4), rate=16000)  # 0.75 s at 16 kHz: converted to 8 kHz
    return path


async def start(runtime, prompt):
    twilio = await TwilioPeer.open(f"ws://127.0.0.1:{runtime.settings.port}/media-stream")
    peer = PlayoutPeer(twilio)
    task = asyncio.create_task(peer.run())
    await twilio.start({"scenario": "default", "prompt": str(prompt)})
    return twilio, peer, task


async def test_prompt_plays_and_finishes_when_the_phone_has_played_it(probe_settings, probe, prompt):
    async with running_bridge(probe_settings) as runtime:
        twilio, peer, task = await start(runtime, prompt)
        await twilio.dtmf("7")
        await probe.wait_for(lambda: "playback_finished" in probe.kinds(twilio.call_sid))
        started = [d for k, d in probe.events[twilio.call_sid] if k == "playback_started"]
        assert started == [pytest.approx(0.75)]
        assert peer.played_ms() >= 740  # finished only once the phone had played it
        assert [d for k, d in probe.events[twilio.call_sid] if k == "playback_finished"] == [False]
        await twilio.stop()
        await twilio.wait_closed()
        task.cancel()


async def test_stop_playback_clears_the_phone_and_finishes_at_once(probe_settings, probe, prompt):
    async with running_bridge(probe_settings) as runtime:
        twilio, peer, task = await start(runtime, prompt)
        await twilio.dtmf("7")
        await probe.wait_for(lambda: "playback_started" in probe.kinds(twilio.call_sid))
        await twilio.dtmf("8")
        await probe.wait_for(lambda: "playback_finished" in probe.kinds(twilio.call_sid))
        assert [d for k, d in probe.events[twilio.call_sid] if k == "playback_finished"] == [True]
        await eventually(lambda: peer.played_at_clear)  # the phone got a clear
        assert peer.played_ms() < 740
        await twilio.stop()
        await twilio.wait_closed()
        task.cancel()

