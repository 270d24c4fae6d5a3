"""scenarios/default.py, the receptionist: greets first, lets the caller barge in, tells the time,
hangs up once the goodbye has played."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from telephony_bridge.testing.kit import ToolCall, Turn

pytestmark = pytest.mark.timeout(60)

GREETING = "Hello! Thanks for calling Acme. How can I help you today?"  # about 3.9 s
ASKS_TIME = Turn(hears="What time is it?", call=ToolCall("get_current_time"), then="It's {output.time}.")


async def test_the_agent_greets_first(call_flow):
    call_flow.script(["Hello, Acme here."])
    report = await call_flow.call(to="+15550100")  # a caller who says nothing
    assert report.scenario == "default"
    assert report.transcript == ["Hello, Acme here."] and report.transcript[0].speaker == "agent"
    assert "caller.speech_started" not in report.kinds
    assert report.end_reason == "caller hung up" and not report.errors


async def test_barge_in_stops_playback_and_truncates_at_what_the_caller_heard(call_flow):
    call_flow.script([GREETING, "Sure."])
    report = await call_flow.call(caller_says=[(1.5, "Wait.")])
    [barge_in] = report.barge_ins
    [cut] = barge_in["truncations"]
    greeting, answer = report.agent_lines
    assert greeting.cut and cut["item_id"] == greeting.item_id and not cut["deleted"]
    assert answer == "Sure." and not answer.cut
    # The truncation point is what the phone really played before the bridge's clear.
    [clear] = report.caller.clears
    first_audio_ms = next(i for i, byte in enumerate(report.caller.heard_ulaw) if byte != 0xFF) / 8
    assert abs(greeting.heard_s * 1000 - (clear.at_ms - first_audio_ms)) <= 60
    assert 0.5 < greeting.heard_s < 2.5 and clear.dropped_ms > 1000  # cut seconds before its end


async def test_get_current_time_is_answered_with_the_time(call_flow):
    call_flow.script(["Hi, Acme.", ASKS_TIME])
    report = await call_flow.call(caller_says=[(1.5, "What time is it?")])
    [tool] = report.tool_calls
    assert tool.name == "get_current_time" and tool.arguments == {}
    now = datetime.datetime.now(datetime.UTC)
    told = datetime.datetime.strptime(tool.output["time"], "%H:%M").replace(year=now.year, month=now.month, day=now.day, tzinfo=now.tzinfo)
    assert abs((now - told).total_seconds()) < 120
    assert report.caller_lines == ["What time is it?"]
    assert report.agent_lines == ["Hi, Acme.", f"It's {tool.output['time']}."]


async def test_end_call_hangs_up_only_after_the_goodbye_has_played(call_flow):
    goodbye = "Thank you for calling Acme. Goodbye!"
    call_flow.script(["Hi, Acme.", Turn(say=goodbye, call=ToolCall("end_call", {"reason": "caller said goodbye"}))])
    report = await call_flow.call(caller_says=[(1.5, "Bye")])
    assert report.agent_lines[-1] == goodbye and not report.agent_lines[-1].cut
    assert report.hung_up and report.caller.closed_by == "server"
    assert report.kinds.index("agent.tool_call") < report.kinds.index("call.hangup")
    # When the line went dead the phone had played everything: nothing queued, every mark back.
    assert report.unheard_ms == 0 and report.caller.marks_unechoed == []
    assert report.caller.playout.played_ms > 2500  # "Hi, Acme." and the whole goodbye


async def test_two_calls_at_once_keep_their_own_model_and_events(call_flow):
    call_flow.script(["Hi, Acme.", ASKS_TIME])
    asking, silent = await asyncio.gather(
        call_flow.call(from_="+15550001", caller_says=[(1.5, "What time is it?")]),
        call_flow.call(from_="+15550002"),
    )
    assert [tool.name for tool in asking.tool_calls] == ["get_current_time"] and silent.tool_calls == []
    assert asking.agent_lines[0] == "Hi, Acme." and silent.agent_lines == ["Hi, Acme."]
    assert [e["caller"] for e in asking.events if e.kind == "call.started"] == ["+15550001"]
    assert [e["caller"] for e in silent.events if e.kind == "call.started"] == ["+15550002"]
    assert asking.model_connections == silent.model_connections == 1
    assert any(e["type"] == "conversation.item.create" for e in asking.model_inputs)
    assert not any(e["type"] == "conversation.item.create" for e in silent.model_inputs)
    assert call_flow.engine.sessions_started == 2 and not asking.errors and not silent.errors
