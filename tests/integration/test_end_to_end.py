"""The demo path end to end: the real server process, the embedded local engine, the phone
simulator. A scripted call with a barge-in, a tool call and a hang-up after the goodbye; the audio
the caller heard must show the greeting cut at the barge-in."""

from __future__ import annotations

import math
import re

import orjson
import pytest

from telephony_bridge.demo import run_demo
from telephony_bridge.local_engine.tts import synthesize

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


def speech_seconds(text: str) -> float:
    return len(synthesize(text, 24000)) / 48000


async def test_demo_call_barges_in_calls_a_tool_and_hangs_up_after_goodbye(tmp_path):
    run = await run_demo(tmp_path)
    assert run.exit_code == 0, run.problems
    call = run.call
    journal = orjson.loads(run.transcript_path.read_bytes())
    kinds = [e["event"] for e in journal]
    assert kinds[0] == "call.started" and kinds[-1] == "call.ended"
    assert kinds.index("barge_in") < kinds.index("agent.tool_call") < kinds.index("call.hangup")
    [barge_in] = [e for e in journal if e["event"] == "barge_in"]
    [cut] = barge_in["truncations"]
    assert not cut["deleted"]
    tools = [(e["name"]) for e in journal if e["event"] == "agent.tool_call"]
    assert tools == ["get_current_time", "end_call"]

    # The greeting, as heard: from its first audible byte to the bridge's clear.
    [clear] = call.clears
    heard = call.heard_ulaw
    first_audio_ms = next(i for i, b in enumerate(heard) if b != 0xFF) / 8
    heard_greeting_ms = clear.at_ms - first_audio_ms
    assert abs(cut["audio_end_ms"] - heard_greeting_ms) <= 40, (cut, heard_greeting_ms)
    greeting_ms = speech_seconds("Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?") * 1000
    assert heard_greeting_ms < greeting_ms - 2000  # really cut, seconds before its end
    assert clear.dropped_ms > 1000

    # The transcript printed live shows the greeting as heard: cut where the recording is cut.
    greeting = "Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?"
    first = run.agent_lines[0]
    assert first.endswith("[interrupted: %.1f s not heard]" % (clear.dropped_ms / 1000)), first
    said = first[1:first.index('"', 1)].removesuffix("—")
    assert greeting.startswith(said) and len(said) < len(greeting)
    heard_share = heard_greeting_ms / (heard_greeting_ms + clear.dropped_ms)
    # An estimate by characters (see testing/transcript.py): to a word or two, on a loaded machine too.
    assert len(said) / len(greeting) == pytest.approx(heard_share, abs=0.15)
    answer, goodbye = run.agent_lines[1:]
    assert re.fullmatch(r'"It\'s \d\d:\d\d\. Is there anything else I can do for you\?"', answer), answer
    assert goodbye == '"Thank you for calling Acme. Goodbye!"'
    # Nothing of the greeting plays after the clear: silence until the next answer.
    start = math.ceil(clear.at_ms * 8)  # the byte straddling the clear instant played before it
    after_clear = heard[start: start + 500 * 8]
    assert set(after_clear) <= {0xFF}

    # Everything the caller heard: the cut greeting, the time answer and the goodbye, in full.
    expected_s = (cut["audio_end_ms"] / 1000 + speech_seconds("It's 00:00. Is there anything else I can do for you?")
                  + speech_seconds("Thank you for calling Acme. Goodbye!"))
    assert call.playout.played_ms / 1000 == pytest.approx(expected_s, abs=0.4)
    assert call.closed_by == "server" and not call.marks_unechoed  # hung up after the goodbye played
    assert call.protocol_errors == []
    assert (tmp_path / "call-stereo.wav").stat().st_size > 8000 * 2 * 2 * 5


async def test_demo_on_gpt_live_the_model_yields_delegates_the_tool_and_the_scenario_hangs_up(tmp_path):
    """`telephony-bridge demo --dialect live`: the same conversation over the local engine's Live endpoint."""
    run = await run_demo(tmp_path, dialect="live")
    assert run.exit_code == 0, run.problems
    journal = orjson.loads(run.transcript_path.read_bytes())
    assert journal[0]["scenario"] == "live_receptionist"
    assert "barge_in" not in [e["event"] for e in journal] and not run.call.clears  # the model stopped itself
    tools = [e["name"] for e in journal if e["event"] == "agent.tool_call"]
    assert tools == ["get_current_time", "end_call"]
    first_stop = next(e for e in journal if e["event"] == "agent.stopped_speaking")
    greeting_ms = speech_seconds("Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?") * 1000
    assert first_stop["duration_ms"] < greeting_ms - 2000 and not first_stop["interrupted"]
    assert run.agent_lines[-1] == '"Thank you for calling Acme. Goodbye!"'
