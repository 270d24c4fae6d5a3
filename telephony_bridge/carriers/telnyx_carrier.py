"""Telnyx as a carrier in the seam: TeXML answer, Ed25519 webhook signatures, Call Control.

Configuration (the environment):

- ``TELNYX_PUBLIC_KEY``: the account's public key (Mission Control → Keys & Credentials → Public
  Key, base64). With it every answer request must carry a valid ``telnyx-signature-ed25519`` over
  ``"{telnyx-timestamp}|{raw body}"`` no older than ``TELNYX_SIGNATURE_TOLERANCE_S`` (default 300);
  a key that is not a base64 Ed25519 key refuses everything (fail closed). Without it the
  endpoint serves loopback clients only, like every carrier without its secret.
- ``TELNYX_API_KEY``: enables hang-up and transfer through Call Control
  (``POST /v2/calls/{call_control_id}/actions/hangup|transfer``); ``TELNYX_API_BASE_URL`` points
  it elsewhere (tests).

Signatures are checked with PyNaCl (libsodium), not the official ``telnyx`` SDK: the SDK is
maintained, but its verifier needs PyNaCl anyway and a client object, and the SDK brings its own
HTTP stack and models for what is one Ed25519 check and two POSTs here. Call Control uses the
standard library's HTTP client in a worker thread (a few requests a call, never on the media path).

The media stream's upgrade carries no signature at Telnyx: a stream is bound to the call by the
bridge's single-use token, which only a signed answer hands out (in the stream URL's query and as a
``<Parameter>``, whichever Telnyx passes back).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Final

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from telephony_bridge.audio.formats import ALAW_8K, ULAW_8K
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AnswerRefused,
    AnswerRequest,
    CallStatusUpdate,
    Capabilities,
    Carrier,
    DialFailed,
    DialRequest,
    HttpAnswer,
    HttpRequest,
)
from telephony_bridge.carriers.telnyx import TelnyxCodec, call_control_id_of, call_id_of, is_call_control_id

__all__ = ["TelnyxCallControl", "TelnyxCarrier", "TelnyxControlError", "connect_stream_texml", "signature_is_valid"]

DEFAULT_API_BASE_URL: Final = "https://api.telnyx.com"
DEFAULT_TOLERANCE_S: Final = 300
_TIMEOUT_S: Final = 10.0


def signature_is_valid(
    public_key: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `signature` (base64, the ``telnyx-signature-ed25519`` header) signs
    ``"{timestamp}|{body}"`` with the key whose public half is `public_key` (base64), and
    `timestamp` (Unix seconds, ``telnyx-timestamp``) is within `tolerance_s` of now. Never raises."""
    if not public_key or not signature or not timestamp:
        return False
    try:
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return False
        if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
            return False
        key = VerifyKey(base64.b64decode(public_key, validate=True))
        raw = base64.b64decode(signature, validate=True)
        if len(raw) != 64:
            return False
        key.verify(timestamp.encode("ascii") + b"|" + body, raw)
        return True
    except (BadSignatureError, binascii.Error, ValueError, TypeError):
        return False
    except Exception:  # nacl raises its own errors for a key of the wrong length
        return False


def connect_stream_texml(stream_url: str, token: str, codec: str = "PCMU") -> str:
    """TeXML answering with a bidirectional RTP stream to `stream_url`, carrying the bridge's token
    in the URL's query and as a <Parameter> (start.custom_parameters)."""
    parts = urllib.parse.urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"stream url must be a ws:// or wss:// URL without a query, got {stream_url!r}")
    response = ET.Element("Response")
    connect = ET.SubElement(response, "Connect")
    url = f"{stream_url}?{urllib.parse.urlencode({STREAM_TOKEN_PARAMETER: token})}"
    stream = ET.SubElement(
        connect,
        "Stream",
        url=url,
        track="inbound_track",
        bidirectionalMode="rtp",
        bidirectionalCodec=codec,
        bidirectionalSamplingRate="8000",
    )
    ET.SubElement(stream, "Parameter", name=STREAM_TOKEN_PARAMETER, value=token)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")


