"""Telnyx media streaming (TeXML `<Connect><Stream bidirectionalMode="rtp">`) codec, sans-I/O.

Wire (shared/reference/carriers.md; Telnyx's media-streaming WebSocket reference): JSON text
frames, snake_case. Telnyx → bridge: `connected` → `start` {sequence_number, stream_id,
start: {call_control_id, from, to, custom_parameters, media_format: {encoding, sample_rate,
channels}}} → `media` {stream_id, media: {track, chunk, timestamp, payload}} interleaved with
`dtmf` {dtmf: {digit}}, `mark` {mark: {name}} and `error` → `stop`. Bridge → Telnyx: `media`
{media: {payload}} (RTP payload, base64, 20 ms to 30 s a message), `mark` {mark: {name}}, `clear`.

Telnyx does not guarantee frame order: a media frame may overtake another, and a DTMF frame may
arrive before media sent earlier. The codec delivers each frame when it arrives (holding audio back
to reorder it would add latency to every frame); a frame's `timestamp` goes to gap filling only when
it moves forward, so a late frame is played as it comes rather than read as a jump back in time,
and a DTMF frame whose sequence number was already seen (a retransmission) is dropped.

Call ids: Telnyx's call_control_id is `v<N>:<base64url>`; the bridge names files and logs after
call ids, which allow no colon, so the seam's call id is `v<N>_<base64url>` (`call_id_of`), and
`call_control_id_of` turns it back for the Call Control API.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

import orjson
import pybase64

from telephony_bridge.audio.formats import ALAW_8K, ULAW_8K, AudioFormat
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AudioReceived,
    CallStarted,
    DtmfReceived,
    MarkEchoed,
    StreamEnded,
)
from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt
from telephony_bridge.carriers.json_frames import json_object

__all__ = ["MAX_MESSAGE_SIZE", "TelnyxCodec", "call_control_id_of", "call_id_of", "is_call_control_id"]

MAX_MESSAGE_SIZE: Final = 64 * 1024
_FORMATS: Final[dict[tuple[object, object, object], AudioFormat]] = {
    ("PCMU", 8000, 1): ULAW_8K,
    ("PCMA", 8000, 1): ALAW_8K,
}
_DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")
_CALL_CONTROL_ID: Final = re.compile(r"v[0-9]{1,2}:[A-Za-z0-9_-]{1,120}")
_SEAM_CALL_ID: Final = re.compile(r"v[0-9]{1,2}_[A-Za-z0-9_-]{1,120}")
_STREAM_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


def is_call_control_id(text: object) -> bool:
    return type(text) is str and _CALL_CONTROL_ID.fullmatch(text) is not None


def call_id_of(call_control_id: str) -> str:
    """The seam's call id for a Telnyx call_control_id ("v3:abc" → "v3_abc")."""
    if not is_call_control_id(call_control_id):
        raise ValueError(f"not a Telnyx call_control_id: {call_control_id!r:.60}")
    return call_control_id.replace(":", "_", 1)


def call_control_id_of(call_id: str) -> str:
    """Telnyx's call_control_id for a seam call id ("v3_abc" → "v3:abc")."""
    if type(call_id) is not str or _SEAM_CALL_ID.fullmatch(call_id) is None:
        raise ValueError(f"not a Telnyx call id: {call_id!r:.60}")
    return call_id.replace("_", ":", 1)


def _fail(event: str, reason: str) -> CarrierProtocolError:
    return CarrierProtocolError(f"telnyx {event}: {reason}")


def _number(value: object) -> int | None:
    """A non-negative integer Telnyx may send as a JSON string ("12"); None when it is not one."""
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and 0 < len(value) < 19 and value.isascii() and value.isdigit():
        return int(value)
    return None


