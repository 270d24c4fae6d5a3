"""scenarios/live_receptionist.py over the phone simulator, with the local engine in GPT-Live mode:
μ-law pass-through, a delegated tool call answered the Live way, the model's own barge-in (it
yields when the caller talks over it) and the app's stop (clearMediaBuffer on `*`)."""

from __future__ import annotations

import json

import pytest

from telephony_bridge.testing.kit import ToolCall, Turn

pytestmark = pytest.mark.timeout(90)

LIVE = "+15550900"
GREETING = "Hello! Thanks for calling Acme. How can I help you today? We are open every day."  # ~5 s


def _inputs(report, kind):
    return [e for e in report.model_inputs if e.get("type") == kind]


def _spoken_ms(ulaw: bytes) -> float:
    return sum(1 for b in ulaw if b not in (0xFF, 0x7F)) / 8


async def test_greets_tells_the_time_through_delegation_and_the_model_yields_to_the_caller(call_flow):
    call_flow.script([GREETING, Turn(hears="What time is it?", call=ToolCall("get_current_time"), then="It's {output.time}.")])
    report = await call_flow.call(to=LIVE, caller_says=[(2.0, "What time is it?")])
    assert report.scenario == "live_receptionist" and not report.errors, report.errors
    [start] = _inputs(report, "session.start")
    session = start["session"]
    assert session["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}  # phone audio byte for byte
    assert "tools" not in session and session["delegation"]["type"] == "responses"
    assert not [e for e in report.model_inputs if e.get("type", "").startswith(("input_audio_buffer", "conversation"))]
    # the tool, the Live way: function_call_output, then a bodiless response.create
    [item] = _inputs(report, "response.item.create")
    assert item["item"]["type"] == "function_call_output"
    assert json.loads(item["item"]["output"])["time"]
    assert _inputs(report, "response.create") == [{"type": "response.create"}]
    assert any("tool get_current_time" in line.message for line in report.log)
    # barge-in owned by the model: the greeting stopped soon after the caller started (2.0 s),
    # with nothing sent by the bridge but audio
    stopped = [line.message for line in report.log if line.message.startswith("agent stopped")]
    assert stopped and "interrupted=False" in stopped[0]
    heard_greeting_ms = int(stopped[0].split()[3])
    assert 800 < heard_greeting_ms < 4000, stopped
    assert not report.caller.clears  # the bridge did not clear the phone: the model stopped itself
    assert _spoken_ms(report.caller.heard_ulaw) > 1500  # the greeting's start and the time were heard
    assert call_flow.engine.live_sessions[-1].turns_taken >= 2
    # the journal (and so the report) reads Live like Realtime: lines, tool calls and their results
    [tool] = report.tool_calls
    assert tool.name == "get_current_time" and tool.output == json.loads(item["item"]["output"])
    greeting, answer = report.agent_lines
    assert GREETING.startswith(str(greeting)) and len(greeting) < len(GREETING)  # said until it yielded
    assert answer == f"It's {tool.output['time']}."
    assert report.caller_lines == ["What time is it?"]


async def test_star_stops_the_agent_and_the_model_is_told_what_was_not_heard(call_flow):
    call_flow.script([GREETING, "Sure."])
    report = await call_flow.call(to=LIVE, digits=[(2.0, "*")], hang_up_after_silence=2.0)
    assert not report.errors, report.errors
    [barge_in] = report.barge_ins
    [cut] = barge_in["truncations"]
    assert 500 < cut["audio_end_ms"] < 3500
    assert report.caller.clears  # the phone's queued audio was dropped
    notes = [e["content"] for e in _inputs(report, "session.instructions.append") if "stop speaking" in e["content"]]
    assert len(notes) == 1 and f"after {cut['audio_end_ms'] / 1000:.1f} s" in notes[0]
    assert 'heard up to: "Hello!' in notes[0]  # the words heard, from the output transcript's timing
    assert all(e["delegation_id"] is None for e in _inputs(report, "session.instructions.append"))
    stopped = [line.message for line in report.log if line.message.startswith("agent stopped")]
    assert "interrupted=True" in stopped[0]
    greeting = report.agent_lines[0]
    assert greeting.cut and greeting.heard_s == cut["audio_end_ms"] / 1000
