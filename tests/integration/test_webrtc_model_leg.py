"""The model leg over WebRTC, end to end and offline: a scenario on `transport: "webrtc"` answers a
simulated call through the real bridge, the local engine takes the SDP offer on 127.0.0.1, the
caller is heard by the engine over the Opus track, the agent is heard by the caller, and a
barge-in truncates the agent's line where the caller stopped hearing it. Few calls: aiortc is
CPU-heavy and the machine is small."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony_bridge.testing.kit import CallFlow
from tests.conformance.oracle import validate_client_event

pytestmark = pytest.mark.timeout(120)
SCENARIOS = Path(__file__).parent / "webrtc_scenarios"
GREETING = "Thanks for calling the harbour hotel. We have rooms with a view of the sea and rooms with a view of the town, and breakfast is served from seven."


async def test_a_call_on_a_webrtc_model_leg_hears_the_agent_is_heard_and_barges_in(tmp_path):
    async with CallFlow(SCENARIOS, calls_dir=tmp_path, webrtc=True) as flow:
        flow.script([GREETING, "Sure, the sea view it is."])
        report = await flow.call(caller_says=[(2.5, "A room with a sea view, please.")])
    messages = [line.message for line in report.log]
    # The caller heard the agent: the greeting's first words, which the engine put on the Opus
    # track (over WebRTC no audio travels on the data channel).
    greeting = report.agent_lines[0]
    assert greeting.heard_s is not None and greeting.heard_s > 1.0
    # The engine heard the caller over the track: its VAD found the words and it answered them.
    assert "===BARGE_IN===" in messages
    assert report.agent_lines[1] == "Sure, the sea view it is."
    # The barge-in cut the greeting where the caller stopped hearing it: the truncation the bridge
    # sent on the data channel names the greeting's item, at what was heard.
    [barge_in] = report.barge_ins
    [cut] = barge_in["truncations"]
    assert greeting.cut and cut["item_id"] == greeting.item_id
    assert abs(cut["audio_end_ms"] - greeting.heard_s * 1000) <= 100
    truncates = [e for e in report.model_inputs if e["type"] == "conversation.item.truncate"]
    assert truncates and truncates[0]["item_id"] == greeting.item_id
    assert not report.errors
    # The conformance check of the WebSocket transport, on what crossed the data channel: every
    # client event the engine received validates against the openai SDK's GA models.
    assert {"session.update", "response.create", "conversation.item.truncate"} <= {e["type"] for e in report.model_inputs}
    for event in report.model_inputs:
        validate_client_event(event, "ga")


async def test_a_live_client_on_webrtc_starts_with_the_config_in_the_offer_and_the_caller_hears_it(tmp_path):
    async with CallFlow(SCENARIOS, calls_dir=tmp_path, webrtc=True) as flow:
        flow.script(["Hello, this is the live agent speaking over the web.", "Got it."])
        report = await flow.call(to="+15550901", caller_says=[(4.0, "Thank you.")])
    messages = [line.message for line in report.log]
    assert "===LIVE_STARTED===" in messages, messages
    # No session.start on the data channel (it went with the offer; the engine records it as the
    # session's first message), and the greeting asked for over the channel.
    starts = [e for e in report.model_inputs if e["type"] == "session.start"]
    assert len(starts) == 1 and starts[0]["session"]["model"] == "gpt-live-1"
    assert any(e["type"] == "session.instructions.append" for e in report.model_inputs)
    # The caller heard the greeting: the engine's Live output came on the track into the playout.
    # (The journal's line misses the first word: on WebRTC the transcript delta overtakes the audio
    # that starts the Live client's turn; known, see docs.)
    assert report.agent_lines and "live agent speaking over the web" in report.agent_lines[0]
    spoken_ms = sum(1 for b in report.caller.heard_ulaw if b not in (0xFF, 0x7F)) / 8
    assert spoken_ms > 1000
    assert not report.errors


async def test_the_openai_realtime_webrtc_shape_on_a_call_greets_and_is_interrupted_by_the_caller(tmp_path):
    async with CallFlow(SCENARIOS, calls_dir=tmp_path, webrtc=True) as flow:
        flow.script([GREETING, "Sure, the sea view it is."])
        report = await flow.call(to="+15550902", caller_says=[(2.5, "A room with a sea view, please.")])
    messages = [line.message for line in report.log]
    assert "===STATE=== connected" in messages and "===AUDIO_START===" in messages
    assert "===INTERRUPTED===" in messages  # interrupt() on speech_started: the bridge's barge-in
    greeting = report.agent_lines[0]
    assert greeting.cut and greeting.heard_s is not None and greeting.heard_s > 1.0
    assert report.agent_lines[1] == "Sure, the sea view it is."
    for event in report.model_inputs:
        validate_client_event(event, "ga")
    assert not report.errors

