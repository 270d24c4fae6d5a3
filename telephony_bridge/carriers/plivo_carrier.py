"""Plivo as a carrier in the seam: answer XML, V3 signatures, REST hang-up.

- Answer: Plivo POSTs the application's Answer URL (`CallUUID`, `From`, `To`, …) and runs the XML
  it gets back: `<Stream bidirectional="true" keepCallAlive="true"
  contentType="audio/x-mulaw;rate=8000">wss://PUBLIC_HOST/plivo/media-stream?bridge_token=…</Stream>`.
  The token rides in the stream URL's query (the session reads it there); the stream's own
  `start.callId` names the call.
- Authentication: with ``PLIVO_AUTH_TOKEN`` every webhook must carry a valid `X-Plivo-Signature-V3`
  (+ `X-Plivo-Signature-V3-Nonce`), checked with the official `plivo` SDK's `validate_v3_signature`.
  Plivo's stream upgrade, when it carries those headers, is checked the same way; without them the
  stream proves itself with the single-use token only a signed answer got.
- Control: with ``PLIVO_AUTH_ID`` as well, hang-up through the SDK's REST client (`calls.delete`).
  Transfer is not offered: Plivo's live-call transfer (`calls.update(aleg_url=…)`) fetches new XML
  from a URL, which the bridge does not serve yet.
- Playout: marks (`checkpoint` → `playedStream`), clear (`clearAudio`); μ-law 8 kHz, as Plivo's
  PSTN leg carries it, so a μ-law model leg needs no conversion at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AnswerRefused,
    AnswerRequest,
    Capabilities,
    Carrier,
    DialRequest,
    HttpAnswer,
    HttpRequest,
)
from telephony_bridge.carriers.plivo import PlivoCodec, is_plivo_id

__all__ = ["PlivoCallControl", "PlivoCarrier", "signature_is_valid", "stream_xml"]

CONTENT_TYPE: Final = "audio/x-mulaw;rate=8000"


def signature_is_valid(
    auth_token: str, method: str, url: str, params: Mapping[str, list[str]], headers: Mapping[str, str]
) -> bool:
    """Whether the request carries Plivo's V3 signature over `url` (+ the POST `params`), by the
    SDK's algorithm. Missing or odd input is invalid, never an exception."""
    signature, nonce = headers.get("x-plivo-signature-v3"), headers.get("x-plivo-signature-v3-nonce")
    if not auth_token or not signature or not nonce:
        return False
    from plivo.utils.signature_v3 import validate_v3_signature  # type: ignore[import-untyped]

    fields: dict[str, Any] = {name: values[0] if len(values) == 1 else list(values) for name, values in params.items()}
    try:
        return bool(
            validate_v3_signature(
                method.upper(), url, nonce, auth_token, signature, fields if method.upper() == "POST" else {}
            )
        )
    except Exception:  # the SDK's argument validators raise on anything unexpected
        return False


def stream_xml(stream_url: str, content_type: str = CONTENT_TYPE) -> str:
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream url must be a ws:// or wss:// URL, got {stream_url!r}")
    from plivo import plivoxml  # type: ignore[import-untyped]

    response = plivoxml.ResponseElement()
    response.add(plivoxml.StreamElement(stream_url, bidirectional=True, keepCallAlive=True, contentType=content_type))
    return str(response.to_string(False))


class PlivoCallControl:
    """Hang-up through Plivo's REST API (the `plivo` SDK is blocking: each call in a thread)."""

    def __init__(self, client: Any) -> None:
        self._client = client  # plivo.RestClient

    async def hangup(self, call_id: str) -> None:
        await asyncio.to_thread(self._client.calls.delete, call_id)

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        raise NotImplementedError("Plivo transfers fetch XML from a URL the bridge does not serve yet")

    async def dial(self, request: DialRequest) -> str:
        raise NotImplementedError("Plivo outbound dialing is not wired into the bridge yet")


class PlivoCarrier(Carrier):
    name = "plivo"
    prefixes = ("/plivo",)
    answer_methods = ("POST",)
    signature_header = "X-Plivo-Signature-V3"
    secret_names = ("PLIVO_AUTH_TOKEN",)
    sdk_modules = ("plivo",)
    capabilities = Capabilities(
        audio_formats=(ULAW_8K,),
        marks=True,
        clear=True,
        dtmf_in=True,
        dtmf_out=False,
        hangup=True,
        transfer=False,
        dial=False,
    )

    def new_codec(self) -> PlivoCodec:
        return PlivoCodec()

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        token = self.secret
        if token is not None and not signature_is_valid(
            token, request.method, request.url, request.form_lists, request.headers
        ):
            raise AnswerRefused(403, "forbidden", forbidden=True)
        call_id, number = request.form.get("CallUUID"), request.form.get("To")
        if not call_id or not number:
            raise AnswerRefused(400, "a Plivo answer request needs CallUUID and To")
        if not is_plivo_id(call_id):
            raise AnswerRefused(400, "CallUUID is not a Plivo call uuid")
        return AnswerRequest(call_id=call_id, caller=_plus(request.form.get("From", "")), number=_plus(number))

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        return HttpAnswer(stream_xml(f"{stream_url}?{urlencode({STREAM_TOKEN_PARAMETER: token})}"), "application/xml")

    def reject_document(self) -> HttpAnswer:
        from plivo import plivoxml

        response = plivoxml.ResponseElement()
        response.add(plivoxml.HangupElement(reason="rejected"))
        return HttpAnswer(str(response.to_string(False)), "application/xml")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        token = self.secret
        if token is None:
            return False
        if "x-plivo-signature-v3" in headers:
            return signature_is_valid(token, "GET", url, {}, headers)
        return True  # bound at its start by the single-use token the signed answer handed out

    def call_control(self) -> PlivoCallControl | None:
        auth_id, token = self.config.get("PLIVO_AUTH_ID"), self.secret
        if not (auth_id and token):
            return None
        import plivo

        return PlivoCallControl(plivo.RestClient(auth_id, token, timeout=10))


def _plus(number: str) -> str:
    return "+" + number if number.isdigit() else number
