"""Vonage, Plivo and Exotel end to end: a phone built on each carrier's simulator profile calls the
real server, the receptionist scenario answers with the embedded local engine, and the caller
barges in on the greeting. Where the carrier echoes marks the conversation is truncated at what
the phone played within 20 ms; Vonage is paced by the bridge's clock, within its lead's bound.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.profiles import PROFILES
from telephony_bridge.testing.servers import running_bridge
from tests.carriers.profile_phone import ProfilePhone

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


# How far the truncation may be from what the phone played. Marks (Plivo, Exotel): a frame (Exotel's
# codec keeps its whole-chunk rounding within 10 ms of that). Clock (Vonage): a frame and the loop's
# lag, the phone's jitter buffer being the lead the bridge declares (measured 20-24 ms late: the
# codec's sub-frame remainder, held back to keep Vonage's frames whole, plays after the bridge's
# clock has counted it).
TRUNCATION_BOUND_MS = {"plivo": 20, "exotel": 20, "vonage": 40}


def _call_id(carrier: str) -> str:
    if carrier == "exotel":
        return uuid.uuid4().hex  # Exotel CallSids: 32 hex digits
    return str(uuid.uuid4())


@pytest.mark.parametrize("carrier", ["vonage", "plivo", "exotel"])
async def test_a_call_with_a_barge_in_truncates_at_what_the_phone_played(carrier):
    profile = PROFILES[carrier]()
    settings = Settings(scenarios_dir=ROOT / "scenarios")  # no key: the embedded local engine answers
    runtime = load_runtime(settings)
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    rate = profile.audio_format.rate
    speech = await synthesize_async("What time is it?", rate, voice="en-us+f3")
    frame_bytes_l16 = rate * 2 * 20 // 1000
    caller = b"\x00" * frame_bytes_l16 * 75 + speech  # 1.5 s of silence, then the caller speaks
    if profile.audio_format.encoding.value == "ulaw":
        caller = ulaw_encode(caller)
    carrier_type = next(c for c in runtime.carrier_types if c.name == carrier)
    clock = not carrier_type.capabilities.marks

    async with running_bridge(settings, runtime) as live:
        phone = ProfilePhone(profile, live.settings.base_url,
                             jitter_ms=carrier_type.capabilities.playout_lead_ms if clock else 40.0)
        await phone.call(caller, duration_s=7.0, call_id=_call_id(carrier))

    assert phone.refused == [], phone.refused[:3]  # every message the bridge sent, the carrier accepts
    [journal] = journals
    kinds = [entry["event"] for entry in journal]
    assert "caller.speech_started" in kinds, kinds  # the caller's audio reached the model's VAD
    [barge_in] = [entry for entry in journal if entry["event"] == "barge_in"]
    [cut] = barge_in["truncations"]
    greeting, *later = phone.answers()
    heard_ms = sum(frame.ms for frame in greeting)
    sent_ms = sum(frame.received_ms for frame in greeting)
    bound_ms = TRUNCATION_BOUND_MS[carrier]
    assert abs(cut["audio_end_ms"] - heard_ms) <= bound_ms, (cut, heard_ms, sent_ms)
    assert len(phone.clears) == 1 and heard_ms < sent_ms  # the carrier's buffer dropped at the clear
    if not clock:
        assert phone.marks_echoed, "marks confirmed what was played"
    assert heard_ms > 500 and later, "the greeting played, was cut, and the agent answered afterwards"


SECRETS = {
    "vonage": {"VONAGE_SIGNATURE_SECRET": "vonage-signature-secret-of-32-bytes!"},
    "plivo": {"PLIVO_AUTH_TOKEN": "plivo-auth-token"},
    "exotel": {"EXOTEL_STREAM_AUTH": "exotel:stream-password"},
}


def _signed_profile(carrier: str, base_url: str, right: bool) -> Any:
    secret = next(iter(SECRETS[carrier].values())) if right else "someone-else's-secret-of-32-bytes!!"
    if carrier == "exotel" and not right:
        secret = "exotel:guess"
    return PROFILES[carrier](base_url=base_url, secret=secret)


@pytest.mark.parametrize("carrier", ["vonage", "plivo", "exotel"])
async def test_with_the_carrier_secret_configured_signed_calls_connect_and_forged_ones_are_refused(carrier):
    settings = Settings(scenarios_dir=ROOT / "scenarios", environ=SECRETS[carrier])
    runtime = load_runtime(settings)
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    async with running_bridge(settings, runtime) as live:
        base_url = live.settings.base_url
        assert next(c for c in live.carriers if c.name == carrier).secured
        forged = ProfilePhone(_signed_profile(carrier, base_url, right=False), base_url)
        with pytest.raises(ValueError, match="403"):
            await forged.call(b"", duration_s=0.5, call_id=_call_id(carrier))
        phone = ProfilePhone(_signed_profile(carrier, base_url, right=True), base_url)
        await phone.call(b"", duration_s=2.0, call_id=_call_id(carrier))
    assert live.metrics.webhooks_forbidden == 1
    [journal] = journals
    assert journal[0]["event"] == "call.started" and journal[0]["scenario"] == "default"
    assert phone.played, "the greeting reached the phone over the signed call's stream"
