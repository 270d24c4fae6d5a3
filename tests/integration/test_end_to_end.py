"""The demo path end to end: the real server process, the embedded local engine, the phone
simulator. A scripted call with a barge-in, a tool call and a hang-up after the goodbye; the audio
the caller heard must show the greeting cut at the barge-in."""

from __future__ import annotations

import inspect
import math
import re

import orjson
import pytest

from telephony_bridge.demo import run_demo
from telephony_bridge.local_engine import LocalEngine
from telephony_bridge.local_engine.tts import synthesize
from telephony_bridge.voxengine.playout import FRAME_MS

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]
# The embedded engine's audio delta (the server starts it with the default): the bridge marks each.
ENGINE_DELTA_MS = inspect.signature(LocalEngine).parameters["chunk_ms"].default


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

    # What the phone played of each agent turn, and what the bridge's ledger says was heard.
    spoken = [e.data for e in call.timeline if e.kind == "agent_speech"]
    ledger_s = [e["duration_s"] for e in journal if e["event"] == "agent.audio_ended"]
    assert len(spoken) == len(ledger_s) == 3, (spoken, ledger_s)
    greeting_heard, answer_heard, goodbye_heard = (s["heard_ms"] for s in spoken)
    assert spoken[0]["interrupted"] and not spoken[1]["interrupted"] and not spoken[2]["interrupted"]

    # Truncated at what the caller heard, not at what was sent. The ledger counts the audio its marks
    # confirmed, which the phone had played before the clear, plus the clock's share of the one
    # segment (a model delta) playing then, never more than that segment (realtime/playback.py).
    # The phone went on playing until the clear reached it, at most in real time since the caller
    # began speaking; of what it had played by then, only the segment in play can lack its mark (the
    # marks' echoes precede the caller's speech on the stream). Bounds from the simulator's own
    # figures and the segment size, not from a wall-clock budget.
    [clear] = call.clears
    speech_start_ms = next(e.data["start_ms"] for e in call.timeline if e.kind == "caller_speech")
    played_before_speech = greeting_heard - (clear.at_ms - speech_start_ms)
    low, high = played_before_speech - ENGINE_DELTA_MS, greeting_heard + ENGINE_DELTA_MS
    assert low <= cut["audio_end_ms"] <= high, (cut, spoken[0], clear.at_ms, speech_start_ms)
    # The answers that played to their end: the ledger's marks confirm exactly what the phone played
    # (the journal rounds to the millisecond), and each is its whole synthesised line, to within the
    # one frame the bridge sends audio in (resampling rounds each delta to whole samples).
    answer, goodbye = run.agent_lines[1:]
    assert re.fullmatch(r'"It\'s \d\d:\d\d\. Is there anything else I can do for you\?"', answer), answer
    assert goodbye == '"Thank you for calling Acme. Goodbye!"'
    for heard_ms, ledger, line in ((answer_heard, ledger_s[1], answer), (goodbye_heard, ledger_s[2], goodbye)):
        assert abs(ledger * 1000 - heard_ms) <= 1, (ledger, heard_ms)
        assert abs(heard_ms - speech_seconds(line.strip('"')) * 1000) < FRAME_MS, (heard_ms, line)
    assert call.playout.played_ms == greeting_heard + answer_heard + goodbye_heard  # nothing else played

    # The greeting, as heard: from its first audible byte to the bridge's clear.
    heard = call.heard_ulaw
    first_audio_ms = next(i for i, b in enumerate(heard) if b != 0xFF) / 8
    heard_greeting_ms = clear.at_ms - first_audio_ms
    greeting = "Hello! Thanks for calling Acme. I can tell you the time or end the call. How can I help?"
    assert heard_greeting_ms < speech_seconds(greeting) * 1000 - 2000  # really cut, seconds before its end
    assert clear.dropped_ms > 1000

    # The transcript printed live shows the greeting as heard: cut where the recording is cut. Its
    # words are the model's transcript of the item when it was cut (the whole greeting, or less if
    # the engine had not sent it all by then), cut by characters at the share of that audio heard
    # (testing/transcript.py): to the character, give or take the rounding and a space stripped.
    [model_text] = [e["text"] for e in journal if e["event"] == "agent.transcript" and e["item_id"] == cut["item_id"]]
    assert greeting.startswith(model_text.strip()), model_text
    first = run.agent_lines[0]
    assert first.endswith("[interrupted: %.1f s not heard]" % (clear.dropped_ms / 1000)), first
    said = first[1:first.index('"', 1)].removesuffix("—")
    assert greeting.startswith(said) and len(said) < len(greeting)
    heard_share = heard_greeting_ms / (heard_greeting_ms + clear.dropped_ms)
    assert abs(len(said) - heard_share * len(model_text.strip())) <= 2, (said, model_text, heard_share)
    # Nothing of the greeting plays after the clear: silence until the next answer.
    start = math.ceil(clear.at_ms * 8)  # the byte straddling the clear instant played before it
    after_clear = heard[start: start + 500 * 8]
    assert set(after_clear) <= {0xFF}

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
