"""serve --reload: edited scenarios take effect for new calls; calls in progress keep theirs."""

from __future__ import annotations

import logging

import pytest

from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.integration.scripted_model import eventually
from tests.integration.twilio_peer import TwilioPeer

pytestmark = pytest.mark.timeout(30)

SCENARIO = '''
from tests.integration.probe import PROBE

VERSION = "{version}"

def on_alerting(e):
    call = e.call
    call.handleTones(True)
    call.answer()
    PROBE.record(call.id(), "alerting", VERSION)
    call.addEventListener(CallEvents.ToneReceived, lambda ev: PROBE.record(call.id(), "tone", VERSION))

VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
'''


async def call(runtime) -> TwilioPeer:
    peer = await TwilioPeer.open(f"ws://127.0.0.1:{runtime.settings.port}/media-stream")
    await peer.start({"scenario": "default"})
    return peer


async def test_reload_applies_to_new_calls_and_keeps_running_ones_and_survives_a_broken_edit(tmp_path, probe, caplog):
    scenario = tmp_path / "default.py"
    scenario.write_text(SCENARIO.format(version="v1"))
    settings = Settings(scenarios_dir=tmp_path, realtime_url="ws://127.0.0.1:9/unused", reload=True)
    async with running_bridge(settings) as runtime:
        first = await call(runtime)
        await probe.wait_for(lambda: ("alerting", "v1") in probe.events[first.call_sid])

        scenario.write_text(SCENARIO.format(version="v2"))
        await eventually(lambda: runtime.scenario_version == 2, timeout=10)
        second = await call(runtime)
        await probe.wait_for(lambda: ("alerting", "v2") in probe.events[second.call_sid])
        await first.dtmf("1")  # the call that started on v1 still runs v1
        await probe.wait_for(lambda: ("tone", "v1") in probe.events[first.call_sid])

        with caplog.at_level(logging.ERROR, logger="telephony_bridge.server"):
            scenario.write_text("def broken(:\n")
            await eventually(lambda: "reload failed" in caplog.text, timeout=10)
        assert f"{scenario}:1" in caplog.text and runtime.scenario_version == 2
        third = await call(runtime)  # still served, by the last good version
        await probe.wait_for(lambda: ("alerting", "v2") in probe.events[third.call_sid])
        for peer in (first, second, third):
            await peer.stop()
            await peer.wait_closed()
