"""Plivo's bidirectional audio stream (`<Stream bidirectional="true">`), sans-I/O.

Plivo is the WebSocket client; every message is a JSON text frame with an `event`. There is no
`connected`: the first message is `start {sequenceNumber, start: {callId, streamId, accountId,
tracks, mediaFormat: {encoding, sampleRate}}, extra_headers}`, then `media {sequenceNumber (a
number), streamId, media: {track, timestamp, chunk, payload (base64)}}` interleaved with `dtmf
{dtmf: {digit}}`, `playedStream {name}` (the echo of a `checkpoint`, once the audio queued before
it has played; never for audio a `clearAudio` dropped) and `clearedAudio`; `stop` when it ends.

Bridge → Plivo: `playAudio {media: {contentType, sampleRate, payload}}`, `checkpoint {streamId, name}`,
`clearAudio {streamId}`.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

import orjson
import pybase64

from telephony_bridge.audio.formats import L16_8K, L16_16K, ULAW_8K, AudioFormat
from telephony_bridge.carriers.base import STREAM_TOKEN_PARAMETER, CallStarted, DtmfReceived, MarkEchoed, StreamEnded
from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt
from telephony_bridge.carriers.json_frames import audio_payload, json_object

__all__ = ["CONTENT_TYPES", "MAX_MESSAGE_CHARS", "PlivoCodec", "PlivoMedia", "is_plivo_id", "parse_extra_headers"]

MAX_MESSAGE_CHARS: Final = 256 * 1024  # a 20 ms frame is ~300 chars; a long one is a broken peer
# (encoding, sampleRate) as Plivo names them → the stream's format, and back for playAudio.
CONTENT_TYPES: Final[dict[tuple[str, int], AudioFormat]] = {
    ("audio/x-mulaw", 8000): ULAW_8K,
    ("audio/x-l16", 8000): L16_8K,
    ("audio/x-l16", 16000): L16_16K,
}
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{7,63}")  # Plivo: RFC 4122 uuids
_DIGITS: Final = frozenset("0123456789*#ABCD")


class PlivoMedia(NamedTuple):
    """A caller frame: the codec's own audio event (AudioReceived's fields)."""

    payload: bytes
    timestamp_ms: int | None = None


def is_plivo_id(value: object) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def parse_extra_headers(value: object) -> dict[str, str]:
    """Plivo's `extra_headers` ("k1=v1,k2=v2", as the <Stream> gave them; sometimes a JSON object)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items() if isinstance(v, str)}
    if type(value) is not str or not value:
        return {}
    headers: dict[str, str] = {}
    for pair in value.split(","):
        name, eq, text = pair.partition("=")
        if eq and name.strip():
            headers[name.strip()] = text.strip()
    return headers


def _int(value: object) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    return None


class PlivoCodec:
    audio_event = PlivoMedia

    __slots__ = ("_audio_format", "_play_prefix", "_stream_id")

    def __init__(self) -> None:
        self._stream_id: str | None = None
        self._audio_format: AudioFormat | None = None
        self._play_prefix = ""

    @property
    def started(self) -> bool:
        return self._stream_id is not None

    def parse(self, message: str | bytes) -> Any:
        event = json_object("plivo", message, MAX_MESSAGE_CHARS)
        kind = event.get("event")
        if kind == "media":
            return self._media(event)
        if kind == "start":
            return self._start(event)
        if self._stream_id is None:
            raise CarrierProtocolError(f"plivo: {excerpt(kind)} before start")
        stream_id = event.get("streamId")
        if stream_id is not None and stream_id != self._stream_id:
            raise CarrierProtocolError(f"plivo: {excerpt(kind)} for another stream {excerpt(stream_id)}")
        if kind == "dtmf":
            dtmf = event.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if type(digit) is not str or len(digit) != 1 or digit.upper() not in _DIGITS:
                raise CarrierProtocolError(f"plivo: dtmf without a digit: {excerpt(dtmf)}")
            return DtmfReceived(digit.upper())
        if kind == "playedStream":
            name = event.get("name")
            if type(name) is not str or not name:
                raise CarrierProtocolError(f"plivo: playedStream without a name: {excerpt(name)}")
            return MarkEchoed(name)
        if kind == "clearedAudio":
            return None
        if kind == "stop":
            return StreamEnded("caller hung up")
        raise CarrierProtocolError(f"plivo: unexpected event {excerpt(kind)}")

    def _media(self, event: dict[str, Any]) -> PlivoMedia:
        if self._stream_id is None:
            raise CarrierProtocolError("plivo: media before start")
        media = event.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if type(payload) is not str:
            raise CarrierProtocolError("plivo: media without a payload")
        assert isinstance(media, dict)
        if media.get("track", "inbound") != "inbound":
            raise CarrierProtocolError(f"plivo: media of track {excerpt(media.get('track'))}")
        audio = audio_payload("plivo", payload)
        assert self._audio_format is not None
        if self._audio_format is not ULAW_8K and len(audio) % 2:
            raise CarrierProtocolError(f"plivo: L16 media of an odd {len(audio)} bytes")
        # media.timestamp is not documented as a media clock (gap filling would read jitter as loss)
        return PlivoMedia(audio)

    def _start(self, event: dict[str, Any]) -> CallStarted:
        if self._stream_id is not None:
            raise CarrierProtocolError("plivo: a second start")
        start = event.get("start")
        if not isinstance(start, dict):
            raise CarrierProtocolError("plivo: start without its start object")
        call_id, stream_id = start.get("callId"), start.get("streamId")
        if not is_plivo_id(call_id) or not is_plivo_id(stream_id):
            raise CarrierProtocolError(f"plivo: start without a valid callId/streamId: {excerpt(call_id)}")
        media_format = start.get("mediaFormat")
        encoding = media_format.get("encoding") if isinstance(media_format, dict) else None
        rate = _int(media_format.get("sampleRate")) if isinstance(media_format, dict) else None
        audio_format = CONTENT_TYPES.get((encoding.lower(), rate)) if type(encoding) is str and rate else None
        if audio_format is None:
            raise CarrierProtocolError(f"plivo: start with an unsupported mediaFormat {excerpt(media_format)}")
        headers = parse_extra_headers(event.get("extra_headers", start.get("extra_headers")))
        token = headers.pop(STREAM_TOKEN_PARAMETER, None)
        self._stream_id, self._audio_format = stream_id, audio_format
        content_type = next(name for (name, r), known in CONTENT_TYPES.items() if known == audio_format and r == rate)
        self._play_prefix = (
            f'{{"event":"playAudio","media":{{"contentType":"{content_type}","sampleRate":{rate},"payload":"'
        )
        return CallStarted(
            call_id=str(call_id),
            stream_id=str(stream_id),
            audio_format=audio_format,
            custom_parameters=headers,
            token=token,
        )

    def _started(self) -> str:
        if self._stream_id is None:
            raise RuntimeError("nothing can be sent before the stream's start")
        return self._stream_id

    def audio(self, payload: bytes) -> str:
        self._started()
        return self._play_prefix + pybase64.b64encode_as_string(payload) + '"}}'

    def mark(self, name: str) -> str:
        return orjson.dumps({"event": "checkpoint", "streamId": self._started(), "name": name}).decode()

    def clear(self) -> str:
        return orjson.dumps({"event": "clearAudio", "streamId": self._started()}).decode()
