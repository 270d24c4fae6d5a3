"""Twilio's side of a call for the phone simulator: the voice webhook's form (signed with
X-Twilio-Signature when an auth token is given), TwiML read as Twilio reads it, and the
media-stream messages of testing/twilio_messages.py (written independently of the bridge's codec).
"""

from __future__ import annotations

import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.carrier_profile import (
    AnswerDeclined,
    AnswerRequestSpec,
    BridgeClear,
    PhoneEvent,
    StreamTarget,
    json_message,
    media_or_mark,
)

__all__ = ["PARAMETER_LIMIT", "TwilioProfile"]

PARAMETER_LIMIT = 500  # Twilio: name + value of a <Parameter> under 500 characters


class TwilioProfile:
    """Twilio Media Streams, bidirectional (`<Connect><Stream>`), μ-law 8 kHz in 20 ms frames."""

    name = "twilio"
    audio_format = ULAW_8K
    echoes_marks = True
    frame_ms = 20
    answer_path = messages.WEBHOOK_PATH
    answer_content_types = ("text/xml", "application/xml")
    signature_header = "X-Twilio-Signature"
    http_user_agent = messages.HTTP_USER_AGENT
    ws_user_agent = messages.WS_USER_AGENT

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.validator = RequestValidator(secret) if secret else None
        self.account_sid = account_id or messages.new_sid("AC")
        self.stream_sid = ""
        self.call_sid = ""
        self.chunk = 0

    @property
    def signed(self) -> bool:
        return self.validator is not None

    def new_call_id(self) -> str:
        return messages.new_sid("CA")

    def new_stream_id(self) -> str:
        return messages.new_sid("MZ")

    # -- the answer request ----------------------------------------------------------------------

    def sign(self, url: str, form: Mapping[str, str]) -> dict[str, str]:
        """The signature header of a request to `url` with `form` (empty when unsigned)."""
        if self.validator is None:
            return {}
        return {self.signature_header: self.validator.compute_signature(url, dict(form))}

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec:
        form = messages.webhook_form(account_sid=self.account_sid, call_sid=call_id, from_=caller, to=number)
        headers = {
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            **self.sign(self.base_url + self.answer_path, form),
        }
        return AnswerRequestSpec("POST", self.answer_path, form, headers=headers)

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        if status != 200:
            raise ValueError(f"HTTP {status}")
        try:
            answer = messages.read_twiml(body)
        except ET.ParseError as e:
            raise ValueError(f"unusable TwiML: {e}") from None
        except ValueError as e:
            raise ValueError(f"unusable TwiML: {e}") from None
        if answer.stream_url is None:
            raise AnswerDeclined(answer.note)
        return StreamTarget(answer.stream_url, dict(answer.parameters))

    def answer_problems(self, target: StreamTarget) -> tuple[list[str], list[str]]:
        """(protocol errors, warnings) of a stream answer real Twilio would refuse or mishandle."""
        errors, warnings = [], []
        parts = urllib.parse.urlsplit(target.url)
        if parts.scheme != "wss":
            warnings.append(f"stream url {target.url!r} is not wss://: Twilio only connects to wss")
        if parts.query:
            errors.append(f"stream url {target.url!r} has a query string: Twilio drops it")
        for name, value in target.parameters.items():
            if len(name) + len(value) >= PARAMETER_LIMIT:
                errors.append(f"<Parameter name={name!r}> is {len(name) + len(value)} characters: limit is 500")
        return errors, warnings

    def stream_headers(self, target: StreamTarget) -> dict[str, str]:
        """The upgrade is signed over the TwiML's URL, with no parameters."""
        return self.sign(target.url, {})

    # -- the stream ------------------------------------------------------------------------------

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        self.call_sid, self.stream_sid = call_id, stream_id
        return [
            messages.connected(),
            messages.start(
                seq=1,
                stream_sid=stream_id,
                account_sid=self.account_sid,
                call_sid=call_id,
                custom_parameters=target.parameters,
            ),
        ]

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> str:
        self.chunk += 1
        return messages.media(
            seq=sequence, stream_sid=self.stream_sid, chunk=self.chunk, timestamp_ms=timestamp_ms, payload=payload
        )

    def dtmf_message(self, digit: str, sequence: int) -> str:
        return messages.dtmf(seq=sequence, stream_sid=self.stream_sid, digit=digit)

    def stop_message(self, sequence: int) -> str:
        return messages.stop(
            seq=sequence, stream_sid=self.stream_sid, account_sid=self.account_sid, call_sid=self.call_sid
        )

    def mark_echo(self, name: str, sequence: int) -> str:
        return messages.mark(seq=sequence, stream_sid=self.stream_sid, name=name)

    def parse(self, message: str | bytes) -> PhoneEvent:
        msg = json_message("Twilio", message)
        assert isinstance(message, str)
        event = msg.get("event")
        if event not in ("media", "mark", "clear"):
            raise ValueError(f"unknown event {event!r}: {message[:80]!r}")
        if msg.get("streamSid") != self.stream_sid:
            raise ValueError(f"{event} with streamSid {msg.get('streamSid')!r}, expected {self.stream_sid!r}: ignored")
        return media_or_mark(event, msg, message) or BridgeClear()
