"""scenarios/voxengine_port.py: the VoxEngine JavaScript example, ported line for line, runs a full
turn with its tool and cleans up when the caller hangs up."""

from __future__ import annotations

import pytest

from telephony_bridge.testing.kit import ToolCall, Turn

pytestmark = pytest.mark.timeout(60)


async def test_a_full_turn_with_the_availability_tool(call_flow):
    call_flow.script([
        "Harbour Hotel, hello.",
        Turn(hears="A room for December 24?", call=ToolCall("check_availability", {"date": "2025-12-24"}),
             then="Sorry, that night is fully booked."),
    ])
    report = await call_flow.call(to="+15550300", caller_says=[(1.8, "A room for December 24?")])
    assert report.scenario == "voxengine_port"
    [check] = report.tool_calls
    assert check.name == "check_availability" and check.arguments == {"date": "2025-12-24"}
    assert check.output == {"date": "2025-12-24", "available": False}
    assert report.transcript == ["Harbour Hotel, hello.", "A room for December 24?",
                                 "Sorry, that night is fully booked."]
    assert not report.transcript[0].cut
    # The sessionUpdate reached the model with the scenario's tool and instructions.
    [session] = [e["session"] for e in report.model_inputs if e["type"] == "session.update" and "tools" in e["session"]]
    assert [tool["name"] for tool in session["tools"]] == ["check_availability"]
    assert session["instructions"].startswith("You are Voxy")
    # Disconnected -> realtimeAPIClient.close() -> onWebSocketClose -> VoxEngine.terminate()
    assert report.end_reason == "caller hung up" and not report.errors
    assert any("===ON_WEB_SOCKET_CLOSE===" in line.message for line in report.log)
    assert await call_flow.model_connections_closed()
