"""scenarios/voxengine_ga_port.py: Voximplant's GA function-calling example, ported with syntax
changes only, runs through the GA client: the caller barges into the greeting, asks for a date
(a tool call answered from ResponseDone's output), and says goodbye (end_call hangs up once the
goodbye has played)."""

from __future__ import annotations

import pytest

from telephony_bridge.testing.kit import ToolCall, Turn

pytestmark = pytest.mark.timeout(90)

GREETING = "Harbour Hotel, good evening. I can check whether a room is free on any night you like."
GOODBYE = "Thank you for calling. Goodbye!"


async def test_barge_in_a_tool_call_and_a_goodbye_through_the_ga_client(call_flow):
    call_flow.script([
        GREETING,
        Turn(hears="A room for December 24?", call=ToolCall("check_availability", {"date": "2025-12-24"}),
             then="Sorry, that night is fully booked."),
        Turn(hears="Bye.", say=GOODBYE, call=ToolCall("end_call")),
    ])
    report = await call_flow.call(to="+15550700", caller_says=[(1.5, "A room for December 24?"), (8.0, "Bye.")])
    assert report.scenario == "voxengine_ga_port"
    # Barge-in: the greeting was cut where the caller heard it, through the one shared barge-in.
    [barge_in] = report.barge_ins
    greeting = report.agent_lines[0]
    assert greeting.cut and barge_in["truncations"][0]["item_id"] == greeting.item_id
    # The tool call, read from event.data.payload.response.output, answered with one-object methods.
    check, end = report.tool_calls
    assert check.name == "check_availability" and check.output == {"date": "2025-12-24", "available": False}
    assert end.name == "end_call"
    assert report.agent_lines[1:] == ["Sorry, that night is fully booked.", GOODBYE]
    # end_call hung up only once the goodbye had played.
    assert report.hung_up and not report.agent_lines[-1].cut and report.unheard_ms == 0
    # The scenario's GA session.update reached the model, GA-shaped, with the bridge's formats.
    [session] = [e["session"] for e in report.model_inputs if e["type"] == "session.update" and "tools" in e["session"]]
    assert session["type"] == "realtime" and session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    messages = [line.message for line in report.log]
    assert "===CONNECTED===" in messages and "===BARGE_IN===" in messages
    assert not report.errors and not any("===ERROR===" in m for m in messages)
    assert await call_flow.model_connections_closed()