class TelnyxCodec:
    """One Telnyx media stream. `parse` raises CarrierProtocolError and leaves its state as it was."""

    audio_event = AudioReceived

    __slots__ = ("_clear", "_dtmf_seen", "_last_ts", "_stopped", "_stream_id")

    def __init__(self) -> None:
        self._stream_id: str | None = None
        self._stopped = False
        self._last_ts = -1
        self._dtmf_seen: set[int] = set()
        self._clear = '{"event":"clear"}'

    @property
    def started(self) -> bool:
        return self._stream_id is not None

    @property
    def stream_id(self) -> str | None:
        return self._stream_id

    def parse(self, message: str | bytes) -> object:
        if type(message) is not str:
            size = len(message) if isinstance(message, (bytes, bytearray, memoryview)) else 0
            raise CarrierProtocolError(f"telnyx: binary frame of {size} bytes; Telnyx sends JSON text frames")
        if len(message) > MAX_MESSAGE_SIZE or (
            len(message) * 4 > MAX_MESSAGE_SIZE and len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_SIZE
        ):
            raise CarrierProtocolError(f"telnyx: message of {len(message)} characters exceeds {MAX_MESSAGE_SIZE} bytes")
        msg = json_object("telnyx", message, None)  # its size is bounded in bytes, above
        event = msg.get("event")
        if self._stopped:
            raise CarrierProtocolError(f"telnyx: {excerpt(event)} message after stop")
        if event == "media":
            return self._media(msg)
        if event == "mark":
            self._check_stream(msg, "mark")
            mark = msg.get("mark")
            name = mark.get("name") if type(mark) is dict else None
            if type(name) is not str:
                raise _fail("mark", f"field 'mark.name' must be a string, got {excerpt(name)}")
            return MarkEchoed(name)
        if event == "dtmf":
            return self._dtmf(msg)
        if event == "start":
            return self._start(msg)
        if event == "connected":
            return None
        if event == "stop":
            if self._stream_id is not None:
                self._check_stream(msg, "stop")
            self._stopped = True
            return StreamEnded("caller hung up")
        if event == "error":
            payload = msg.get("payload")
            raise _fail("error", f"Telnyx reported {excerpt(payload, 120)}")
        if event is None:
            raise CarrierProtocolError("telnyx: message has no 'event' field")
        raise CarrierProtocolError(f"telnyx: unknown event {excerpt(event)}")

    def _check_stream(self, msg: dict, event: str) -> None:
        if self._stream_id is None:
            raise _fail(event, "received before start")
        sid = msg.get("stream_id", self._stream_id)  # Telnyx names the stream on most frames; tolerate its absence
        if sid != self._stream_id:
            raise _fail(event, f"stream_id {excerpt(sid)} does not match the started stream {self._stream_id}")

    def _media(self, msg: dict) -> AudioReceived:
        self._check_stream(msg, "media")
        media = msg.get("media")
        if type(media) is not dict:
            raise _fail("media", f"field 'media' must be an object, got {excerpt(media)}")
        track = media.get("track", "inbound")
        if type(track) is not str or not track.startswith("inbound"):
            raise _fail("media", f"track {excerpt(track)} is not the caller's (inbound)")
        encoded = media.get("payload")
        if type(encoded) is not str:
            raise _fail("media", f"field 'media.payload' must be a string, got {excerpt(encoded)}")
        try:
            payload = binascii.a2b_base64(encoded, strict_mode=True)
        except ValueError as exc:
            raise _fail("media", f"field 'media.payload' is not valid base64 ({exc})") from None
        ts = _number(media.get("timestamp"))
        if ts is not None and ts > self._last_ts:
            self._last_ts = ts
            return AudioReceived(payload, ts)
        return AudioReceived(payload, None)  # no clock, or a late frame: played as it comes

    def _dtmf(self, msg: dict) -> DtmfReceived | None:
        self._check_stream(msg, "dtmf")
        dtmf = msg.get("dtmf")
        digit = dtmf.get("digit") if type(dtmf) is dict else None
        if type(digit) is not str or digit not in _DTMF_DIGITS:
            raise _fail("dtmf", f"field 'dtmf.digit' is not a DTMF digit: {excerpt(digit)}")
        seq = _number(msg.get("sequence_number"))
        if seq is not None:
            if seq in self._dtmf_seen:
                return None  # the same press delivered twice
            if len(self._dtmf_seen) < 4096:
                self._dtmf_seen.add(seq)
        return DtmfReceived(digit)

    def _start(self, msg: dict) -> CallStarted:
        if self._stream_id is not None:
            raise _fail("start", f"second start for stream {self._stream_id}")
        stream_id = msg.get("stream_id")
        if type(stream_id) is not str or _STREAM_ID.fullmatch(stream_id) is None:
            raise _fail("start", f"stream_id {excerpt(stream_id)} is not a stream id")
        start = msg.get("start")
        if type(start) is not dict:
            raise _fail("start", f"field 'start' must be an object, got {excerpt(start)}")
        ccid = start.get("call_control_id")
        if type(ccid) is not str or not is_call_control_id(ccid):
            raise _fail("start", f"start.call_control_id {excerpt(ccid)} is not a Telnyx call control id")
        fmt = start.get("media_format")
        if type(fmt) is not dict:
            raise _fail("start", f"field 'start.media_format' must be an object, got {excerpt(fmt)}")
        key = (fmt.get("encoding"), fmt.get("sample_rate"), fmt.get("channels", 1))
        audio_format: AudioFormat | None = _FORMATS.get(key) if all(type(v) in (str, int) for v in key) else None
        if audio_format is None:
            raise _fail("start", f"unsupported media format {excerpt(key)}; PCMU or PCMA 8000 Hz mono")
        params = start.get("custom_parameters") or {}
        if type(params) is not dict or any(type(k) is not str or type(v) is not str for k, v in params.items()):
            raise _fail("start", f"field 'start.custom_parameters' must map names to strings, got {excerpt(params)}")
        caller, number = start.get("from", ""), start.get("to", "")
        parameters = dict(params)
        token = parameters.pop(STREAM_TOKEN_PARAMETER, None)
        self._stream_id = stream_id  # commit only once the whole frame is known good
        return CallStarted(
            call_id=call_id_of(ccid),
            stream_id=stream_id,
            audio_format=audio_format,
            custom_parameters=parameters,
            token=token,
            caller=caller if type(caller) is str else "",
            number=number if type(number) is str else "",
        )

    def _started(self) -> None:
        if self._stream_id is None:
            raise RuntimeError("nothing can be sent before the stream's start")

    def audio(self, payload: bytes) -> str:
        self._started()
        return '{"event":"media","media":{"payload":"' + pybase64.b64encode_as_string(payload) + '"}}'

    def mark(self, name: str) -> str:
        self._started()
        if not isinstance(name, str):
            raise TypeError("mark name must be a string")
        return orjson.dumps({"event": "mark", "mark": {"name": name}}).decode()

    def clear(self) -> str:
        self._started()
        return self._clear
