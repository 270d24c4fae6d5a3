"""A browser softphone over WebRTC as a carrier in the seam: the codec of its stream, sans-I/O.

The softphone page (server/softphone.py) offers an SDP with the microphone's track and a data
channel; the bridge answers, and its transport (server/softphone_transport.py) turns the peer
connection into the session's `MediaTransport`, the way the AudioSocket listener turns a TCP
connection into one. What crosses that transport, and what this codec reads:

- **bytes**: caller audio, already decoded at the edge (Opus 48 kHz or PCMU 8 kHz on the wire,
  decoded by aiortc) and resampled once to the stream's format, L16 24 kHz: the model's own rate,
  so the uplink copies and the Playout writes model audio through unconverted. Out, the same:
  L16 24 kHz that aiortc encodes to Opus (or PCMU) for the wire.
- **text**: JSON messages. The first is the transport's own `start` (the call id and the
  signalling exchange's single-use token, never anything the page wrote); after it, what the page
  sends over its data channel: `dtmf` (a keypad digit) and `hangup`. The page's playout reports
  (`playout`) are the transport's business, read with `read_playout_report`.

Playout: the bridge paces 20 ms frames by its clock (voxengine/playout.py's clock mode), no marks,
no clear: the browser plays every frame it gets from its jitter buffer, so what was sent is heard,
``PLAYOUT_LEAD_MS`` later. The page reports how much agent audio it played (the browser's own
RTCInboundRtpStreamStats), which the transport compares with what it sent (docs/softphone.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from telephony_bridge.audio.formats import L16_24K
from telephony_bridge.carriers.base import (
    AudioReceived,
    CallStarted,
    Capabilities,
    DtmfReceived,
    ListenerCarrier,
    StreamEnded,
)
from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt

__all__ = [
    "MAX_CONTROL_CHARS",
    "PLAYOUT_LEAD_MS",
    "STREAM_FORMAT",
    "WIRE_CODECS",
    "PlayoutReport",
    "WebRtcCarrier",
    "WebRtcCodec",
    "hangup_message",
    "read_playout_report",
    "start_message",
]

STREAM_FORMAT: Final = L16_24K
# What the SDP offers on the wire, in order of preference: the browser's Opus, and G.711 μ-law for
# peers without it. Both are decoded (and encoded) at the edge by aiortc.
WIRE_CODECS: Final = ("opus/48000/2", "PCMU/8000")
# What the browser buffers before playing a frame the bridge sends: the outgoing track's one frame,
# the wire (loopback or a LAN: ~0), and Chromium's jitter buffer at its floor on a clean network
# (NetEq keeps 20-60 ms), plus its audio output's block. The page's reports measure it per call.
PLAYOUT_LEAD_MS: Final = 60.0
MAX_CONTROL_CHARS: Final = 1024  # a data channel message longer than this is refused unread
_DIGITS: Final = frozenset("0123456789*#ABCD")


def start_message(call_id: str, token: str, number: str, caller: str) -> str:
    """The transport's first message: the call the signalling exchange admitted, with its token."""
    return orjson.dumps(
        {"type": "start", "call_id": call_id, "token": token, "number": number, "caller": caller}
    ).decode()


def hangup_message(reason: str) -> str:
    """What the bridge tells the page when it ends the call (over the data channel)."""
    return orjson.dumps({"type": "hangup", "reason": reason}).decode()


@dataclass(frozen=True, slots=True)
class PlayoutReport:
    """What the page says it played of the bridge's audio, from the browser's statistics."""

    played_ms: float  # agent audio played out (samples decoded, less concealment), since the call began
    delay_ms: float  # the jitter buffer's mean delay (jitterBufferDelay / jitterBufferEmittedCount)


def _object(message: str) -> Mapping[str, Any]:
    if len(message) > MAX_CONTROL_CHARS:
        raise CarrierProtocolError(f"webrtc: control message of {len(message)} characters refused")
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise CarrierProtocolError(f"webrtc: control message is not JSON: {excerpt(message)}") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise CarrierProtocolError(f"webrtc: control message without a type: {excerpt(message)}")
    return value


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0.0 <= number < 1e12 else None  # also refuses NaN


