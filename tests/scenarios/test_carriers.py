"""The receptionist's main flow (greeting, barge-in, the time) over every carrier that has a
simulator profile: the same scenario, the same report, whatever carries the call. Profiles other
engineers register later are picked up by the parametrization."""

from __future__ import annotations

import pytest

from telephony_bridge.testing.kit import ToolCall, Turn
from telephony_bridge.testing.profiles import PROFILES

pytestmark = pytest.mark.timeout(60)

GREETING = "Hello! Thanks for calling Acme. How can I help you today?"
ASKS_TIME = Turn(hears="What time is it?", call=ToolCall("get_current_time"), then="It's {output.time}.")


@pytest.mark.parametrize("carrier", sorted(PROFILES))
async def test_barge_in_and_a_tool_call_on_every_carrier(call_flow, carrier):
    call_flow.script([GREETING, ASKS_TIME])
    report = await call_flow.call(caller_says=[(1.5, "What time is it?")], carrier=carrier)
    assert report.caller.carrier == carrier and report.scenario == "default"
    assert report.caller.protocol_errors == [] and not report.errors, report.timeline()
    [tool] = report.tool_calls
    assert tool.name == "get_current_time"
    greeting, answer = report.agent_lines
    assert greeting.cut and answer == f"It's {tool.output['time']}."
    [barge_in] = report.barge_ins
    [cut] = barge_in["truncations"]
    assert cut["item_id"] == greeting.item_id
    if PROFILES[carrier].echoes_marks:
        # With mark echo the bridge truncates at what the phone played: within 20 ms of it.
        [clear] = report.caller.clears
        first_audio_ms = next(i for i, byte in enumerate(report.caller.heard_ulaw) if byte != 0xFF) / 8
        assert abs(greeting.heard_s * 1000 - (clear.at_ms - first_audio_ms)) <= 20, report.timeline()
    assert 0.5 < greeting.heard_s < 3.0
