"""What the phone simulator needs to know of a carrier: its simulator profile (the carrier seam's
last piece, beside the codec, the answer endpoint and the control API under `carriers/`).

A profile is the carrier's side of the wire, played by the simulator: it asks the bridge's answer
endpoint for the call the way the carrier does, reads the answer document, opens the stream and
speaks the carrier's stream protocol (start, caller audio, DTMF, stop; and back: the bridge's
audio, marks and clears). It is pure: messages in and out as text or bytes, no sockets. The
simulator (`testing/simulator*.py`) drives any profile; `PROFILES` names them for
`call_flow.call(carrier=…)` and `telephony-bridge call --carrier …`.

A profile type is made once per call as `Profile(base_url=…, secret=…, account_id=…)` (all
keywords: the bridge's base URL, the carrier's signing secret or None for unsigned requests, the
account id to send or None for a made-up one). The start messages take sequence number 1; later
messages get the numbers the simulator passes. Optional, read with getattr when present:
`new_call_id()` / `new_stream_id()` (ids in the carrier's shape), `stream_headers(target)` (the
upgrade's headers, e.g. a signature), `answer_problems(target)` ((errors, warnings) real carrier
would have with the answer), `answer_content_types` and `signature_header` (for messages).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from telephony_bridge.audio.formats import AudioFormat

__all__ = [
    "AnswerDeclined",
    "AnswerRequestSpec",
    "BridgeAudio",
    "BridgeClear",
    "BridgeMark",
    "CarrierProfile",
    "PhoneEvent",
    "StreamTarget",
    "json_message",
    "media_or_mark",
]


class AnswerDeclined(ValueError):
    """The answer document is well formed and connects no stream (a rejection, a hang-up): the call
    ends there, and that is no protocol error. `str()` says what the document did."""


@dataclass(frozen=True, slots=True)
class AnswerRequestSpec:
    """The HTTP request a carrier makes when a call arrives (signed when the profile has a secret)."""

    method: str
    path: str  # below the bridge's base URL: "/telnyx/incoming-call"
    form: Mapping[str, str] = field(default_factory=dict)  # urlencoded body (POST) or query (GET)
    json: object = None  # a JSON body instead of a form
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where the answer document says to stream, and what the stream's start must carry back."""

    url: str  # ws:// or wss://, with the query the document gave
    parameters: Mapping[str, str] = field(default_factory=dict)  # custom parameters (the bridge's token among them)


@dataclass(frozen=True, slots=True)
class BridgeAudio:
    payload: bytes  # in the profile's audio format


@dataclass(frozen=True, slots=True)
class BridgeMark:
    name: str


@dataclass(frozen=True, slots=True)
class BridgeClear:
    pass


PhoneEvent = BridgeAudio | BridgeMark | BridgeClear | None  # None: nothing the phone acts on


class CarrierProfile(Protocol):
    name: str  # the carrier's name in the registry ("twilio", "telnyx", …)
    audio_format: AudioFormat  # what the phone sends and plays
    echoes_marks: bool  # the phone echoes each mark once the audio before it has played
    frame_ms: int  # how much caller audio one message carries (20 for most carriers)

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec: ...

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        """The stream to open, or ValueError saying why the document is not an answer with a stream
        (a rejection, an error status, a document of another carrier)."""
        ...

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        """What the phone sends first on the open stream (connected/start…)."""
        ...

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> str | bytes: ...

    def dtmf_message(self, digit: str, sequence: int) -> str | bytes | None:
        """None where the carrier's stream carries no DTMF."""
        ...

    def stop_message(self, sequence: int) -> str | bytes | None: ...

    def mark_echo(self, name: str, sequence: int) -> str | bytes: ...

    def parse(self, message: str | bytes) -> PhoneEvent:
        """One message from the bridge; ValueError for one the carrier would not accept."""
        ...


# --- what a phone reads of a JSON-text bridge (shared by the profiles whose messages have this shape)


def json_message(carrier: str, message: str | bytes) -> dict[str, Any]:
    """A bridge's JSON text message as an object; ValueError says what the carrier would refuse."""
    if isinstance(message, bytes):
        raise ValueError(f"binary frame of {len(message)} bytes: {carrier} expects JSON text")
    try:
        msg = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise ValueError(f"not JSON: {message[:80]!r}") from None
    if not isinstance(msg, dict):
        raise ValueError(f"not a JSON object: {message[:80]!r}")
    return msg


def media_or_mark(event: object, msg: Mapping[str, Any], message: str) -> BridgeAudio | BridgeMark | None:
    """A `media` (`media.payload`, base64) or `mark` (`mark.name`) message of Twilio's shape, which
    Telnyx and SignalWire share; None for any other event."""
    if event == "media":
        media = msg.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            raise ValueError(f"media without media.payload string: {message[:80]!r}")
        try:
            return BridgeAudio(base64.b64decode(payload, validate=True))
        except binascii.Error:
            raise ValueError(f"media payload is not base64: {payload[:40]!r}") from None
    if event == "mark":
        mark = msg.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"mark without mark.name string: {message[:80]!r}")
        return BridgeMark(name)
    return None
