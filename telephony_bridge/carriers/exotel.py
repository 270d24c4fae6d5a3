"""Exotel's Voicebot applet stream (bidirectional), sans-I/O.

Exotel is the WebSocket client; JSON text frames, snake_case: `connected`, then `start
{sequence_number, stream_sid, start: {stream_sid, call_sid, account_sid, from, to,
custom_parameters, media_format: {encoding: "base64", sample_rate, bit_rate}}}`, then `media
{stream_sid, media: {chunk, timestamp, payload}}` (base64 of 16-bit little-endian PCM, 8 kHz by
default, 16 kHz when the URL asks `sample-rate=16000`), `dtmf {dtmf: {digit, duration}}`, `mark
{mark: {name}}` (the echo of the bridge's mark once the audio before it has played) and `stop`.

Bridge → Exotel: `media {stream_sid, media: {payload}}`, `mark {stream_sid, mark: {name}}`,
`clear {stream_sid}`. Exotel wants media in multiples of 320 bytes: the codec sends whole
multiples and carries the remainder (under 320 bytes, 20 ms at 8 kHz) to the next media message
rather than padding it, so what Exotel plays is exactly what the model said, at most 20 ms late.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

import orjson
import pybase64

from telephony_bridge.audio.formats import L16_8K, L16_16K, AudioFormat
from telephony_bridge.carriers.base import STREAM_TOKEN_PARAMETER, CallStarted, DtmfReceived, MarkEchoed, StreamEnded
from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt
from telephony_bridge.carriers.json_frames import audio_payload, json_object

__all__ = ["CHUNK_BYTES", "MAX_MESSAGE_CHARS", "ExotelCodec", "ExotelMedia", "is_exotel_id"]

CHUNK_BYTES: Final = 320
MAX_MESSAGE_CHARS: Final = 256 * 1024  # Exotel's largest media is 100 KB of audio (≈137 KB base64)
RATES: Final[dict[int, AudioFormat]] = {8000: L16_8K, 16000: L16_16K}
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{7,63}")
_DIGITS: Final = frozenset("0123456789*#")


class ExotelMedia(NamedTuple):
    payload: bytes
    timestamp_ms: int | None = None


def is_exotel_id(value: object) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def _int(value: object) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    return None


class ExotelCodec:
    audio_event = ExotelMedia

    __slots__ = ("_carry", "_prefix", "_stream_sid")

    def __init__(self) -> None:
        self._stream_sid: str | None = None
        self._prefix = ""
        self._carry = b""

    @property
    def started(self) -> bool:
        return self._stream_sid is not None

    def parse(self, message: str | bytes) -> Any:
        event = json_object("exotel", message, MAX_MESSAGE_CHARS)
        kind = event.get("event")
        if kind == "media":
            return self._media(event)
        if kind == "connected":
            if self._stream_sid is not None:
                raise CarrierProtocolError("exotel: connected after start")
            return None
        if kind == "start":
            return self._start(event)
        if self._stream_sid is None:
            raise CarrierProtocolError(f"exotel: {excerpt(kind)} before start")
        stream_sid = event.get("stream_sid")
        if stream_sid is not None and stream_sid != self._stream_sid:
            raise CarrierProtocolError(f"exotel: {excerpt(kind)} for another stream {excerpt(stream_sid)}")
        if kind == "dtmf":
            dtmf = event.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if type(digit) is not str or len(digit) != 1 or digit not in _DIGITS:
                raise CarrierProtocolError(f"exotel: dtmf without a digit: {excerpt(dtmf)}")
            return DtmfReceived(digit)
        if kind == "mark":
            mark = event.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if type(name) is not str or not name:
                raise CarrierProtocolError(f"exotel: mark without a name: {excerpt(mark)}")
            return MarkEchoed(name)
        if kind == "stop":
            return StreamEnded("caller hung up")
        raise CarrierProtocolError(f"exotel: unexpected event {excerpt(kind)}")

    def _media(self, event: dict[str, Any]) -> ExotelMedia:
        if self._stream_sid is None:
            raise CarrierProtocolError("exotel: media before start")
        media = event.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if type(payload) is not str:
            raise CarrierProtocolError("exotel: media without a payload")
        audio = audio_payload("exotel", payload)
        if len(audio) % 2:
            raise CarrierProtocolError(f"exotel: slin media of an odd {len(audio)} bytes")
        assert isinstance(media, dict)
        return ExotelMedia(audio, _int(media.get("timestamp")))

    def _start(self, event: dict[str, Any]) -> CallStarted:
        if self._stream_sid is not None:
            raise CarrierProtocolError("exotel: a second start")
        start = event.get("start")
        if not isinstance(start, dict):
            raise CarrierProtocolError("exotel: start without its start object")
        stream_sid, call_sid = start.get("stream_sid", event.get("stream_sid")), start.get("call_sid")
        if not is_exotel_id(stream_sid) or not is_exotel_id(call_sid):
            raise CarrierProtocolError(f"exotel: start without a valid stream_sid/call_sid: {excerpt(call_sid)}")
        media_format = start.get("media_format")
        rate = _int(media_format.get("sample_rate")) if isinstance(media_format, dict) else 8000
        audio_format = RATES.get(rate) if rate is not None else None
        encoding = media_format.get("encoding", "base64") if isinstance(media_format, dict) else "base64"
        if audio_format is None or encoding != "base64":
            raise CarrierProtocolError(f"exotel: start with an unsupported media_format {excerpt(media_format)}")
        custom = start.get("custom_parameters")
        parameters = {str(k): v for k, v in custom.items() if type(v) is str} if isinstance(custom, dict) else {}
        token = parameters.pop(STREAM_TOKEN_PARAMETER, None)
        self._stream_sid = stream_sid
        opening = orjson.dumps({"event": "media", "stream_sid": stream_sid}).decode()[:-1]
        self._prefix = opening + ',"media":{"payload":"'
        caller, number = start.get("from"), start.get("to")
        return CallStarted(
            call_id=str(call_sid),
            stream_id=str(stream_sid),
            audio_format=audio_format,
            custom_parameters=parameters,
            token=token,
            caller=caller if type(caller) is str else "",
            number=number if type(number) is str else "",
        )

    def _started(self) -> str:
        if self._stream_sid is None:
            raise RuntimeError("nothing can be sent before the stream's start")
        return self._stream_sid

    def audio(self, payload: bytes) -> str:
        """One media message of whole 320-byte chunks. A remainder under half a chunk waits for the
        next message; a larger one is padded with silence. Either way a mark after this message is
        echoed at most 10 ms away from the end of this payload: a carried remainder plays after
        it (the ledger then counts up to 10 ms not yet heard), padding plays before it (the echo
        comes up to 10 ms late, which the ledger does not count as heard). Carrying everything
        would put that error at up to 20 ms; padding everything would add up to 20 ms of silence
        into every model delta."""
        self._started()
        pending = self._carry + payload if self._carry else payload
        remainder = len(pending) % CHUNK_BYTES
        if remainder and (remainder >= CHUNK_BYTES // 2 or len(pending) == remainder):
            self._carry = b""
            pending += b"\x00" * (CHUNK_BYTES - remainder)
        elif remainder:
            self._carry = pending[-remainder:]
            pending = pending[:-remainder]
        else:
            self._carry = b""
        return self._prefix + pybase64.b64encode_as_string(pending) + '"}}'

    def mark(self, name: str) -> str:
        return orjson.dumps({"event": "mark", "stream_sid": self._started(), "mark": {"name": name}}).decode()

    def clear(self) -> str:
        self._carry = b""  # the rest of an interrupted answer is never played
        return orjson.dumps({"event": "clear", "stream_sid": self._started()}).decode()