def reject_texml() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="rejected"/></Response>'


class TelnyxControlError(Exception):
    """A failed Call Control request; never carries the API key."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Telnyx Call Control error {status}: {message}")
        self.status, self.message = status, message


class TelnyxCallControl:
    """Hang-up and transfer through Telnyx Call Control (v2), Bearer-authenticated JSON POSTs."""

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = (base_url or DEFAULT_API_BASE_URL).rstrip("/")

    def _post(self, call_id: str, action: str, body: Mapping[str, str]) -> None:
        ccid = urllib.parse.quote(call_control_id_of(call_id), safe=":")
        request = urllib.request.Request(
            f"{self._base_url}/v2/calls/{ccid}/actions/{action}",
            data=orjson.dumps(dict(body)),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace").replace(self._api_key, "***")
            raise TelnyxControlError(exc.code, detail[:300]) from None
        except OSError as exc:
            raise TelnyxControlError(0, str(exc).replace(self._api_key, "***")) from None

    async def hangup(self, call_id: str) -> None:
        await asyncio.to_thread(self._post, call_id, "hangup", {})

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        body = {"to": to} | ({"from": caller_id} if caller_id else {})
        await asyncio.to_thread(self._post, call_id, "transfer", body)

    async def dial(self, request: DialRequest) -> str:
        raise DialFailed(501, "outbound calls are not implemented for Telnyx yet")


class TelnyxCarrier(Carrier):
    name = "telnyx"
    prefixes = ("/telnyx",)
    answer_methods = ("POST", "GET")  # a TeXML application's voice method is either
    signature_header = "telnyx-signature-ed25519"
    secret_names = ("TELNYX_PUBLIC_KEY",)
    capabilities = Capabilities(
        audio_formats=(ULAW_8K, ALAW_8K),
        marks=True,
        clear=True,
        dtmf_in=True,
        dtmf_out=False,
        hangup=True,
        transfer=True,
        dial=False,
    )

    def new_codec(self) -> TelnyxCodec:
        return TelnyxCodec()

    def _check_signature(self, request: HttpRequest) -> None:
        key = self.secret
        if key is None:
            return
        try:
            tolerance = float(self.config.get("TELNYX_SIGNATURE_TOLERANCE_S") or DEFAULT_TOLERANCE_S)
        except ValueError:
            tolerance = DEFAULT_TOLERANCE_S
        if not signature_is_valid(
            key,
            request.body,
            request.headers.get("telnyx-timestamp"),
            request.headers.get("telnyx-signature-ed25519"),
            tolerance_s=tolerance,
        ):
            raise AnswerRefused(403, "forbidden", forbidden=True)

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        self._check_signature(request)
        call_sid, number = request.form.get("CallSid"), request.form.get("To")
        if not call_sid or not number:
            raise AnswerRefused(400, "a TeXML voice webhook needs CallSid and To")
        if not is_call_control_id(call_sid):
            raise AnswerRefused(400, "CallSid is not a Telnyx call control id (v<N>:…)")
        return AnswerRequest(call_id=call_id_of(call_sid), caller=request.form.get("From", ""), number=number)

    def read_call_status(self, request: HttpRequest) -> CallStatusUpdate:
        raise AnswerRefused(404, "outbound calls are not implemented for Telnyx")

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        return HttpAnswer(connect_stream_texml(stream_url, token), "text/xml")

    def reject_document(self) -> HttpAnswer:
        return HttpAnswer(reject_texml(), "text/xml")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        # Telnyx signs no upgrade: the single-use token from a signed answer binds the stream.
        return True

    def call_control(self) -> TelnyxCallControl | None:
        key = self.config.get("TELNYX_API_KEY")
        if not key:
            return None
        return TelnyxCallControl(key, self.config.get("TELNYX_API_BASE_URL") or None)
