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

import json
import logging
import random
from collections.abc import Callable
from typing import Any

from .config import (
    ClientError,
    Dialect,
    Settings,
    default_session,
    merge_session_update,
    settings_of,
)
from .engine_conversation import ConversationStore
from .engine_input import InputAudio
from .engine_rendering import WireRendering
from .engine_responses import ResponseScheduler
from .engine_state import (
    _BETA_ONLY_CLIENT_TYPES,
    _CLIENT_TYPES,
    _ID_ALPHABET,
    _NAMES,
    MAX_MESSAGE_BYTES,
    SpeechRequest,
    _AwaitSpeech,
    _Item,
    _Response,
    _Until,
)
from .script import Script
from .vad import VoiceActivityDetector

__all__ = ["MAX_MESSAGE_BYTES", "EngineSession", "SpeechRequest"]

log = logging.getLogger(__name__)


class EngineSession(InputAudio, ConversationStore, WireRendering, ResponseScheduler):
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
            self._error(
                ClientError(
                    f"Message too large: {size} bytes exceeds the limit of {self.max_message_bytes} bytes.",
                    "message_too_large",
                ),
                None,
            )
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
            self._error(
                ClientError(
                    "The server had an error while processing your request.", "server_error", error_type="server_error"
                ),
                event_id,
            )
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
        self._stop_response(
            response,
            "failed",
            {
                "type": "failed",
                "error": {"type": "server_error", "code": "speech_synthesis_failed", "message": message},
            },
        )

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
        self._emit(
            "error",
            error={
                "type": error.error_type,
                "code": error.code,
                "message": error.message,
                "param": error.param,
                "event_id": event_id,
            },
        )

    def _dispatch(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise ClientError("Invalid event: expected a JSON object.", "invalid_type")
        kind = event.get("type")
        if not isinstance(kind, str):
            raise ClientError("Missing required parameter: 'type'.", "missing_required_parameter", "type")
        if kind in _BETA_ONLY_CLIENT_TYPES and self.dialect == "beta":
            raise ClientError(
                "transcription_session.update is not supported in a realtime session.", "invalid_value", "type"
            )
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
        if before.turn_detection != self.settings.turn_detection or before.input_format != self.settings.input_format:
            self._rebuild_vad()
        self._emit("session.updated", session=self.session)
