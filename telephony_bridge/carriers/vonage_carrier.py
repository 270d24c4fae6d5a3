"""Vonage (Voice API) as a carrier in the seam: answer NCCO, signed webhooks, REST control.

- Answer: Vonage requests the application's answer URL (`GET` with the call in the query, or
  `POST` with it as JSON: `uuid`, `conversation_uuid`, `from`, `to`) and runs the NCCO it gets
  back. The bridge answers `connect` to a `websocket` endpoint, `wss://PUBLIC_HOST/vonage/media-stream`,
  `content-type: audio/l16;rate=16000`, with the stream token and the call's uuid as endpoint
  `headers`: Vonage hands them back in `websocket:connected` (carriers/vonage.py).
- Authentication: with ``VONAGE_SIGNATURE_SECRET`` every webhook must carry Vonage's signed JWT
  (`Authorization: Bearer …`, HS256 over the signature secret, checked with Vonage's own
  `vonage-jwt`; a body's SHA-256 must match its `payload_hash` claim). Vonage does not sign the
  WebSocket upgrade; the stream proves itself with the single-use token only a signed answer got.
- Control: with ``VONAGE_APPLICATION_ID`` and ``VONAGE_PRIVATE_KEY`` (the PEM, or a path to it in
  ``VONAGE_PRIVATE_KEY_PATH``), hang-up and transfer through the official `vonage-voice` client.
- Playout: Vonage plays every binary message as one 20 ms frame, so audio must reach it in whole
  frames: the bridge paces it by clock (capabilities.marks is False) rather than writing model deltas
  as they come, and Vonage's `notify` (which the codec speaks) is not needed for the ledger.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
import orjson

from telephony_bridge.audio.formats import L16_8K, L16_16K
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
from telephony_bridge.carriers.vonage import CALL_ID_HEADER, VonageCodec, content_type_of, is_uuid

__all__ = ["PLAYOUT_LEAD_MS", "VonageCallControl", "VonageCarrier", "connect_ncco", "signature_is_valid"]

# What the bridge keeps queued at Vonage ahead of the caller's ear when it paces by clock; the
# truncation bound is the difference between this and Vonage's real jitter buffer (not published).
PLAYOUT_LEAD_MS: Final = 80.0
MAX_TOKEN_AGE_S: Final = 300  # Vonage's JWT `iat`: a replayed webhook older than this is refused


def signature_is_valid(secret: str, authorization: str | None, body: bytes, now: float | None = None) -> bool:
    """Whether `authorization` (`Bearer <JWT>`) is Vonage's signature over this request: HS256 with
    the signature secret, issued within MAX_TOKEN_AGE_S, and for a request with a body, a
    `payload_hash` claim equal to the body's SHA-256. Missing or malformed is invalid, never raises."""
    if not secret or not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    from vonage_jwt.verify_jwt import verify_signature  # type: ignore[import-untyped]

    try:
        if not verify_signature(token.strip(), secret):
            return False
        claims = jwt.decode(
            token.strip(), secret, algorithms=["HS256"], options={"require": ["iat"]}, leeway=MAX_TOKEN_AGE_S
        )
    except Exception:  # vonage-jwt wraps every decoding failure (expired, malformed) in its own error
        return False
    issued = claims.get("iat")
    if not isinstance(issued, int | float):
        return False
    if now is not None and abs(now - issued) > MAX_TOKEN_AGE_S:
        return False
    if body:
        expected = hashlib.sha256(body).hexdigest()
        claimed = claims.get("payload_hash")
        if not isinstance(claimed, str) or not hmac.compare_digest(claimed.lower(), expected):
            return False
    return True


def connect_ncco(stream_url: str, headers: Mapping[str, str], content_type: str = "audio/l16;rate=16000") -> str:
    """The NCCO connecting the call to the bridge's WebSocket; `headers` come back in `websocket:connected`."""
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream url must be a ws:// or wss:// URL, got {stream_url!r}")
    endpoint = {"type": "websocket", "uri": stream_url, "content-type": content_type, "headers": dict(headers)}
    return orjson.dumps([{"action": "connect", "endpoint": [endpoint]}]).decode()


