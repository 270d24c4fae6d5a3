"""SignalWire as a carrier in the seam: its Compatibility API (LaML, TwiML-compatible) answer, its
Twilio-compatible media stream, request signatures and REST control.

SignalWire's `<Connect><Stream>` speaks Twilio's media-stream protocol (connected/start/media/dtmf/
mark/stop, camelCase, μ-law 8 kHz by default, marks echoed, clear) with UUIDs for call and stream
ids; the codec is Twilio's with SignalWire's ids. Its webhooks are signed like Twilio's
(base64 HMAC-SHA1 over URL + sorted form fields) with the project's **signing key**, in
``X-SignalWire-Signature`` (``X-Twilio-Signature`` carries the same value for compatibility).

Configuration (the environment):

- ``SIGNALWIRE_SIGNING_KEY``: checks the answer request's signature (fail closed when set; without
  it the endpoint serves loopback clients only).
- ``SIGNALWIRE_PROJECT_ID``, ``SIGNALWIRE_API_TOKEN`` and ``SIGNALWIRE_SPACE_URL``
  (``example.signalwire.com``): hang-up and transfer through the Compatibility REST API
  (``POST /api/laml/2010-04-01/Accounts/{project}/Calls/{sid}``, the Twilio REST client pointed at
  the space).

The stream's upgrade is not known to be signed by SignalWire: a stream is bound to its call by the
bridge's single-use token, which only a signed answer hands out (a ``<Parameter>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AnswerRefused,
    AnswerRequest,
    CallStatusUpdate,
    Capabilities,
    Carrier,
    HttpAnswer,
    HttpRequest,
)
from telephony_bridge.carriers.twilio import TwilioStreamParser
from telephony_bridge.carriers.twilio_carrier import TwilioCallControl, TwilioCodec, _FormFields
from telephony_bridge.carriers.twilio_rest import TwilioRest
from telephony_bridge.carriers.twilio_webhook import connect_stream_twiml, reject_twiml, signature_is_valid

__all__ = ["SignalWireCarrier", "SignalWireCodec", "is_signalwire_id"]

_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SPACE: Final = re.compile(r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")


def is_signalwire_id(text: object, kind: str = "") -> bool:
    """A SignalWire call, stream or project id: a UUID (`kind` is Twilio's prefix, ignored)."""
    return type(text) is str and _UUID.fullmatch(text) is not None


class _SignalWireParser(TwilioStreamParser):
    __slots__ = ()
    valid_id = staticmethod(is_signalwire_id)


class SignalWireCodec(TwilioCodec):
    """Twilio's stream protocol with SignalWire's ids."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(_SignalWireParser())


class SignalWireCarrier(Carrier):
    name = "signalwire"
    prefixes = ("/signalwire",)
    signature_header = "X-SignalWire-Signature"
    secret_names = ("SIGNALWIRE_SIGNING_KEY",)
    sdk_modules = ("twilio.rest",)  # its REST API is Twilio's: the same client
    capabilities = Capabilities(
        audio_formats=(ULAW_8K,),
        marks=True,
        clear=True,
        dtmf_in=True,
        dtmf_out=False,
        hangup=True,
        transfer=True,
        dial=False,
    )

    def new_codec(self) -> SignalWireCodec:
        return SignalWireCodec()

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        key = self.secret
        if key is not None:
            signature = request.headers.get("x-signalwire-signature")
            if not signature_is_valid(key, request.url, _FormFields(request.form_lists), signature):
                raise AnswerRefused(403, "forbidden", forbidden=True)
        call_sid, number = request.form.get("CallSid"), request.form.get("To")
        if not call_sid or not number:
            raise AnswerRefused(400, "a LaML voice webhook needs CallSid and To")
        if not is_signalwire_id(call_sid):
            raise AnswerRefused(400, "CallSid is not a SignalWire call id (a UUID)")
        return AnswerRequest(call_id=call_sid, caller=request.form.get("From", ""), number=number)

    def read_call_status(self, request: HttpRequest) -> CallStatusUpdate:
        raise AnswerRefused(404, "outbound calls are not implemented for SignalWire")

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        return HttpAnswer(connect_stream_twiml(stream_url, {STREAM_TOKEN_PARAMETER: token}), "text/xml")

    def reject_document(self) -> HttpAnswer:
        return HttpAnswer(reject_twiml(), "text/xml")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        return True  # no upgrade signature is documented: the single-use token binds the stream

    def call_control(self) -> TwilioCallControl | None:
        project, token, space = (
            self.config.get(name) for name in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN", "SIGNALWIRE_SPACE_URL")
        )
        if not (project and token and space):
            return None
        space = space.removeprefix("https://").rstrip("/")
        if _SPACE.fullmatch(space) is None:
            return None
        base = self.config.get("SIGNALWIRE_API_BASE_URL") or f"https://{space}/api/laml"
        return TwilioCallControl(TwilioRest(project, token, base_url=base))
