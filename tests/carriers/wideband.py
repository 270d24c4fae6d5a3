"""A tiny fake carrier, "wideband": the carrier seam shown with a shape unlike Twilio's.

Its stream carries L16 16 kHz as binary WebSocket frames, has no marks (what the caller heard is
known by the bridge's clock) and, in one variant, no clear either; its answer endpoint answers
JSON, and the stream's token travels in the stream URL's query. It is what a new carrier costs:
this file (codec, answer endpoint, capabilities) and one line in the carrier registry (here the
test's runtime, `runtime.carrier_types`), with nothing changed above `carriers/`.

Wire: the phone sends `{"event": "start", "call": ID}` as text, then binary audio frames,
`{"event": "dtmf", "digit": "5"}` and `{"event": "stop"}`; the bridge sends binary audio and, in
the clearing variant, `{"event": "clear"}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import orjson

from telephony_bridge.audio.formats import L16_16K
from telephony_bridge.carriers.base import (
    AnswerRefused,
    AnswerRequest,
    AudioReceived,
    CallStarted,
    Capabilities,
    Carrier,
    DtmfReceived,
    HttpAnswer,
    HttpRequest,
    StreamEnded,
)
from telephony_bridge.carriers.errors import CarrierProtocolError

PLAYOUT_LEAD_MS: Final = 60.0  # what the fake phone buffers before it plays (its jitter buffer)
_CALL_ID = re.compile(r"wb-[0-9a-f]{16}")


class WidebandCodec:
    audio_event = AudioReceived

    def __init__(self) -> None:
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def parse(self, message: str | bytes) -> object:
        if type(message) is bytes:
            if not self._started:
                raise CarrierProtocolError("wideband: audio before start")
            if len(message) % 2:
                raise CarrierProtocolError("wideband: L16 frame of an odd number of bytes")
            return AudioReceived(message)
        try:
            event = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise CarrierProtocolError("wideband: text frame is not JSON") from None
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "start" and not self._started:
            call_id = event.get("call")
            if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
                raise CarrierProtocolError("wideband: start without a valid call id")
            self._started = True
            return CallStarted(call_id=call_id, stream_id=call_id, audio_format=L16_16K)
        if kind == "dtmf" and self._started and event.get("digit") in tuple("0123456789*#"):
            return DtmfReceived(event["digit"])
        if kind == "stop":
            return StreamEnded()
        raise CarrierProtocolError(f"wideband: unexpected {str(kind)[:20]!r} message")

    def audio(self, payload: bytes) -> bytes:
        return payload

    def mark(self, name: str) -> bytes:
        raise NotImplementedError("wideband has no marks")

    def clear(self) -> str:
        return '{"event":"clear"}'


class WidebandCarrier(Carrier):
    """No marks, no clear: the bridge stops sending at a barge-in and truncates by clock."""

    name = "wideband"
    prefixes = ("/wideband",)
    capabilities = Capabilities(audio_formats=(L16_16K,), marks=False, clear=False, playout_lead_ms=PLAYOUT_LEAD_MS)

    @property
    def secured(self) -> bool:
        return False  # loopback only, like any carrier without its secret

    def new_codec(self) -> WidebandCodec:
        return WidebandCodec()

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        call_id = request.form.get("call", "")
        if not _CALL_ID.fullmatch(call_id) or not request.form.get("to"):
            raise AnswerRefused(400, "wideband answers need call and to")
        return AnswerRequest(call_id=call_id, caller=request.form.get("from", ""), number=request.form["to"])

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        return HttpAnswer(orjson.dumps({"stream": f"{stream_url}?bridge_token={token}"}).decode(), "application/json")

    def reject_document(self) -> HttpAnswer:
        return HttpAnswer('{"reject": true}', "application/json")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        return False


class ClearingWidebandCarrier(WidebandCarrier):
    """The same, with a clear: at a barge-in the phone drops what it buffers."""

    name = "wideband-clear"
    prefixes = ("/wideband-clear",)
    capabilities = Capabilities(audio_formats=(L16_16K,), marks=False, clear=True, playout_lead_ms=PLAYOUT_LEAD_MS)