class VonageCallControl:
    """Hang-up and transfer through Vonage's Voice API (`vonage-voice`; blocking, so in a thread)."""

    def __init__(self, voice: Any) -> None:
        self._voice = voice  # vonage_voice.Voice

    async def hangup(self, call_id: str) -> None:
        await asyncio.to_thread(self._voice.hangup, call_id)

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        from vonage_voice import Connect, PhoneEndpoint, SipEndpoint  # type: ignore[import-untyped]

        sip = to.lower().startswith(("sip:", "sips:"))
        endpoint: Any = SipEndpoint(uri=to) if sip else PhoneEndpoint(number=to.lstrip("+"))
        if caller_id:
            action = Connect(endpoint=[endpoint], from_=caller_id.lstrip("+"))
        else:
            action = Connect(endpoint=[endpoint], randomFromNumber=True)
        await asyncio.to_thread(self._voice.transfer_call_ncco, call_id, [action])

    async def dial(self, request: DialRequest) -> str:
        raise NotImplementedError("Vonage outbound dialing is not wired into the bridge yet")


class VonageCarrier(Carrier):
    name = "vonage"
    prefixes = ("/vonage",)
    answer_methods = ("GET", "POST")
    body_types = ("application/json",)
    signature_header = "Authorization (Vonage signed JWT)"
    secret_names = ("VONAGE_SIGNATURE_SECRET",)
    sdk_modules = ("vonage_jwt.verify_jwt", "vonage_voice", "vonage_http_client")
    capabilities = Capabilities(
        audio_formats=(L16_16K, L16_8K),
        marks=False,
        clear=True,
        dtmf_in=True,
        dtmf_out=False,
        hangup=True,
        transfer=True,
        dial=False,
        playout_lead_ms=PLAYOUT_LEAD_MS,
    )

    # The call being answered, between read_answer and answer_document of one request (the stream
    # must name its call, and only the answer request knows it). Per task, so concurrent answers
    # never see each other's.
    def __init__(self, config: Mapping[str, str]) -> None:
        super().__init__(config)
        self._answering: contextvars.ContextVar[str | None] = contextvars.ContextVar("vonage_answering", default=None)

    def new_codec(self) -> VonageCodec:
        return VonageCodec()

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        secret = self.secret
        # A GET's query is not covered by Vonage's JWT (only a body is, by payload_hash): docs/carriers/vonage.md
        # says to set the answer URL's method to POST.
        if secret is not None and not signature_is_valid(
            secret, request.headers.get("authorization"), request.body, now=time.time()
        ):
            raise AnswerRefused(403, "forbidden", forbidden=True)
        uuid, number = request.form.get("uuid"), request.form.get("to")
        if not uuid or not number:
            raise AnswerRefused(400, "a Vonage answer webhook needs uuid and to")
        if not is_uuid(uuid):
            raise AnswerRefused(400, "uuid is not a Vonage call uuid")
        self._answering.set(uuid)
        caller = request.form.get("from", "")
        # Vonage sends E.164 without the plus; routes are written with it.
        return AnswerRequest(call_id=uuid, caller=_plus(caller), number=_plus(number))

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        call_id = self._answering.get()
        if call_id is None:
            raise ValueError("answer_document follows read_answer of the same request")
        headers = {STREAM_TOKEN_PARAMETER: token, CALL_ID_HEADER: call_id}
        return HttpAnswer(
            connect_ncco(stream_url, headers, content_type_of(self.capabilities.audio_formats[0])), "application/json"
        )

    def reject_document(self) -> HttpAnswer:
        # An NCCO with no action ends the call; `reject` is not an NCCO action.
        return HttpAnswer("[]", "application/json")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        # Vonage signs no upgrade. The NCCO's headers (the token among them) arrive in the first
        # message, after the upgrade: accept it, and the session refuses a start without a valid
        # single-use token. A signed JWT on the upgrade, where a proxy adds one, is checked too.
        secret = self.secret
        authorization = headers.get("authorization")
        if secret is not None and authorization:
            return signature_is_valid(secret, authorization, b"")
        return secret is not None

    def call_control(self) -> VonageCallControl | None:
        application_id = self.config.get("VONAGE_APPLICATION_ID")
        key = self.config.get("VONAGE_PRIVATE_KEY")
        key_path = self.config.get("VONAGE_PRIVATE_KEY_PATH")
        if not key and key_path:
            key = Path(key_path).read_text()
        if not (application_id and key):
            return None
        from vonage_http_client import Auth, HttpClient, HttpClientOptions  # type: ignore[import-untyped]
        from vonage_voice import Voice

        options = HttpClientOptions(api_host=self.config.get("VONAGE_API_HOST") or "api.nexmo.com", timeout=10)
        return VonageCallControl(Voice(HttpClient(Auth(application_id=application_id, private_key=key), options)))


def _plus(number: str) -> str:
    return "+" + number if number.isdigit() else number
