"""One local-engine connection as a sans-I/O state machine (in the manner of h11).

Feed it client events and the time; it returns the server events to send. It never touches a
socket, a thread or a clock:

    session = EngineSession("ga", script)
    send(session.start(now_ms))
    send(session.receive_text(message, now_ms))      # for each client message
    send(session.tick(now_ms))                        # when session.next_deadline_ms() is reached
    for request in session.take_speech_requests():    # synthesise elsewhere (a thread), then:
        send(session.speech_ready(request.id, pcm16, now_ms))

Audio is delivered faster than real time (`realtime_factor`, 4x by default, like the real API's
bursts): chunk k of a response is due at start + k * chunk_ms / realtime_factor. `speak` may be
given to synthesise inline (unit tests); the server passes None and synthesises in a thread.

What the simulated model says comes from the `Script` (see script.py); everything else is meant
to behave like the OpenAI Realtime API in the session's dialect ("ga" or "beta").
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import random
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable

from telephony_bridge.audio import g711

from .config import (
    BYTES_PER_MS,
    SAMPLE_RATE,
    ClientError,
    Dialect,
    Settings,
    default_session,
    merge_session_update,
    settings_of,
    validate_response_params,
)
from .script import Script, Turn, render_followup
from .vad import SpeechStarted, SpeechStopped, VoiceActivityDetector

__all__ = ["EngineSession", "SpeechRequest", "MAX_MESSAGE_BYTES"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20
MIN_COMMIT_MS = 100

_CLIENT_TYPES = frozenset({
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
    "output_audio_buffer.clear", "conversation.item.create", "conversation.item.delete",
    "conversation.item.retrieve", "conversation.item.truncate", "response.create", "response.cancel",
})
_BETA_ONLY_CLIENT_TYPES = frozenset({"transcription_session.update"})

_NAMES = {
    "ga": {"audio_delta": "response.output_audio.delta", "audio_done": "response.output_audio.done",
           "transcript_delta": "response.output_audio_transcript.delta",
           "transcript_done": "response.output_audio_transcript.done",
           "text_delta": "response.output_text.delta", "text_done": "response.output_text.done"},
    "beta": {"audio_delta": "response.audio.delta", "audio_done": "response.audio.done",
             "transcript_delta": "response.audio_transcript.delta",
             "transcript_done": "response.audio_transcript.done",
             "text_delta": "response.text.delta", "text_done": "response.text.done"},
}
# Internal content kinds -> wire content types.
_CONTENT_TYPE = {
    "ga": {"input_text": "input_text", "input_audio": "input_audio", "input_image": "input_image",
           "text": "output_text", "audio": "output_audio"},
    "beta": {"input_text": "input_text", "input_audio": "input_audio", "item_reference": "item_reference",
             "text": "text", "audio": "audio"},
}
_WIRE_TO_KIND = {"input_text": "input_text", "input_audio": "input_audio", "input_image": "input_image",
                 "item_reference": "item_reference", "output_text": "text", "output_audio": "audio",
                 "text": "text", "audio": "audio"}
_ROLE_CONTENT = {
    "ga": {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"},
           "assistant": {"output_text", "output_audio"}},
    "beta": {"user": {"input_text", "input_audio", "item_reference"}, "system": {"input_text"},
             "assistant": {"text", "audio"}},
}
_SAY_INSTRUCTION = re.compile(r"^\s*say(?:\s+exactly)?\s*:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """Synthesise `text` as PCM16 mono at `sample_rate` and hand it to `EngineSession.speech_ready`."""

    id: str
    text: str
    sample_rate: int
    voice: str
    speed: float


@dataclass(slots=True)
class _Content:
    kind: str  # input_text | input_audio | input_image | item_reference | text | audio
    text: str | None = None
    transcript: str | None = None
    audio: bytes = b""
    audio_format: str = "pcm16"
    image_url: str | None = None
    detail: str | None = None
    ref_id: str | None = None


@dataclass(slots=True)
class _Item:
    id: str
    type: str  # message | function_call | function_call_output
    status: str = "completed"
    role: str | None = None
    content: list[_Content] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    response_id: str | None = None  # set while the item belongs to the response in flight


@dataclass(slots=True)
class _Until:
    at_ms: float


@dataclass(slots=True)
class _AwaitSpeech:
    request: SpeechRequest
    pcm: bytes | None = None
    error: str | None = None


@dataclass(slots=True)
class _Say:
    text: str


@dataclass(slots=True)
class _Call:
    name: str
    arguments: str
    followup: str | None


@dataclass(slots=True)
class _Response:
    id: str
    plan: list[_Say | _Call]
    audio_out: bool
    output_format: str
    voice: Any
    speed: float
    in_conversation: bool
    metadata: dict[str, str] | None
    max_output_tokens: Any
    temperature: float | None
    flow: Generator[Any, Any, None] | None = None
    wait: Any = None
    output: list[_Item] = field(default_factory=list)
    open_item: _Item | None = None  # the message whose content part is still streaming
    transcript_sent: str = ""


def _chunks_of(data: bytes, size: int) -> Iterable[tuple[int, bytes]]:
    for offset in range(0, len(data), size):
        yield offset, data[offset:offset + size]


def _words(text: str) -> list[str]:
    """Transcript deltas: each word with the whitespace before it, so the deltas join to `text`."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


