"""scenarios/translator.py through a real call: the phone simulator speaks, the bridge streams the
caller's audio to a translation session (the local engine's translation mode), the translated audio
plays back to the phone; # closes the session (`sessionClose` → the rest → `SessionClosed`) and the
call ends once the last translation has played."""

from __future__ import annotations

import json

import numpy as np
import pytest

from telephony_bridge.local_engine import Turn
from tests.conformance.oracle import validate_client_event

pytestmark = pytest.mark.timeout(90)


def loud_ms(pcm16: bytes, rate: int = 8000, window_ms: int = 20, threshold: float = 500.0) -> int:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    window = rate * window_ms // 1000
    frames = samples[: len(samples) // window * window].reshape(-1, window)
    return int(np.sum(np.sqrt(np.mean(frames * frames, axis=1)) > threshold)) * window_ms


async def test_the_caller_is_interpreted_and_hash_closes_the_session(call_flow):
    call_flow.script([Turn(hears="Good evening, I need a room for tonight.", say="Buenas noches, necesito una habitación."),
                      Turn(hears="Thank you.", say="Gracias.")])
    report = await call_flow.call(to="+15550800", caller_says=[(1.0, "Good evening, I need a room for tonight."),
                                                                (7.0, "Thank you.")],
                                  digits=[(7.3, "#")], timeout=30)  # mid "Thank you.": the close flushes it
    assert report.scenario == "translator"
    messages = [line.message for line in report.log]
    assert not report.errors and not any("===ERROR===" in m for m in messages), messages
    # Caller audio reached the session (the engine's VAD heard both utterances) and each came back translated.
    translated = [m.split("=== ", 1)[1] for m in messages if m.startswith("===TRANSLATED===")]
    assert translated == ["Buenas noches, necesito una habitación.", "Gracias."]
    # The translated audio reached the phone: well over a second of it, after the caller first spoke.
    heard = report.caller.heard_pcm16
    assert loud_ms(heard[: 8000 * 2 * 1]) == 0  # nothing before the caller said anything
    assert loud_ms(heard) > 1500
    # sessionClose → session.close; session.closed → SessionClosed with both transcripts; then hang-up.
    assert "===CLOSING===" in messages
    [closed] = [m for m in messages if m.startswith("===SESSION_CLOSED===")]
    transcripts = json.loads(closed.split("=== ", 1)[1])
    assert transcripts == {"heard": "Good evening, I need a room for tonight.Thank you.",
                           "said": "Buenas noches, necesito una habitación.Gracias."}
    # SessionClosed came after the flushed translation was sent; the hang-up waited until it had played.
    assert report.hung_up and report.unheard_ms == 0
    # Every client event the model received is a translation client event (appends are left out of
    # model_inputs by the recorder): the one session.update, strict, and the close.
    for event in report.model_inputs:
        validate_client_event(event, "translation")
    assert [e["type"] for e in report.model_inputs] == ["session.update", "session.close"]
    assert report.model_inputs[0]["session"] == {"audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}},
                                                           "output": {"language": "es"}}}
    assert await call_flow.model_connections_closed()
