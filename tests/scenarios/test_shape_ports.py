"""The README examples of OpenAI's RealtimeClient and of the Agents SDK's OpenAIRealtimeWebSocket,
ported to phone calls (scenarios/realtime_client_port.py, scenarios/agents_websocket_port.py), each
through the call-flow kit with a tool call and a barge-in: the bridge's own barge-in, truncated at
what the caller heard, over the one engine every shape shares."""

from __future__ import annotations

import pytest

from telephony_bridge.testing.kit import ToolCall, Turn

pytestmark = pytest.mark.timeout(60)

LONG_ANSWER = "I'm doing great, thanks for asking! It's a lovely day to talk about anything you like."


def _assert_barge_in_truncated_what_was_heard(report):
    [barge_in] = report.barge_ins
    [cut] = barge_in["truncations"]
    first = report.agent_lines[0]
    assert first.cut and cut["item_id"] == first.item_id and not cut["deleted"]
    [clear] = report.caller.clears
    first_audio_ms = next(i for i, byte in enumerate(report.caller.heard_ulaw) if byte != 0xFF) / 8
    assert abs(first.heard_s * 1000 - (clear.at_ms - first_audio_ms)) <= 60  # what the phone really played
    assert 0.5 < first.heard_s < 3.0 and clear.dropped_ms > 500


async def test_realtime_client_readme_port_runs_its_tool_and_barges_in(call_flow):
    assert call_flow.scenario_for("+15550400") == "realtime_client_port"
    call_flow.script([
        LONG_ANSWER,
        Turn(hears="What's the weather in Paris?",
             call=ToolCall("get_weather", {"lat": 48.85, "lng": 2.35, "location": "Paris"}),
             then="It's {output.current.temperature_2m} degrees in Paris."),
    ])
    report = await call_flow.call(to="+15550400", caller_says=[(1.5, "What's the weather in Paris?")],
                                  hang_up_after_silence=3.0)
    assert report.scenario == "realtime_client_port" and not report.errors
    # sendUserMessageContent: the text item, then a response
    assert report.messages_to_model == ["How are you?"]
    # the tool ran itself: its result went back and a response was created
    [tool] = report.tool_calls
    assert tool.name == "get_weather" and tool.arguments["location"] == "Paris"
    assert tool.output == {"location": "Paris", "current": {"temperature_2m": 18.5, "wind_speed_10m": 11.2}}
    assert report.agent_lines[-1] == "It's 18.5 degrees in Paris." and not report.agent_lines[-1].cut
    _assert_barge_in_truncated_what_was_heard(report)
    # the session the library would send: its tool, its instructions, server VAD
    sessions = [e["session"] for e in report.model_inputs if e["type"] == "session.update" and e["session"].get("tools")]
    assert [t["name"] for t in sessions[-1]["tools"]] == ["get_weather"]
    assert sessions[-1]["instructions"] == "You are a great, upbeat friend."
    assert sessions[-1]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    # the conversation cache told the scenario what the assistant said
    assert any("assistant said: It's 18.5 degrees in Paris." in line.message for line in report.log)
    assert report.model_connections == 1 and await call_flow.model_connections_closed()


async def test_agents_websocket_port_answers_its_function_call_and_interrupts(call_flow):
    assert call_flow.scenario_for("+15550500") == "agents_websocket_port"
    call_flow.script([
        "Harbour Hotel, hello! How can I help you with your booking today? We have rooms all winter.",
        Turn(hears="A room for December 24?", call=ToolCall("check_availability", {"date": "2025-12-24"}),
             then="Sorry, that night is fully booked."),
    ])
    report = await call_flow.call(to="+15550500", caller_says=[(1.5, "A room for December 24?")],
                                  hang_up_after_silence=3.0)
    assert report.scenario == "agents_websocket_port" and not report.errors
    [check] = report.tool_calls
    assert check.name == "check_availability" and check.output == {"date": "2025-12-24", "available": False}
    assert report.agent_lines[-1] == "Sorry, that night is fully booked." and not report.agent_lines[-1].cut
    _assert_barge_in_truncated_what_was_heard(report)
    assert any(line.message.endswith("barge-in") for line in report.log)  # audio_interrupted fired
    assert any("usage {'requests': 1" in line.message for line in report.log)  # turn_done
    [session] = [e["session"] for e in report.model_inputs if e["type"] == "session.update" and e["session"].get("tools")]
    assert session["audio"]["input"]["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 500}
    assert session["audio"]["output"]["voice"] == "alloy"
    assert report.model_connections == 1 and await call_flow.model_connections_closed()
