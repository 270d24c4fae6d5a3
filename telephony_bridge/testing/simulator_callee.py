"""The phone simulator answering an outbound call, as Twilio does after `Calls.create`.

Given the form the bridge sent to `Calls.create` (`To`, `From`, `Url`, `StatusCallback`,
`MachineDetection`), play Twilio's part:

1. status callbacks `initiated` and `ringing` (signed, as every request below, when an auth token
   is given);
2. a callee who does not answer (`outcome` busy, no-answer, failed): the final status callback, and
   that is all;
3. otherwise request `Url` with the outbound call's form (`Direction=outbound-api`, and
   `AnsweredBy` when machine detection was asked for), the `answered` callback, then run the
   `<Connect><Stream>` it answers exactly as for an inbound call (the callee's speech as the
   "caller" audio of `SimulatedCall`), and finally the `completed` callback with `CallDuration`.

Everything is in the returned `CallResult` (`rejected` when no stream ran).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Final

from twilio.request_validator import RequestValidator

from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.carrier_profile import AnswerRequestSpec
from telephony_bridge.testing.profiles.twilio import TwilioProfile
from telephony_bridge.testing.simulator_result import CallResult
from telephony_bridge.testing.simulator_stream import EventCallback, SimulatedCall
from telephony_bridge.testing.simulator_webhook import (
    TWILIO_HTTP_USER_AGENT,
    _post_form,
)

__all__ = ["OUTCOMES", "answer_outbound_call"]

log = logging.getLogger("telephony_bridge.testing.simulator")

OUTCOMES: Final = ("answered", "busy", "no-answer", "failed")
_SIP_CODES: Final = {"busy": "486", "no-answer": "480", "failed": "404"}


class _AnsweringCall(SimulatedCall):
    """A simulated call whose TwiML comes from the outbound call's answer URL."""

    answer_url: str
    answered_by: str | None

    def webhook_request(self) -> tuple[str, AnswerRequestSpec]:
        result = self.result
        form = messages.webhook_form(
            account_sid=result.account_sid, call_sid=result.call_sid, from_=self.from_, to=self.to, status="in-progress"
        )
        form["Direction"] = "outbound-api"
        if self.answered_by is not None:
            form["AnsweredBy"] = self.answered_by
        assert isinstance(self.profile, TwilioProfile)
        return self.answer_url, AnswerRequestSpec(
            "POST", urllib.parse.urlsplit(self.answer_url).path, form, headers=self.profile.sign(self.answer_url, form)
        )


async def answer_outbound_call(
    create_form: Mapping[str, str],
    *,
    call_sid: str,
    account_sid: str,
    callee_audio: bytes = b"",
    outcome: str = "answered",
    answered_by: str = "human",
    auth_token: str | None = None,
    duration_s: float | None = None,
    hangup_after_silence_s: float | None = None,
    on_event: EventCallback | None = None,
    connect_timeout_s: float = 10.0,
) -> CallResult:
    """Play Twilio's part of the outbound call `Calls.create` was asked for with `create_form`.
    `callee_audio`: PCM16 8 kHz of what the callee says. `answered_by`: what machine detection
    reports, when it was asked for (`human`, `machine_start`, `fax`, `unknown`)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    to, from_ = create_form.get("To", ""), create_form.get("From", "")
    answer_url, status_url = create_form.get("Url"), create_form.get("StatusCallback")
    if not answer_url:
        raise ValueError("Calls.create without Url: the bridge gave Twilio nowhere to fetch the call's TwiML")
    validator = RequestValidator(auth_token) if auth_token else None
    events = set((create_form.get("StatusCallbackEvent") or "completed").split())
    base_url = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(answer_url))

    async def status(call_status: str, event: str, **extra: str) -> None:
        if not status_url or (event not in events and event != "completed"):
            return
        form = {
            "AccountSid": account_sid,
            "ApiVersion": messages.API_VERSION,
            "CallSid": call_sid,
            "CallStatus": call_status,
            "Direction": "outbound-api",
            "From": from_,
            "To": to,
            **extra,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": TWILIO_HTTP_USER_AGENT}
        if validator is not None:
            headers["X-Twilio-Signature"] = validator.compute_signature(status_url, form)
        try:
            code, _, _ = await asyncio.to_thread(_post_form, status_url, form, headers, connect_timeout_s)
        except OSError as exc:
            log.warning("status callback %s for %s failed: %s", call_status, call_sid, exc)
            return
        if code >= 300:
            log.warning("status callback %s for %s answered HTTP %d", call_status, call_sid, code)

    await status("queued", "initiated")
    await status("ringing", "ringing")
    if outcome != "answered":
        await status(outcome, "completed", CallDuration="0", SipResponseCode=_SIP_CODES[outcome])
        return CallResult(call_sid=call_sid, account_sid=account_sid, rejected=True, error=f"callee: {outcome}")
    audio_s = len(callee_audio) / 2 / 8000
    call = _AnsweringCall(
        base_url=base_url,
        to=to,
        from_=from_,
        caller_ulaw=ulaw_encode(callee_audio),
        digits=[],
        duration_ms=(duration_s if duration_s is not None else audio_s + 60.0) * 1000,
        hangup_after_silence_ms=None if hangup_after_silence_s is None else hangup_after_silence_s * 1000,
        profile=TwilioProfile(base_url=base_url, secret=auth_token, account_id=account_sid),
        call_sid=call_sid,
        stream_url_override=None,
        on_event=on_event,
        connect_timeout_s=connect_timeout_s,
    )
    call.answer_url = answer_url
    detection = create_form.get("MachineDetection")
    call.answered_by = answered_by if detection else None
    answering = asyncio.ensure_future(call.run())
    await status("in-progress", "answered")
    result = await answering
    await status("completed", "completed", CallDuration=str(round(result.duration_s)))
    return result
