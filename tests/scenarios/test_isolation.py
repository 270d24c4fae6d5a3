"""What the bridge guarantees any scenario, shown with throwaway scenarios: unrouted numbers are
refused, a scenario that raises harms only its own call, and whatever a scenario opened is closed
when its call ends, even if it forgot."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

ROUTES = r"""
[[route]]
pattern = '\+15550100'
scenario = "forgetful"

[[route]]
pattern = '\+15550101'
scenario = "polite"

[[route]]
pattern = '\+15550666'
scenario = "broken"
"""

# Greets, and cleans up after itself.
POLITE = """
async def on_call_alerting(e):
    e.call.answer()
    client = await OpenAI.Beta.createRealtimeAPIClient({})
    VoxEngine.sendMediaBetween(e.call, client)
    client.responseCreate({})
    e.call.addEventListener(CallEvents.Disconnected, lambda event: (client.close(), VoxEngine.terminate()))

VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
"""

# Greets, but never closes its client nor calls VoxEngine.terminate(), and leaves a timer running.
FORGETFUL = """
import asyncio

async def on_call_alerting(e):
    e.call.answer()
    client = await OpenAI.Beta.createRealtimeAPIClient({})
    VoxEngine.sendMediaBetween(e.call, client)
    client.responseCreate({})
    try:
        await asyncio.sleep(3600)  # a reminder nobody cancels
    finally:
        Logger.info("reminder timer stopped")

VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
VoxEngine.addEventListener(AppEvents.Terminated, lambda e: Logger.info("Terminated: %s", e.reason))
"""

# Opens a model connection, then raises in its CallAlerting handler.
BROKEN = """
async def on_call_alerting(e):
    e.call.answer()
    client = await OpenAI.Beta.createRealtimeAPIClient({})
    raise RuntimeError("boom on purpose")

VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
VoxEngine.addEventListener(AppEvents.Terminated, lambda e: Logger.info("Terminated: %s", e.reason))
"""


@pytest.fixture
def call_flow_scenarios(tmp_path):
    directory = tmp_path / "scenarios"
    directory.mkdir()
    for name, text in {"routes.toml": ROUTES, "forgetful.py": FORGETFUL, "polite.py": POLITE, "broken.py": BROKEN}.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


async def test_a_number_no_route_matches_is_rejected(call_flow):
    report = await call_flow.call(to="+19995550000")
    assert report.rejected and report.scenario is None and "<Reject" in report.caller.twiml
    assert call_flow.runtime.metrics.calls_rejected == 1 and call_flow.runtime.metrics.calls_started == 0


async def test_a_scenario_that_raises_ends_only_its_own_call(call_flow):
    call_flow.script(["Hello there."])
    broken, healthy = await asyncio.gather(call_flow.call(to="+15550666"), call_flow.call(to="+15550101"))
    [error] = broken.errors
    assert f"call {broken.call_sid}" in error and "boom on purpose" in error  # logged with the call id
    # Its entry point failed, so the scenario cannot serve this caller: the call ends, cleanly.
    assert broken.end_reason == "scenario error" and "call.ended" in broken.kinds
    assert any(line.message == "Terminated: scenario error" for line in broken.log)
    assert healthy.agent_lines == ["Hello there."] and not healthy.errors
    later = await call_flow.call(to="+15550101")  # the server goes on serving
    assert later.agent_lines == ["Hello there."] and not later.errors
    assert await call_flow.model_connections_closed()  # the broken call's client too
    assert not call_flow.runtime.sessions


async def test_what_a_scenario_forgot_to_close_is_closed_when_the_call_ends(call_flow):
    call_flow.script(["Hello there."])
    report = await call_flow.call(to="+15550100", hang_up_after_silence=0.5)
    assert report.model_connections == 1 and report.agent_lines == ["Hello there."]
    assert await call_flow.model_connections_closed()
    assert [line.message for line in report.log] == ["Terminated: caller hung up", "reminder timer stopped"]
    assert not call_flow.runtime.sessions and not report.errors
