"""Exotel as a carrier in the seam: the Voicebot applet's dynamic URL, Basic auth or an IP allow-list.

- Answer: the Voicebot applet's URL is set to the bridge's `https://PUBLIC_HOST/exotel/incoming-call`,
  an HTTPS endpoint Exotel asks for the stream's WebSocket URL at call time (`GET`, with the call
  in the query: `CallSid`, `CallFrom`/`From`, `CallTo`/`To`). The bridge answers
  `{"url": "wss://PUBLIC_HOST/exotel/media-stream?bridge_token=…"}`: the token is the URL's one
  custom parameter, which Exotel hands back in `start.custom_parameters` (the session also reads
  it from the URL). A static `wss://` URL in the applet cannot work: every stream must be bound to
  an answer the bridge gave.
- Authentication (fail closed once either is configured): ``EXOTEL_STREAM_AUTH`` = `user:password`
  — Exotel's Basic auth (`wss://user:password@host/…`, sent as `Authorization: Basic`): required on
  the answer request and on the stream upgrade, and written into the stream URL the bridge
  answers with; ``EXOTEL_ALLOW`` = comma-separated CIDRs Exotel calls from — the answer request
  must come from one of them (the stream upgrade is then bound by the token the answer handed out).
- Control: none. Exotel has no official Python SDK and no API to hang up or transfer a call in
  a Voicebot applet: the bridge closing the stream ends the applet, and the flow's next applet
  (a Hangup, or a Connect for a transfer configured in the flow) runs.
- Playout: marks (Exotel echoes `mark` once the audio before it has played), clear; 16-bit PCM at
  8 kHz (L16_8K), media in multiples of 320 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import orjson

from telephony_bridge.audio.formats import L16_8K, L16_16K
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AnswerRefused,
    AnswerRequest,
    Capabilities,
    Carrier,
    HttpAnswer,
    HttpRequest,
)
from telephony_bridge.carriers.exotel import ExotelCodec, is_exotel_id
from telephony_bridge.carriers.peer_networks import IpNetwork, parse_networks, peer_in

__all__ = ["ExotelCarrier", "allowed_networks", "basic_auth_is_valid"]


def allowed_networks(text: str | None) -> tuple[IpNetwork, ...]:
    """EXOTEL_ALLOW → networks; a malformed entry is a configuration error (ValueError), never ignored."""
    return parse_networks(text, "EXOTEL_ALLOW")


def basic_auth_is_valid(expected: str, authorization: str | None) -> bool:
    """Whether `authorization` is `Basic base64(expected)`, compared in constant time."""
    if not authorization:
        return False
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected.encode("utf-8"))


class ExotelCarrier(Carrier):
    name = "exotel"
    prefixes = ("/exotel",)
    answer_methods = ("GET", "POST")
    signature_header = "Authorization (Basic) or EXOTEL_ALLOW"
    secret_names = ("EXOTEL_STREAM_AUTH", "EXOTEL_ALLOW")
    capabilities = Capabilities(
        audio_formats=(L16_8K, L16_16K),
        marks=True,
        clear=True,
        dtmf_in=True,
        dtmf_out=False,
        hangup=False,
        transfer=False,
        dial=False,
    )

    def __init__(self, config: Mapping[str, str]) -> None:
        super().__init__(config)
        self._networks = allowed_networks(config.get("EXOTEL_ALLOW"))
        credentials = config.get("EXOTEL_STREAM_AUTH") or None
        if credentials is not None and ":" not in credentials:
            raise ValueError("EXOTEL_STREAM_AUTH is user:password")
        self._credentials = credentials

    @property
    def secured(self) -> bool:
        return self._credentials is not None or bool(self._networks)

    def new_codec(self) -> ExotelCodec:
        return ExotelCodec()

    def _client_allowed(self, host: str | None) -> bool:
        if not self._networks:
            return True
        return peer_in(self._networks, host)

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        credentials = self._credentials
        if credentials is not None and not basic_auth_is_valid(credentials, request.headers.get("authorization")):
            raise AnswerRefused(403, "forbidden", forbidden=True)
        if not self._client_allowed(request.client_host):
            raise AnswerRefused(403, "forbidden", forbidden=True)
        form = request.form
        call_sid = form.get("CallSid")
        number = form.get("CallTo") or form.get("To")
        if not call_sid or not number:
            raise AnswerRefused(400, "an Exotel stream URL request needs CallSid and CallTo")
        if not is_exotel_id(call_sid):
            raise AnswerRefused(400, "CallSid is not an Exotel call sid")
        return AnswerRequest(
            call_id=call_sid, caller=_e164(form.get("CallFrom") or form.get("From") or ""), number=_e164(number)
        )

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        parts = urlsplit(stream_url)
        if parts.scheme not in ("wss", "ws") or not parts.netloc:
            raise ValueError(f"stream url must be a ws:// or wss:// URL, got {stream_url!r}")
        netloc = parts.netloc
        if self._credentials is not None:
            user, _, password = self._credentials.partition(":")
            netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{netloc}"
        url = urlunsplit((parts.scheme, netloc, parts.path, urlencode({STREAM_TOKEN_PARAMETER: token}), ""))
        return HttpAnswer(orjson.dumps({"url": url}).decode(), "application/json")

    def reject_document(self) -> HttpAnswer:
        # Exotel has no "reject" answer for a stream URL: an error makes the applet fail and the
        # flow go on to its next applet (a Hangup).
        return HttpAnswer('{"error":"no route for this number"}', "application/json", status=404)

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        if self._credentials is not None:
            return basic_auth_is_valid(self._credentials, headers.get("authorization"))
        # Allow-list only: the upgrade's address is not known here; the stream is bound at its
        # start by the single-use token only an allowed answer request obtained.
        return bool(self._networks)


def _e164(number: str) -> str:
    """Exotel sends Indian numbers as 0XXXXXXXXXX; routes are E.164."""
    digits = number.strip()
    if digits.startswith("0") and digits[1:].isdigit() and len(digits) == 11:
        return "+91" + digits[1:]
    if digits.isdigit():
        return "+" + digits
    return digits
