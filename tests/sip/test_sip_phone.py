"""`telephony-bridge call --sip URI`: the phone simulator's SIP phone against the real listener and
the receptionist on the embedded local engine — the greeting is heard, the caller's speech reaches
the engine, the caller's BYE ends the call."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from telephony_bridge.testing.sip_phone import sip_phone_call
from tests.sip.baresip import write_wav
from tests.sip.probe import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def receptionist_settings() -> Settings:
    return Settings.from_environ(
        {"SIP_ALLOW": "127.0.0.1/32"},
        scenarios_dir=ROOT / "scenarios",
        sip_listen=("udp:127.0.0.1:0",),
        call_store=False,
        gc_freeze=False,  # the default of from_environ: it would freeze the test process's heap
    )


async def test_the_sip_phone_hears_the_greeting_and_is_heard() -> None:
    settings = receptionist_settings()
    runtime = load_runtime(settings)
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    speech = ulaw_encode(await synthesize_async("What time is it?", 8000, voice="en-us+f3"))
    async with running_bridge(settings, runtime) as live:
        port = live.sip.bound[0][1]
        result = await sip_phone_call(f"sip:+15550100@127.0.0.1:{port}", audio_ulaw=b"\xff" * 8000 + speech)
        await wait_until(lambda: not live.sessions)
    assert result.connected and result.status == 200 and result.ended_by == "caller", result.summary()
    assert result.heard_speech_ms > 500, result.summary()
    [journal] = journals
    assert "caller.speech_started" in [entry["event"] for entry in journal]
    assert journal[-1]["event"] == "call.ended" and journal[-1]["reason"] == "caller hung up"


async def test_the_call_command_with_sip(tmp_path: Path) -> None:
    from telephony_bridge.testing.call_cli import add_arguments, run

    caller = tmp_path / "caller.wav"
    write_wav(caller, b"\x00\x00" * 8000)
    async with running_bridge(receptionist_settings()) as live:
        port = live.sip.bound[0][1]
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(
            ["--sip", f"sip:+15550100@127.0.0.1:{port}", "--audio", str(caller), "--duration", "2", "--quiet",
             "--heard-wav", str(tmp_path / "heard.wav")]
        )  # fmt: skip
        assert await run(args) == 0
        assert (tmp_path / "heard.wav").stat().st_size > 8000  # a second or more of what the caller heard