def read_playout_report(message: str) -> PlayoutReport | None:
    """The page's playout report in a data channel message; None for any other message.
    CarrierProtocolError for a report whose figures are not non-negative numbers."""
    if '"playout"' not in message:  # most messages are not reports: skip the parse
        return None
    value = _object(message)
    if value["type"] != "playout":
        return None
    played, delay = _finite(value.get("played_ms")), _finite(value.get("delay_ms", 0.0))
    if played is None or delay is None:
        raise CarrierProtocolError(f"webrtc: playout report with bad figures: {excerpt(message)}")
    return PlayoutReport(played_ms=played, delay_ms=delay)


class WebRtcCodec:
    """One softphone call's stream: see the module docstring for what crosses it."""

    audio_event = AudioReceived

    __slots__ = ("_call_id",)

    def __init__(self) -> None:
        self._call_id: str | None = None

    @property
    def started(self) -> bool:
        return self._call_id is not None

    def parse(self, message: str | bytes) -> Any:
        if type(message) is bytes:
            if self._call_id is None:
                raise CarrierProtocolError(f"webrtc: {len(message)} bytes of audio before the start")
            if not message or len(message) % 2:
                raise CarrierProtocolError(f"webrtc: audio of {len(message)} bytes (whole samples are needed)")
            return AudioReceived(message)
        if not isinstance(message, str):
            raise CarrierProtocolError(f"webrtc: a message is text or bytes, not {type(message).__name__}")
        value = _object(message)
        kind = value["type"]
        if self._call_id is None:
            if kind != "start":
                raise CarrierProtocolError(f"webrtc: {excerpt(kind)} before the start")
            return self._started(value)
        if kind == "dtmf":
            digit = value.get("digit")
            if not isinstance(digit, str) or digit.upper() not in _DIGITS or len(digit) != 1:
                raise CarrierProtocolError(f"webrtc: DTMF that is not one keypad digit: {excerpt(digit)}")
            return DtmfReceived(digit.upper())
        if kind == "hangup":
            return StreamEnded()
        if kind == "playout":
            return None  # the transport reads these (read_playout_report); nothing for the session
        raise CarrierProtocolError(f"webrtc: unknown control message {excerpt(kind)}")

    def _started(self, value: Mapping[str, Any]) -> CallStarted:
        call_id, token, number, caller = (value.get(name) for name in ("call_id", "token", "number", "caller"))
        if not (isinstance(call_id, str) and isinstance(token, str) and isinstance(number, str)):
            raise CarrierProtocolError("webrtc: a start without its call id and token")
        if not call_id or not isinstance(caller, str):
            raise CarrierProtocolError("webrtc: a start without its call id and token")
        self._call_id = call_id
        return CallStarted(
            call_id=call_id, stream_id=call_id, audio_format=STREAM_FORMAT, caller=caller, number=number, token=token
        )

    def audio(self, payload: bytes) -> bytes:
        return payload  # L16 24 kHz to the outgoing track, which encodes it for the wire

    def mark(self, name: str) -> bytes:
        raise NotImplementedError("WebRTC has no marks: the bridge paces it by clock")

    def clear(self) -> bytes:
        return b""  # the browser plays what it has; the bridge stops sending (capabilities.clear is False)


class WebRtcCarrier(ListenerCarrier):
    """The browser softphone. No carrier webhook: calls are offered by the softphone page's signalling
    (server/softphone.py), admitted by the console's access rule and routed by the number it dials."""

    name = "webrtc"
    how_calls_come = "the softphone's signalling (/softphone/offer)"
    signature_header = "console access (CONSOLE_TOKEN or API_KEYS)"
    secret_names = ("CONSOLE_TOKEN", "API_KEYS")
    capabilities = Capabilities(
        audio_formats=(STREAM_FORMAT,),
        marks=False,  # bridge-paced: heard by clock, PLAYOUT_LEAD_MS behind
        clear=False,
        playout_lead_ms=PLAYOUT_LEAD_MS,
    )  # DTMF in only: no DTMF out, hang-up, transfer or dial (the defaults)

    @property
    def secured(self) -> bool:
        return bool(self.config.get("CONSOLE_TOKEN") or self.config.get("API_KEYS"))

    def new_codec(self) -> WebRtcCodec:
        return WebRtcCodec()
