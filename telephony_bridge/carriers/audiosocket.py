"""Asterisk's AudioSocket protocol (`AudioSocket(uuid,host:port)` in a dialplan), sans-I/O.

Asterisk is the TCP client. The stream is a sequence of frames, each a 3-byte header — kind
(u8) and payload length (u16, big-endian) — and the payload:

| kind | payload |
|---|---|
| 0x01 | the call's UUID, 16 bytes; the first frame |
| 0x10 | audio: signed linear 16-bit little-endian, 8 kHz mono (20 ms = 320 bytes) |
| 0x03 | one DTMF digit, ASCII |
| 0x00 | hang-up (no payload); either side may send it |
| 0xff | an error (Asterisk puts a one-byte code in it) |

The bridge sends 0x10 frames back, paced by the sender every 20 ms: Asterisk writes each frame to
the channel as it arrives, without re-timing. There are no marks and nothing to clear: to stop
playing, the bridge stops sending.

TCP has no message boundaries, so this module has two pieces: `FrameReader` cuts the byte stream
into whole frames whatever the reads' sizes (and never buffers more than one bounded frame), and
`AudioSocketCodec.parse` reads one whole frame into a carrier-neutral event. The transport
(server/audiosocket.py) hands the session one whole frame per `receive()`, as a WebSocket hands
one message.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.carriers.base import AudioReceived, CallStarted, DtmfReceived, StreamEnded
from telephony_bridge.carriers.errors import CarrierProtocolError

__all__ = [
    "ERROR_CODES",
    "FRAME_MS",
    "HANGUP_FRAME",
    "HEADER_BYTES",
    "KIND_AUDIO",
    "KIND_DTMF",
    "KIND_ERROR",
    "KIND_HANGUP",
    "KIND_UUID",
    "MAX_PAYLOAD",
    "AudioSocketCodec",
    "FrameReader",
    "frame",
]

KIND_HANGUP: Final = 0x00
KIND_UUID: Final = 0x01
KIND_DTMF: Final = 0x03
KIND_AUDIO: Final = 0x10
KIND_ERROR: Final = 0xFF
HEADER_BYTES: Final = 3
FRAME_MS: Final = 20
# A 20 ms frame is 320 bytes; Asterisk sends one per voice frame it reads (at most a few hundred
# milliseconds of audio, with some codecs). A frame declaring more than this is skipped unread
# rather than buffered: the header's u16 would otherwise let a peer hold 64 KiB per read.
MAX_PAYLOAD: Final = 8192
HANGUP_FRAME: Final = bytes((KIND_HANGUP, 0, 0))
# Asterisk's res_audiosocket error codes (the payload of a 0xff frame).
ERROR_CODES: Final[dict[int, str]] = {
    0x00: "no error",
    0x01: "hang-up",
    0x02: "frame forwarding failed",
    0x04: "out of memory",
}
_DIGITS: Final = frozenset(b"0123456789*#ABCDabcd")


def frame(kind: int, payload: bytes = b"") -> bytes:
    """One frame: header and payload (the payload at most 65535 bytes)."""
    if not 0 <= kind <= 0xFF or len(payload) > 0xFFFF:
        raise ValueError(f"an AudioSocket frame has a kind of one byte and at most 65535 bytes ({len(payload)})")
    return bytes((kind, len(payload) >> 8, len(payload) & 0xFF)) + payload


class FrameReader:
    """Bytes of the TCP stream in, whole frames out, across reads of any size.

    A frame whose declared payload exceeds `max_payload` is not buffered: its payload is skipped
    as it arrives and its header alone is returned, which `AudioSocketCodec.parse` refuses (the
    declared length does not match), so the stream stays in step and the call goes on."""

    __slots__ = ("_buffer", "_max_payload", "_skip")

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self._max_payload = max_payload
        self._skip = 0  # payload bytes of an oversized frame still to drop

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of their frame (at most a header plus `max_payload`)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        view = memoryview(data)
        if self._skip:
            dropped = min(self._skip, len(view))
            self._skip -= dropped
            view = view[dropped:]
        buffer = self._buffer
        buffer += view
        start = 0
        while len(buffer) - start >= HEADER_BYTES:
            length = (buffer[start + 1] << 8) | buffer[start + 2]
            if length > self._max_payload:
                frames.append(bytes(buffer[start : start + HEADER_BYTES]))
                available = len(buffer) - start - HEADER_BYTES
                if available >= length:
                    start += HEADER_BYTES + length
                    continue
                self._skip = length - available
                start = len(buffer)
                break
            end = start + HEADER_BYTES + length
            if end > len(buffer):
                break
            frames.append(bytes(buffer[start:end]))
            start = end
        if start:
            del buffer[:start]
        return frames


class AudioSocketCodec:
    """One AudioSocket stream: `parse` one whole frame (see FrameReader); audio out as 0x10 frames.

    Nothing in the stream names the dialed number or the caller: the listener the call arrived on
    does (`number`, server/audiosocket.py), and CallStarted carries it."""

    audio_event = AudioReceived

    __slots__ = ("_call_id", "_caller", "_number")

    def __init__(self, number: str = "", caller: str = "") -> None:
        self._number = number
        self._caller = caller
        self._call_id: str | None = None

    @property
    def started(self) -> bool:
        return self._call_id is not None

    def parse(self, message: str | bytes) -> Any:
        if type(message) is not bytes:
            raise CarrierProtocolError(f"audiosocket: a frame is bytes, not {type(message).__name__}")
        if len(message) < HEADER_BYTES:
            raise CarrierProtocolError(f"audiosocket: a frame of {len(message)} bytes has no header")
        kind = message[0]
        length = (message[1] << 8) | message[2]
        if len(message) - HEADER_BYTES != length:
            if length > MAX_PAYLOAD:
                raise CarrierProtocolError(
                    f"audiosocket: frame of kind 0x{kind:02x} declares {length} bytes, over the "
                    f"{MAX_PAYLOAD}-byte limit; skipped"
                )
            raise CarrierProtocolError(
                f"audiosocket: frame of kind 0x{kind:02x} declares {length} bytes and carries "
                f"{len(message) - HEADER_BYTES}"
            )
        if kind == KIND_AUDIO:
            if self._call_id is None:
                raise CarrierProtocolError(f"audiosocket: {length} bytes of audio before the UUID frame")
            if not length or length % 2:
                raise CarrierProtocolError(f"audiosocket: audio frame of {length} bytes (an even number is needed)")
            return AudioReceived(message[HEADER_BYTES:])
        if kind == KIND_UUID:
            return self._started(message[HEADER_BYTES:])
        if kind == KIND_HANGUP:
            return StreamEnded()
        if kind == KIND_ERROR:
            code = message[HEADER_BYTES] if length else None
            meaning = "" if code is None else f" 0x{code:02x} ({ERROR_CODES.get(code, 'unknown')})"
            return StreamEnded(f"Asterisk reported an AudioSocket error{meaning}")
        if self._call_id is None:
            raise CarrierProtocolError(f"audiosocket: frame of kind 0x{kind:02x} before the UUID frame")
        if kind == KIND_DTMF:
            if length != 1 or message[HEADER_BYTES] not in _DIGITS:
                raise CarrierProtocolError(f"audiosocket: DTMF frame that is not one digit ({length} bytes)")
            return DtmfReceived(chr(message[HEADER_BYTES]).upper())
        raise CarrierProtocolError(f"audiosocket: unknown frame kind 0x{kind:02x} ({length} bytes)")

    def _started(self, payload: bytes) -> CallStarted:
        if self._call_id is not None:
            raise CarrierProtocolError("audiosocket: a second UUID frame")
        if len(payload) != 16:
            raise CarrierProtocolError(f"audiosocket: UUID frame of {len(payload)} bytes (16 are needed)")
        call_id = str(uuid.UUID(bytes=payload))
        self._call_id = call_id
        return CallStarted(
            call_id=call_id, stream_id=call_id, audio_format=L16_8K, caller=self._caller, number=self._number
        )

    def audio(self, payload: bytes) -> bytes:
        """0x10 frames of `payload` (the Playout paces 20 ms frames, so normally one)."""
        if len(payload) <= 0xFFFF:
            return bytes((KIND_AUDIO, len(payload) >> 8, len(payload) & 0xFF)) + payload
        step = 0xFFFF - 1  # whole samples in each frame
        return b"".join(frame(KIND_AUDIO, payload[i : i + step]) for i in range(0, len(payload), step))

    def mark(self, name: str) -> bytes:
        raise NotImplementedError("AudioSocket has no marks: the bridge paces it by clock")

    def clear(self) -> bytes:
        return b""  # nothing to clear: what Asterisk got plays; the bridge stops sending (capabilities.clear is False)

    def hangup(self) -> bytes:
        return HANGUP_FRAME