class EngineSession:
    def __init__(
        self,
        dialect: Dialect = "ga",
        script: Script | None = None,
        *,
        model: str | None = None,
        realtime_factor: float = 4.0,
        chunk_ms: int = 100,
        speak: Callable[[str, int, str, float], bytes] | None = None,
        seed: int | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
        if realtime_factor <= 0:
            raise ValueError("realtime_factor must be positive (math.inf: no pacing)")
        self.dialect: Dialect = dialect
        self.script = script if script is not None else Script()
        self.realtime_factor = realtime_factor
        self.chunk_ms = max(10, int(chunk_ms))
        self.max_message_bytes = max_message_bytes
        self._speak = speak
        self._random = random.Random(seed)
        self._names = _NAMES[dialect]
        self._now = 0.0
        self.session = default_session(dialect, model, self._new_id("sess_"))
        self.settings: Settings = settings_of(self.session, dialect)
        self.conversation_id = self._new_id("conv_")
        self.items: list[_Item] = []
        self._out: list[dict[str, Any]] = []
        self._speech_requests: list[SpeechRequest] = []
        self._active: _Response | None = None
        self._turn_index = 0
        self._hears_used_for: int | None = None
        self._followups: dict[str, str] = {}  # call_id -> follow-up template
        # Input audio: the uncommitted buffer, and the stream position in ms counted from all audio
        # appended during the session (what speech_started/stopped report).
        self._buffer: list[bytes] = []
        self._buffer_bytes = 0
        self._stream_bytes = 0
        self._buffer_start_ms = 0
        self._pending_user_item: str | None = None
        self._speech_onset_ms: int | None = None
        self._vad: VoiceActivityDetector | None = None
        self._rebuild_vad()
        self.responses_created = 0

    # ------------------------------------------------------------------ public driving API

    def start(self, now_ms: float = 0.0) -> list[dict[str, Any]]:
        """The events sent on connect."""
        self._now = max(self._now, now_ms)
        self._emit("session.created", session=self.session)
        return self._drain()

    def receive_text(self, message: str | bytes, now_ms: float) -> list[dict[str, Any]]:
        """A raw WebSocket message from the client."""
        self._now = max(self._now, now_ms)
        size = len(message)
        if isinstance(message, str) and size * 4 > self.max_message_bytes:
            size = len(message.encode())  # only long messages can exceed the limit in bytes
        if size > self.max_message_bytes:
            self._error(ClientError(f"Message too large: {size} bytes exceeds the limit of "
                                    f"{self.max_message_bytes} bytes.", "message_too_large"), None)
            return self._drain()
        try:
            event = json.loads(message)
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(ClientError(f"Invalid JSON: {exc}", "invalid_json"), None)
            return self._drain()
        return self.receive(event, now_ms)

    def receive(self, event: Any, now_ms: float) -> list[dict[str, Any]]:
        """A parsed client event."""
        self._now = max(self._now, now_ms)
        event_id = event.get("event_id") if isinstance(event, dict) else None
        if not isinstance(event_id, str):
            event_id = None
        try:
            self._dispatch(event)
        except ClientError as error:
            self._error(error, event_id)
        except Exception:  # an engine bug: report it like the real API's server_error, keep the session
            log.exception("local engine failed on a %r event", event.get("type") if isinstance(event, dict) else event)
            self._error(ClientError("The server had an error while processing your request.", "server_error",
                                    error_type="server_error"), event_id)
        self._pump()
        return self._drain()

    def tick(self, now_ms: float) -> list[dict[str, Any]]:
        """Advance time: emit what has become due (paced audio)."""
        self._now = max(self._now, now_ms)
        self._pump()
        return self._drain()

    def next_deadline_ms(self) -> float | None:
        """When `tick` next has something to do, or None (waiting for the client or for speech)."""
        if self._active is not None and isinstance(self._active.wait, _Until):
            return self._active.wait.at_ms
        return None

    def take_speech_requests(self) -> list[SpeechRequest]:
        requests, self._speech_requests = self._speech_requests, []
        return requests

    def speech_ready(self, request_id: str, pcm16: bytes, now_ms: float) -> list[dict[str, Any]]:
        """Synthesised speech for a request (PCM16 at the requested rate). Stale ids are ignored."""
        self._now = max(self._now, now_ms)
        wait = self._active.wait if self._active is not None else None
        if isinstance(wait, _AwaitSpeech) and wait.request.id == request_id:
            wait.pcm = pcm16
            self._pump()
        return self._drain()

    def speech_failed(self, request_id: str, message: str, now_ms: float) -> list[dict[str, Any]]:
        self._now = max(self._now, now_ms)
        wait = self._active.wait if self._active is not None else None
        if isinstance(wait, _AwaitSpeech) and wait.request.id == request_id:
            assert self._active is not None
            self._fail_speech(self._active, message)
        return self._drain()

    def _fail_speech(self, response: _Response, message: str) -> None:
        log.warning("speech synthesis failed: %s", message)
        self._stop_response(response, "failed", {"type": "failed", "error": {
            "type": "server_error", "code": "speech_synthesis_failed", "message": message}})

    @property
    def response_active(self) -> bool:
        return self._active is not None

    # ------------------------------------------------------------------ plumbing

    def _new_id(self, prefix: str) -> str:
        return prefix + "".join(self._random.choice(_ID_ALPHABET) for _ in range(21))

    def _emit(self, type_: str, **fields: Any) -> None:
        self._out.append({"type": type_, "event_id": self._new_id("event_"), **fields})

    def _drain(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def _error(self, error: ClientError, event_id: str | None) -> None:
        log.debug("client error %s: %s", error.code, error.message)
        self._emit("error", error={"type": error.error_type, "code": error.code, "message": error.message,
                                   "param": error.param, "event_id": event_id})

    def _dispatch(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise ClientError("Invalid event: expected a JSON object.", "invalid_type")
        kind = event.get("type")
        if not isinstance(kind, str):
            raise ClientError("Missing required parameter: 'type'.", "missing_required_parameter", "type")
        if kind in _BETA_ONLY_CLIENT_TYPES and self.dialect == "beta":
            raise ClientError("transcription_session.update is not supported in a realtime session.",
                              "invalid_value", "type")
        if kind not in _CLIENT_TYPES:
            supported = ", ".join(f"'{name}'" for name in sorted(_CLIENT_TYPES))
            raise ClientError(f"Invalid value: '{kind}'. Supported values are: {supported}.", "invalid_value", "type")
        handler = getattr(self, "_on_" + kind.replace(".", "_"))
        handler(event)

    @staticmethod
    def _check_event_keys(event: dict, allowed: set[str]) -> None:
        for key in event:
            if key not in allowed and key not in ("type", "event_id"):
                raise ClientError(f"Unknown parameter: '{key}'.", "unknown_parameter", key)

    # ------------------------------------------------------------------ session

    def _on_session_update(self, event: dict) -> None:
        self._check_event_keys(event, {"session"})
        if "session" not in event:
            raise ClientError("Missing required parameter: 'session'.", "missing_required_parameter", "session")
        merged = merge_session_update(self.session, event["session"], self.dialect)
        before = self.settings
        self.session = merged
        self.settings = settings_of(merged, self.dialect)
        if (before.turn_detection != self.settings.turn_detection
                or before.input_format != self.settings.input_format):
            self._rebuild_vad()
        self._emit("session.updated", session=self.session)

    def _rebuild_vad(self) -> None:
        detection = self.settings.turn_detection
        if detection is None:
            self._vad = None
            return
        self._vad = VoiceActivityDetector(
            sample_rate=SAMPLE_RATE[self.settings.input_format],
            threshold=detection["threshold"],
            prefix_padding_ms=detection["prefix_padding_ms"],
            silence_duration_ms=detection["silence_duration_ms"],
            origin_ms=self._stream_ms(),
        )
        self._vad.floor_ms = self._buffer_start_ms
        self._pending_user_item = None
        self._speech_onset_ms = None

    # ------------------------------------------------------------------ input audio

    def _stream_ms(self) -> int:
        return int(self._stream_bytes / BYTES_PER_MS[self.settings.input_format])

    def _buffer_ms(self) -> float:
        return self._buffer_bytes / BYTES_PER_MS[self.settings.input_format]

    def _on_input_audio_buffer_append(self, event: dict) -> None:
        self._check_event_keys(event, {"audio"})
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientError("Missing required parameter: 'audio'.", "missing_required_parameter", "audio")
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError("Invalid 'audio'. Expected base64-encoded audio bytes.", "invalid_value", "audio") from None
        if not raw:
            return
        self._buffer.append(raw)
        self._buffer_bytes += len(raw)
        self._stream_bytes += len(raw)
        if self._vad is None:
            return
        for vad_event in self._vad.feed(_to_pcm16(raw, self.settings.input_format)):
            if isinstance(vad_event, SpeechStarted):
                self._on_speech_started(vad_event)
            else:
                self._on_speech_stopped(vad_event)

    def _on_speech_started(self, started: SpeechStarted) -> None:
        self._pending_user_item = self._new_id("item_")
        self._speech_onset_ms = started.speech_ms
        self._emit("input_audio_buffer.speech_started", audio_start_ms=started.audio_start_ms,
                   item_id=self._pending_user_item)
        detection = self.settings.turn_detection or {}
        if self._active is not None and self._active.in_conversation and detection.get("interrupt_response", True):
            self._stop_response(self._active, "cancelled", {"type": "cancelled", "reason": "turn_detected"})

    def _on_speech_stopped(self, stopped: SpeechStopped) -> None:
        item_id = self._pending_user_item or self._new_id("item_")
        onset = self._speech_onset_ms if self._speech_onset_ms is not None else stopped.audio_end_ms
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=stopped.audio_end_ms, item_id=item_id)
        self._commit(item_id, speech_seconds=max(0, stopped.audio_end_ms - onset) / 1000, by_vad=True)
        detection = self.settings.turn_detection or {}
        if detection.get("create_response", True):
            if self._active is None:
                self._create_response({}, event_id=None)
            else:
                log.debug("turn ended while a response is active (interrupt_response off): no new response")

    def _on_input_audio_buffer_commit(self, event: dict) -> None:
        self._check_event_keys(event, set())
        buffered = self._buffer_ms()
        if buffered < MIN_COMMIT_MS:
            raise ClientError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {buffered:.2f}ms of audio.", "input_audio_buffer_commit_empty")
        item_id = self._pending_user_item or self._new_id("item_")
        self._commit(item_id, speech_seconds=buffered / 1000)

    def _on_input_audio_buffer_clear(self, event: dict) -> None:
        self._check_event_keys(event, set())
        self._reset_buffer()
        self._emit("input_audio_buffer.cleared")

    def _reset_buffer(self, reset_vad: bool = True) -> None:
        self._buffer = []
        self._buffer_bytes = 0
        self._buffer_start_ms = self._stream_ms()
        self._pending_user_item = None
        self._speech_onset_ms = None
        if self._vad is not None:
            if reset_vad:
                self._vad.reset(floor_ms=self._buffer_start_ms)
            else:  # the VAD ended the turn itself and may already be in the next one
                self._vad.floor_ms = self._buffer_start_ms

    def _commit(self, item_id: str, speech_seconds: float, by_vad: bool = False) -> None:
        audio = b"".join(self._buffer)
        self._reset_buffer(reset_vad=not by_vad)
        item = _Item(id=item_id, type="message", role="user", status="completed",
                     content=[_Content(kind="input_audio", audio=audio, audio_format=self.settings.input_format)])
        previous = self._append_item(item)
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self._announce_item(item, previous)
        if self.settings.transcription:
            transcript = self._hears() or f"[speech {speech_seconds:.1f} s]"
            item.content[0].transcript = transcript
            self._emit("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                       transcript=transcript, usage={"type": "duration", "seconds": round(speech_seconds, 3)})

    def _hears(self) -> str | None:
        """What the script says the caller says before its next turn (each turn's line used once)."""
        index = self._turn_index
        if index >= len(self.script.turns) or self._hears_used_for == index:
            return None
        hears = self.script.turns[index].hears
        if hears:
            self._hears_used_for = index
        return hears

    def _on_output_audio_buffer_clear(self, event: dict) -> None:
        # WebRTC/SIP only in the real API; over WebSocket there is no server-side playout to clear.
        self._check_event_keys(event, {"response_id"})

    # ------------------------------------------------------------------ conversation

    def _find(self, item_id: Any) -> int | None:
        for index, item in enumerate(self.items):
            if item.id == item_id:
                return index
        return None

    def _append_item(self, item: _Item, previous_item_id: str | None = None, explicit: bool = False) -> str | None:
        """Insert after `previous_item_id` ("root": at the start) or at the end; return the previous id."""
        if explicit:
            if previous_item_id == "root":
                self.items.insert(0, item)
                return None
            index = self._find(previous_item_id)
            if index is None:
                raise ClientError(f"Previous item with id '{previous_item_id}' not found.",
                                  "previous_item_not_found", "previous_item_id")
            self.items.insert(index + 1, item)
            return previous_item_id
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        return previous

    def _announce_item(self, item: _Item, previous: str | None) -> None:
        rendered = self._render_item(item)
        if self.dialect == "ga":
            self._emit("conversation.item.added", previous_item_id=previous, item=rendered)
            self._emit("conversation.item.done", previous_item_id=previous, item=rendered)
        else:
            self._emit("conversation.item.created", previous_item_id=previous, item=rendered)

    def _on_conversation_item_create(self, event: dict) -> None:
        self._check_event_keys(event, {"item", "previous_item_id"})
        raw = event.get("item")
        if not isinstance(raw, dict):
            raise ClientError("Missing required parameter: 'item'.", "missing_required_parameter", "item")
        item = self._parse_item(raw)
        previous_id = event.get("previous_item_id")
        previous = self._append_item(item, previous_id, explicit=previous_id is not None)
        self._announce_item(item, previous)

    def _parse_item(self, raw: dict) -> _Item:
        kind = raw.get("type")
        item_id = raw.get("id")
        if item_id is not None:
            if not isinstance(item_id, str) or not item_id:
                raise ClientError("Invalid 'item.id': expected a non-empty string.", "invalid_type", "item.id")
            if self._find(item_id) is not None:
                raise ClientError(f"Item with id '{item_id}' already exists.", "item_already_exists", "item.id")
        else:
            item_id = self._new_id("item_")
        common = {"type", "id", "object", "status"}
        if kind == "message":
            self._check_item_keys(raw, common | {"role", "content"})
            role = raw.get("role")
            if role not in ("user", "assistant", "system"):
                raise ClientError(f"Invalid value: {role!r}. Supported values are: 'user', 'assistant', 'system'.",
                                  "invalid_value", "item.role")
            content = raw.get("content")
            if not isinstance(content, list) or not content:
                raise ClientError("Missing required parameter: 'item.content'.", "missing_required_parameter",
                                  "item.content")
            parts = [self._parse_content(part, role, index) for index, part in enumerate(content)]
            return _Item(id=item_id, type="message", role=role, content=parts, status="completed")
        if kind == "function_call":
            self._check_item_keys(raw, common | {"call_id", "name", "arguments"})
            name, arguments = raw.get("name"), raw.get("arguments", "")
            if not isinstance(name, str) or not isinstance(arguments, str):
                raise ClientError("A function_call item needs string 'name' and 'arguments'.", "invalid_type", "item")
            call_id = raw.get("call_id") or self._new_id("call_")
            return _Item(id=item_id, type="function_call", call_id=call_id, name=name, arguments=arguments)
        if kind == "function_call_output":
            self._check_item_keys(raw, common | {"call_id", "output"})
            call_id, output = raw.get("call_id"), raw.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise ClientError("A function_call_output item needs string 'call_id' and 'output'.",
                                  "missing_required_parameter", "item.call_id")
            if not any(item.type == "function_call" and item.call_id == call_id for item in self.items):
                raise ClientError(f"Tool call ID '{call_id}' not found in conversation.", "invalid_value",
                                  "item.call_id")
            return _Item(id=item_id, type="function_call_output", call_id=call_id, output=output)
        raise ClientError(f"Invalid value: {kind!r}. Supported values are: 'message', 'function_call', "
                          f"'function_call_output'.", "invalid_value", "item.type")

    @staticmethod
    def _check_item_keys(raw: dict, allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                raise ClientError(f"Unknown parameter: 'item.{key}'.", "unknown_parameter", f"item.{key}")

    def _parse_content(self, part: Any, role: str, index: int) -> _Content:
        param = f"item.content[{index}]"
        if not isinstance(part, dict):
            raise ClientError(f"Invalid type for '{param}': expected an object.", "invalid_type", param)
        wire_type = part.get("type")
        allowed = _ROLE_CONTENT[self.dialect][role]
        if wire_type not in allowed:
            raise ClientError(f"Invalid value: {wire_type!r}. Supported values for {role} messages are: "
                              + ", ".join(f"'{t}'" for t in sorted(allowed)) + ".", "invalid_value", f"{param}.type")
        kind = _WIRE_TO_KIND[wire_type]
        content = _Content(kind=kind)
        if kind in ("input_text", "text"):
            if not isinstance(part.get("text"), str):
                raise ClientError(f"Missing required parameter: '{param}.text'.", "missing_required_parameter",
                                  f"{param}.text")
            content.text = part["text"]
        elif kind in ("input_audio", "audio"):
            audio = part.get("audio")
            if audio is not None:
                try:
                    content.audio = base64.b64decode(audio, validate=True)
                except (binascii.Error, ValueError, TypeError):
                    raise ClientError(f"Invalid '{param}.audio'. Expected base64-encoded audio bytes.",
                                      "invalid_value", f"{param}.audio") from None
            content.audio_format = self.settings.input_format if kind == "input_audio" else self.settings.output_format
            content.transcript = part.get("transcript")
        elif kind == "input_image":
            content.image_url = part.get("image_url")
            content.detail = part.get("detail")
        elif kind == "item_reference":
            content.ref_id = part.get("id")
        return content

    def _on_conversation_item_delete(self, event: dict) -> None:
        self._check_event_keys(event, {"item_id"})
        item_id = event.get("item_id")
        index = self._find(item_id)
        if index is None:
            raise ClientError(f"Error deleting item: the item with id '{item_id}' does not exist.",
                              "item_delete_invalid_item_id", "item_id")
        if self.items[index].response_id is not None:
            raise ClientError(f"Item '{item_id}' belongs to the response in progress; cancel it first.",
                              "item_in_active_response", "item_id")
        del self.items[index]
        self._emit("conversation.item.deleted", item_id=item_id)

    def _on_conversation_item_retrieve(self, event: dict) -> None:
        self._check_event_keys(event, {"item_id"})
        item_id = event.get("item_id")
        index = self._find(item_id)
        if index is None:
            raise ClientError(f"Item with item_id not found: {item_id}", "item_retrieve_invalid_item_id", "item_id")
        self._emit("conversation.item.retrieved", item=self._render_item(self.items[index], with_audio=True))

    def _on_conversation_item_truncate(self, event: dict) -> None:
        self._check_event_keys(event, {"item_id", "content_index", "audio_end_ms"})
        item_id = event.get("item_id")
        content_index = event.get("content_index")
        audio_end_ms = event.get("audio_end_ms")
        for name, value in (("content_index", content_index), ("audio_end_ms", audio_end_ms)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ClientError(f"Missing required parameter: '{name}' (an integer).", "missing_required_parameter",
                                  name)
            if value < 0:
                raise ClientError(f"Invalid '{name}': must be non-negative.", "invalid_value", name)
        index = self._find(item_id)
        if index is None:
            raise ClientError(f"Item with item_id not found: {item_id}", "item_truncate_invalid_item_id", "item_id")
        item = self.items[index]
        if item.type != "message" or item.role != "assistant":
            raise ClientError("Only model output audio messages can be truncated", "unsupported_content_type", "item_id")
        if content_index >= len(item.content) or item.content[content_index].kind != "audio":
            raise ClientError("Only model output audio messages can be truncated", "unsupported_content_type",
                              "content_index")
        content = item.content[content_index]
        bytes_per_ms = BYTES_PER_MS[content.audio_format]
        available_ms = len(content.audio) // bytes_per_ms
        if audio_end_ms > available_ms:
            raise ClientError(f"Audio content of {available_ms}ms is already shorter than {audio_end_ms}ms",
                              "invalid_value", "audio_end_ms")
        content.audio = content.audio[: audio_end_ms * bytes_per_ms]
        # As the real API: the server-side transcript is removed, so the context holds no text the
        # caller did not hear.
        content.transcript = ""
        self._emit("conversation.item.truncated", item_id=item.id, content_index=content_index,
                   audio_end_ms=audio_end_ms)

    # ------------------------------------------------------------------ rendering

    def _render_content(self, content: _Content, with_audio: bool) -> dict[str, Any]:
        wire = {"type": _CONTENT_TYPE[self.dialect][content.kind]}
        if content.kind in ("input_text", "text"):
            wire["text"] = content.text
        elif content.kind in ("input_audio", "audio"):
            wire["transcript"] = content.transcript
            if with_audio:
                wire["audio"] = base64.b64encode(content.audio).decode()
        elif content.kind == "input_image":
            wire["image_url"] = content.image_url
            if content.detail is not None:
                wire["detail"] = content.detail
        elif content.kind == "item_reference":
            wire["id"] = content.ref_id
        return wire

    def _render_item(self, item: _Item, with_audio: bool = False) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": item.id, "object": "realtime.item", "type": item.type, "status": item.status}
        if item.type == "message":
            wire["role"] = item.role
            wire["content"] = [self._render_content(content, with_audio) for content in item.content]
        elif item.type == "function_call":
            wire.update(name=item.name, call_id=item.call_id, arguments=item.arguments)
        else:
            wire.update(call_id=item.call_id, output=item.output)
        return wire

    def _wire_format(self, fmt: str) -> Any:
        if self.dialect == "beta":
            return fmt
        return {"pcm16": {"type": "audio/pcm", "rate": 24000}, "g711_ulaw": {"type": "audio/pcmu"},
                "g711_alaw": {"type": "audio/pcma"}}[fmt]

    def _render_response(self, response: _Response, status: str, status_details: Any = None,
                         usage: Any = None) -> dict[str, Any]:
        modalities = ["audio"] if response.audio_out else ["text"]
        wire: dict[str, Any] = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": status_details,
            "output": [self._render_item(item) for item in response.output],
            "conversation_id": self.conversation_id if response.in_conversation else None,
            "max_output_tokens": response.max_output_tokens,
            "usage": usage,
            "metadata": response.metadata,
        }
        if self.dialect == "ga":
            wire["output_modalities"] = modalities
            wire["audio"] = {"output": {"format": self._wire_format(response.output_format), "voice": response.voice}}
        else:
            wire["modalities"] = ["audio", "text"] if response.audio_out else ["text"]
            wire["voice"] = response.voice
            wire["output_audio_format"] = response.output_format
            wire["temperature"] = response.temperature
        return wire

    # ------------------------------------------------------------------ responses

    def _on_response_create(self, event: dict) -> None:
        self._check_event_keys(event, {"response"})
        params = validate_response_params(event.get("response"), self.dialect)
        if self._active is not None:
            raise ClientError(
                f"Conversation already has an active response in progress: {self._active.id}. Wait until the "
                f"response is finished before creating a new one.", "conversation_already_has_active_response")
        self._create_response(params, event_id=event.get("event_id"))

    def _on_response_cancel(self, event: dict) -> None:
        self._check_event_keys(event, {"response_id"})
        wanted = event.get("response_id")
        if self._active is None or (wanted is not None and wanted != self._active.id):
            raise ClientError("Cancellation failed: no active response found", "response_cancel_not_active")
        self._stop_response(self._active, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})

    def _plan(self, instructions: str | None) -> list[_Say | _Call]:
        """What this response will say and do, from the script (see script.py)."""
        if instructions:
            match = _SAY_INSTRUCTION.match(instructions)
            if match:
                return [_Say(match.group(1).strip().strip("\"'\u201c\u201d"))]
        for call_id, template in list(self._followups.items()):
            output = next((item.output for item in self.items
                           if item.type == "function_call_output" and item.call_id == call_id), None)
            if output is not None:
                del self._followups[call_id]
                return [_Say(render_followup(template, output))]
        if self._turn_index < len(self.script.turns):
            turn: Turn = self.script.turns[self._turn_index]
            self._turn_index += 1
            plan: list[_Say | _Call] = []
            if turn.say:
                plan.append(_Say(turn.say))
            if turn.call is not None:
                plan.append(_Call(turn.call.name, turn.call.arguments_json(), turn.then))
            return plan
        return [_Say(self.script.fallback)]

    def _create_response(self, params: dict[str, Any], event_id: str | None) -> None:
        settings = self.settings
        if self.dialect == "ga":
            modalities = params.get("output_modalities")
            audio_params = (params.get("audio") or {}).get("output") or {}
            output_format = settings.output_format
            if "format" in audio_params:
                output_format = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw",
                                 "audio/pcma": "g711_alaw"}[audio_params["format"]["type"]]
            voice = audio_params.get("voice", self.session["audio"]["output"].get("voice"))
            max_tokens = params.get("max_output_tokens", self.session.get("max_output_tokens", "inf"))
            temperature = None
        else:
            modalities = params.get("modalities")
            output_format = params.get("output_audio_format", settings.output_format)
            voice = params.get("voice", self.session.get("voice"))
            max_tokens = params.get("max_response_output_tokens", self.session.get("max_response_output_tokens", "inf"))
            temperature = params.get("temperature", self.session.get("temperature"))
        audio_out = settings.audio_out if modalities is None else "audio" in modalities
        response = _Response(
            id=self._new_id("resp_"),
            plan=self._plan(params.get("instructions")),
            audio_out=audio_out,
            output_format=output_format,
            voice=voice,
            speed=settings.speed,
            in_conversation=params.get("conversation", "auto") != "none",
            metadata=params.get("metadata"),
            max_output_tokens=max_tokens,
            temperature=temperature,
        )
        self._active = response
        self.responses_created += 1
        self._emit("response.created", response=self._render_response(response, "in_progress"))
        response.flow = self._run(response)
        response.wait = None

    def _pump(self) -> None:
        """Run the active response's flow as far as the clock and the speech it waits for allow."""
        while self._active is not None:
            response = self._active
            wait = response.wait
            if isinstance(wait, _Until) and wait.at_ms > self._now:
                return
            if isinstance(wait, _AwaitSpeech):
                if wait.pcm is None:
                    return
                value: Any = wait.pcm
            else:
                value = None
            assert response.flow is not None
            try:
                response.wait = response.flow.send(value)
            except StopIteration:
                return
            except Exception:  # an engine bug: fail this response, not the session
                log.exception("local engine response %s failed", response.id)
                response.flow = None
                self._stop_response(response, "failed", {"type": "failed", "error": {
                    "type": "server_error", "code": "server_error", "message": "The response failed."}})
                return
            if isinstance(response.wait, _AwaitSpeech):
                request = response.wait.request
                if self._speak is not None:
                    try:
                        response.wait.pcm = self._speak(request.text, request.sample_rate, request.voice,
                                                        request.speed)
                    except Exception as exc:
                        self._fail_speech(response, str(exc))
                        return
                else:
                    self._speech_requests.append(request)

    def _run(self, response: _Response) -> Generator[Any, Any, None]:
        for step in response.plan:
            if isinstance(step, _Say):
                yield from self._say(response, step.text)
            else:
                self._call(response, step)
        self._finish(response)

    def _open_output_item(self, response: _Response, item: _Item) -> None:
        item.response_id = response.id
        output_index = len(response.output)
        response.output.append(item)
        self._emit("response.output_item.added", response_id=response.id, output_index=output_index,
                   item=self._render_item(item))
        if response.in_conversation:
            previous = self._append_item(item)
            rendered = self._render_item(item)
            if self.dialect == "ga":
                self._emit("conversation.item.added", previous_item_id=previous, item=rendered)
            else:
                self._emit("conversation.item.created", previous_item_id=previous, item=rendered)

    def _close_output_item(self, response: _Response, item: _Item, status: str) -> None:
        item.status = status
        item.response_id = None
        rendered = self._render_item(item)
        self._emit("response.output_item.done", response_id=response.id, output_index=response.output.index(item),
                   item=rendered)
        if response.in_conversation and self.dialect == "ga":
            index = self._find(item.id)
            previous = self.items[index - 1].id if index else None
            self._emit("conversation.item.done", previous_item_id=previous, item=rendered)

    def _part_fields(self, response: _Response, item: _Item) -> dict[str, Any]:
        return {"response_id": response.id, "item_id": item.id, "output_index": response.output.index(item),
                "content_index": 0}

    def _say(self, response: _Response, text: str) -> Generator[Any, Any, None]:
        kind = "audio" if response.audio_out else "text"
        content = _Content(kind=kind, audio_format=response.output_format)
        if kind == "audio":
            content.transcript = ""
        else:
            content.text = ""
        item = _Item(id=self._new_id("item_"), type="message", role="assistant", status="in_progress")
        self._open_output_item(response, item)
        item.content.append(content)
        response.open_item = item
        response.transcript_sent = ""
        fields = self._part_fields(response, item)
        empty_part = {"type": "audio", "transcript": ""} if kind == "audio" else {"type": "text", "text": ""}
        self._emit("response.content_part.added", **fields, part=empty_part)
        words = _words(text)
        if kind == "text":
            for word in words:
                response.transcript_sent += word
                content.text = response.transcript_sent
                self._emit(self._names["text_delta"], **fields, delta=word)
            self._emit(self._names["text_done"], **fields, text=text)
            self._emit("response.content_part.done", **fields, part={"type": "text", "text": text})
        else:
            sample_rate = SAMPLE_RATE[response.output_format]
            pcm = yield _AwaitSpeech(SpeechRequest(self._new_id("speech_"), text, sample_rate,
                                                   self.script.voice, response.speed))
            encoded = _from_pcm16(pcm, response.output_format)
            bytes_per_ms = BYTES_PER_MS[response.output_format]
            duration_ms = len(encoded) / bytes_per_ms
            # Each word is due when the audio reaches its share of the characters.
            starts, position = [], 0
            for word in words:
                starts.append(duration_ms * position / max(1, len(text)))
                position += len(word)
            start = self._now
            chunk_bytes = self.chunk_ms * bytes_per_ms
            next_word = 0
            for offset, chunk in _chunks_of(encoded, chunk_bytes):
                due = start + (offset / bytes_per_ms) / self.realtime_factor
                if due > self._now:
                    yield _Until(due)
                content.audio += chunk
                self._emit(self._names["audio_delta"], **fields, delta=base64.b64encode(chunk).decode())
                chunk_end_ms = (offset + len(chunk)) / bytes_per_ms
                while next_word < len(words) and starts[next_word] < chunk_end_ms:
                    self._send_word(response, content, fields, words[next_word])
                    next_word += 1
            for word in words[next_word:]:
                self._send_word(response, content, fields, word)
            end = start + duration_ms / self.realtime_factor
            if end > self._now:
                yield _Until(end)
            content.transcript = text
            self._emit(self._names["audio_done"], **fields)
            self._emit(self._names["transcript_done"], **fields, transcript=text)
            self._emit("response.content_part.done", **fields, part={"type": "audio", "transcript": text})
        response.open_item = None
        self._close_output_item(response, item, "completed")

    def _send_word(self, response: _Response, content: _Content, fields: dict[str, Any], word: str) -> None:
        response.transcript_sent += word
        content.transcript = response.transcript_sent
        self._emit(self._names["transcript_delta"], **fields, delta=word)

    def _call(self, response: _Response, call: _Call) -> None:
        item = _Item(id=self._new_id("item_"), type="function_call", status="in_progress",
                     call_id=self._new_id("call_"), name=call.name, arguments="")
        self._open_output_item(response, item)
        fields = {"response_id": response.id, "item_id": item.id, "output_index": response.output.index(item),
                  "call_id": item.call_id}
        arguments = call.arguments
        piece = max(1, math.ceil(len(arguments) / 3))  # a few deltas, as a model streams tokens
        for offset in range(0, len(arguments), piece):
            self._emit("response.function_call_arguments.delta", **fields, delta=arguments[offset:offset + piece])
        item.arguments = arguments
        done = dict(fields, arguments=arguments)
        if self.dialect == "ga":
            done["name"] = call.name
        self._emit("response.function_call_arguments.done", **done)
        self._close_output_item(response, item, "completed")
        if call.followup is not None:
            self._followups[item.call_id] = call.followup

    def _finish(self, response: _Response) -> None:
        self._active = None
        self._emit("response.done", response=self._render_response(response, "completed", None, self._usage(response)))
        self._emit_rate_limits(response)

    def _stop_response(self, response: _Response, status: str, details: dict[str, Any]) -> None:
        """End the response in flight early (cancelled by the client or by turn detection, or failed)."""
        if response.flow is not None:
            response.flow.close()
        item = response.open_item
        if item is not None:
            fields = self._part_fields(response, item)
            content = item.content[0]
            if content.kind == "audio":
                self._emit(self._names["audio_done"], **fields)
                self._emit(self._names["transcript_done"], **fields, transcript=response.transcript_sent)
                self._emit("response.content_part.done", **fields,
                           part={"type": "audio", "transcript": response.transcript_sent})
            else:
                self._emit(self._names["text_done"], **fields, text=response.transcript_sent)
                self._emit("response.content_part.done", **fields, part={"type": "text", "text": response.transcript_sent})
            response.open_item = None
            self._close_output_item(response, item, "incomplete")
        for output_item in response.output:
            output_item.response_id = None
        self._active = None
        self._emit("response.done", response=self._render_response(response, status, details, self._usage(response)))
        self._emit_rate_limits(response)

    def _usage(self, response: _Response) -> dict[str, Any]:
        """Plausible token counts (the engine has no tokenizer): ~4 characters per text token, audio at
        10 tokens per second of input and 20 per second of output."""
        text_in = len(self.session.get("instructions") or "") // 4
        audio_in = 0
        for item in self.items:
            if item.response_id is not None:
                continue
            for content in item.content:
                text_in += len(content.text or content.transcript or "") // 4
                if content.kind == "input_audio":
                    audio_in += len(content.audio) // BYTES_PER_MS[content.audio_format] // 100
            text_in += len(item.arguments or item.output or "") // 4
        text_out = audio_out = 0
        for item in response.output:
            text_out += len(item.arguments or "") // 4
            for content in item.content:
                text_out += max(1, len(content.text or content.transcript or "") // 4)
                if content.kind == "audio":
                    audio_out += len(content.audio) // BYTES_PER_MS[content.audio_format] // 50
        input_details: dict[str, Any] = {"text_tokens": text_in, "audio_tokens": audio_in, "cached_tokens": 0}
        if self.dialect == "ga":
            input_details["image_tokens"] = 0
            input_details["cached_tokens_details"] = {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }

    def _emit_rate_limits(self, response: _Response) -> None:
        self._emit("rate_limits.updated", rate_limits=[
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
        ])


def _to_pcm16(raw: bytes, fmt: str) -> bytes:
    if fmt == "pcm16":
        return raw
    return g711.ulaw_decode(raw) if fmt == "g711_ulaw" else g711.alaw_decode(raw)


def _from_pcm16(pcm: bytes, fmt: str) -> bytes:
    if fmt == "pcm16":
        return pcm
    return g711.ulaw_encode(pcm) if fmt == "g711_ulaw" else g711.alaw_encode(pcm)
