"""baresip calls the bridge: the receptionist scenario on the embedded local engine, end to end.

baresip's microphone is silence until it has played 800 ms of the greeting (read from its own
recording, whenever the greeting starts on a busy machine); then a question, spoken over the
greeting (a barge-in), then silence, and baresip hangs up when its WAV ends. Asserted: the caller's
speech reached the engine (its VAD started, the agent answered), baresip recorded the agent, and the
bridge's truncation at the barge-in — by its clock: sent − (RTT/2 + the 40 ms allowance) — is
within 60 ms of what baresip actually played of the greeting."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.sip.baresip import Baresip, needs_baresip, write_wav

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow, needs_baresip]

ROOT = Path(__file__).resolve().parents[2]
RATE = 8000
SPEAK_AFTER_MS = 800
GAP_MS = 600  # agent audio after a silence this long is another answer
BOUND_MS = 60
SILENT = 64


def bursts(samples: list[int]) -> list[tuple[int, int]]:
    """(first, last) sample index of each stretch of agent audio. The bridge's comfort silence is
    μ-law 0xFF, which baresip decodes to a sample of 2: anything louder than SILENT is speech."""
    out: list[tuple[int, int]] = []
    gap = GAP_MS * RATE // 1000
    for index, sample in enumerate(samples):
        if abs(sample) > SILENT:
            if out and index - out[-1][1] <= gap:
                out[-1] = (out[-1][0], index)
            else:
                out.append((index, index))
    return out


async def test_baresip_caller_barges_in_on_the_local_engines_greeting(tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    write_wav(silence, b"\x00\x00" * RATE * 30)
    speech = tmp_path / "speech.wav"
    question = await synthesize_async("What time is it?", RATE, voice="en-us+f3")
    write_wav(speech, question + b"\x00\x00" * RATE * 4)
    settings = Settings.from_environ(
        {"SIP_ALLOW": "127.0.0.1/32"},
        scenarios_dir=ROOT / "scenarios",  # the receptionist (+15550100), on the embedded engine
        sip_listen=("udp:127.0.0.1:0",),
        call_store=False,
        gc_freeze=False,  # the default of from_environ: it would freeze the test process's heap
    )
    runtime = load_runtime(settings)
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    async with running_bridge(settings, runtime) as live, Baresip(tmp_path, silence) as phone:
        port = live.sip.bound[0][1]
        assert (await phone.command("dial", f"sip:+15550100@127.0.0.1:{port}"))["ok"]
        async with asyncio.timeout(30):
            while not (heard := bursts(phone.heard())) or heard[0][1] - heard[0][0] < SPEAK_AFTER_MS * RATE // 1000:
                await asyncio.sleep(0.05)  # baresip's recording grows as it plays
        assert (await phone.command("ausrc", f"aufile,{speech}"))["ok"]
        async with asyncio.timeout(30):
            await phone.closed.wait()  # the WAV ended: baresip hung up
            while live.sessions:
                await asyncio.sleep(0.05)
        recording = phone.heard()

    [journal] = journals
    kinds = [entry["event"] for entry in journal]
    assert "caller.speech_started" in kinds, kinds  # baresip's PCMU reached the engine's VAD
    [ended] = [entry for entry in journal if entry["event"] == "call.ended"]
    assert ended["reason"] == "caller hung up"
    greeting, *later = bursts(recording)
    assert later, ("the agent answered the question (recorded by baresip after the barge-in)", kinds)
    played_ms = (greeting[1] - greeting[0] + 1) * 1000 / RATE
    [barge_in] = [entry for entry in journal if entry["event"] == "barge_in"]
    [cut] = barge_in["truncations"]
    assert not cut["deleted"] and played_ms > SPEAK_AFTER_MS
    assert abs(cut["audio_end_ms"] - played_ms) <= BOUND_MS, (cut, played_ms)
