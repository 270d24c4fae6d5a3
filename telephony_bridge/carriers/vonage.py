"""Vonage's WebSocket media protocol (NCCO `connect` to a `websocket` endpoint), sans-I/O.

Vonage is the WebSocket client. Its first message is a text frame
`{"event": "websocket:connected", "content-type": "audio/l16;rate=16000", …}` carrying, as
top-level fields, the `headers` the NCCO gave the endpoint: the bridge puts its stream token and
the call's uuid there, since nothing else in the stream names the call. Then caller audio arrives
as binary frames of 16-bit little-endian linear PCM (20 ms: 640 bytes at 16 kHz, 320 at 8 kHz),
interleaved with text events: `websocket:dtmf {digit, duration}`, `websocket:notify {payload}` (the
echo of a `notify` the bridge sent, once the audio before it has played) and `websocket:cleared`
(after a `clear`). The stream ends when Vonage closes the socket: there is no stop message.

Bridge → Vonage: binary frames of exactly 20 ms, `{"action": "clear"}` and
`{"action": "notify", "payload": {"mark": NAME}}`. The bridge paces Vonage audio in 20 ms frames
(see `vonage_carrier`), but the last frame of each model delta is short; the codec carries such
a remainder over to the next frame instead of padding it (padding would add silence and drift
the bridge's clock from what Vonage plays), so a frame is always whole, and when less than a
frame is pending the message is empty (0 bytes: no audio).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from telephony_bridge.audio.formats import L16_8K, L16_16K, AudioFormat
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AudioReceived,
    CallStarted,
    DtmfReceived,
    MarkEchoed,
)
from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt

__all__ = [
    "CALL_ID_HEADER",
    "CONTENT_TYPES",
    "FRAME_MS",
    "MAX_TEXT_CHARS",
    "VonageCodec",
    "content_type_of",
    "is_uuid",
]

# The NCCO header naming the call (Vonage's call uuid): `websocket:connected` carries it back.
CALL_ID_HEADER: Final = "call_uuid"
FRAME_MS: Final = 20
MAX_TEXT_CHARS: Final = 16 * 1024  # a control event is a few hundred bytes; refuse before parsing
CONTENT_TYPES: Final[dict[str, AudioFormat]] = {"audio/l16;rate=16000": L16_16K, "audio/l16;rate=8000": L16_8K}
_UUID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{7,63}")  # Vonage: RFC 4122 uuids; accept their hyphenated hex
_DIGITS: Final = frozenset("0123456789*#ABCDabcd")
_CLEAR: Final = '{"action":"clear"}'


def is_uuid(value: object) -> bool:
    return type(value) is str and _UUID.fullmatch(value) is not None


def content_type_of(audio_format: AudioFormat) -> str:
    for name, known in CONTENT_TYPES.items():
        if known == audio_format:
            return name
    raise ValueError(f"Vonage streams L16 at 8 or 16 kHz, not {audio_format}")


class VonageCodec:
    """One Vonage WebSocket stream: binary L16 frames both ways, JSON control events."""

    audio_event = AudioReceived

    __slots__ = ("_audio_format", "_carry", "_frame_bytes")

    def __init__(self) -> None:
        self._audio_format: AudioFormat | None = None
        self._frame_bytes = 0
        self._carry = b""  # less than a frame, waiting for the rest

    @property
    def started(self) -> bool:
        return self._audio_format is not None

    def parse(self, message: str | bytes) -> Any:
        if type(message) is bytes:
            if self._audio_format is None:
                raise CarrierProtocolError(f"vonage: {len(message)} bytes of audio before websocket:connected")
            if not message or len(message) % 2:
                raise CarrierProtocolError(f"vonage: L16 frame of {len(message)} bytes (an even number is needed)")
            return AudioReceived(message)
        if type(message) is not str:
            raise CarrierProtocolError(f"vonage: a frame is text or bytes, not {type(message).__name__}")
        if len(message) > MAX_TEXT_CHARS:
            raise CarrierProtocolError(f"vonage: text frame of {len(message)} chars")
        try:
            event = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise CarrierProtocolError(f"vonage: text frame is not JSON: {excerpt(message)}") from None
        if not isinstance(event, dict):
            raise CarrierProtocolError(f"vonage: text frame is not a JSON object: {excerpt(message)}")
        kind = event.get("event")
        if kind == "websocket:connected":
            return self._connected(event)
        if self._audio_format is None:
            raise CarrierProtocolError(f"vonage: {excerpt(kind)} before websocket:connected")
        if kind == "websocket:dtmf":
            digit = event.get("digit")
            if type(digit) is not str or digit not in _DIGITS or len(digit) != 1:
                raise CarrierProtocolError(f"vonage: websocket:dtmf without a digit: {excerpt(digit)}")
            return DtmfReceived(digit.upper())
        if kind == "websocket:notify":
            payload = event.get("payload")
            name = payload.get("mark") if isinstance(payload, dict) else None
            if type(name) is not str or not name:
                raise CarrierProtocolError(f"vonage: websocket:notify without a mark: {excerpt(payload)}")
            return MarkEchoed(name)
        if kind in ("websocket:cleared", "websocket:media:update"):
            return None  # acknowledgements: nothing for the bridge
        raise CarrierProtocolError(f"vonage: unexpected event {excerpt(kind)}")

    def _connected(self, event: dict[str, Any]) -> CallStarted:
        if self._audio_format is not None:
            raise CarrierProtocolError("vonage: a second websocket:connected")
        content_type = event.get("content-type")
        audio_format = CONTENT_TYPES.get(content_type.replace(" ", "").lower()) if type(content_type) is str else None
        if audio_format is None:
            raise CarrierProtocolError(f"vonage: websocket:connected with content-type {excerpt(content_type)}")
        call_id = event.get(CALL_ID_HEADER)
        if not is_uuid(call_id):
            raise CarrierProtocolError(f"vonage: websocket:connected without a call uuid ({CALL_ID_HEADER} header)")
        token = event.get(STREAM_TOKEN_PARAMETER)
        parameters = {
            name: value
            for name, value in event.items()
            if type(value) is str and name not in ("event", "content-type", CALL_ID_HEADER, STREAM_TOKEN_PARAMETER)
        }
        self._audio_format = audio_format
        self._frame_bytes = audio_format.bytes_per_ms * FRAME_MS
        return CallStarted(
            call_id=str(call_id),
            stream_id=str(call_id),
            audio_format=audio_format,
            custom_parameters=parameters,
            token=token if type(token) is str else None,
        )

    def audio(self, payload: bytes) -> bytes:
        """One binary message: whole 20 ms frames of what is pending (a remainder waits for the next
        call; when none is whole, the message is empty)."""
        if self._audio_format is None:
            raise RuntimeError("nothing can be sent before websocket:connected")
        pending = self._carry + payload if self._carry else payload
        whole = len(pending) - len(pending) % self._frame_bytes
        self._carry = pending[whole:]
        return pending[:whole] if whole != len(pending) else pending

    def mark(self, name: str) -> str:
        return orjson.dumps({"action": "notify", "payload": {"mark": name}}).decode()

    def clear(self) -> str:
        self._carry = b""  # dropped with the rest of the answer
        return _CLEAR
