"""The local engine's translation mode: `/v1/realtime/translations`, an "interpreter" that is a Script.

A sans-I/O session with `EngineSession`'s driving interface (start, receive_text, tick,
take_speech_requests, speech_ready, speech_failed, next_deadline_ms), so the same connection runner
serves it. It speaks OpenAI's translation protocol (the SDK's `realtime_translation_*` types):
`session.created`, `session.update` → `session.updated` (only the translation fields; anything
else is an `unknown_parameter` error), `session.input_audio_buffer.append` (PCM16 24 kHz only),
`session.close` → the rest of the output, then `session.closed`, and the server hangs up.

The "translation": each caller utterance (server-side VAD over the appended audio, which should
keep coming, silence included) is answered by the script's next turn: `hears` is the source
transcript (`session.input_transcript.delta`, when `audio.input.transcription` is set), `say` the
translated line (`session.output_transcript.delta`, then `session.output_audio.delta` chunks);
past the script's end the line is the fallback. No conversation, no response, no item ids.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections import deque
from typing import Any

from .config import ClientError
from .engine_state import _ID_ALPHABET, MAX_MESSAGE_BYTES, SpeechRequest
from .script import Script
from .vad import SpeechStopped, VoiceActivityDetector

__all__ = ["TRANSLATIONS_PATH", "TranslationSession"]

TRANSLATIONS_PATH = "/v1/realtime/translations"
RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000
_CLIENT_TYPES = ("session.update", "session.input_audio_buffer.append", "session.close")
_ALLOWED = {
    "audio": {"input": {"transcription": {"model"}, "noise_reduction": {"type", "strength"}}, "output": {"language"}}
}


class TranslationSession:
    def __init__(
        self,
        script: Script | None = None,
        *,
        model: str | None = None,
        chunk_ms: int = 100,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        seed: int | None = None,
    ) -> None:
        self.script = script if script is not None else Script()
        self.chunk_ms = max(10, int(chunk_ms))
        self.max_message_bytes = max_message_bytes
        self._random = random.Random(seed)
        self.session: dict[str, Any] = {
            "id": self._new_id("sess_"),
            "type": "translation",
            "model": model or "gpt-realtime-translate",
            "expires_at": 0,
            "audio": {"input": {"transcription": None, "noise_reduction": None}, "output": {"language": "en"}},
        }
        self._vad = VoiceActivityDetector(sample_rate=RATE)
        self._stream_bytes = 0
        self._utterances = 0
        self._speech: deque[SpeechRequest] = deque()  # asked for, not yet spoken (in order)
        self._new_requests: list[SpeechRequest] = []
        self._ready: dict[str, bytes] = {}
        self._closing = False
        self.closed = False  # session.closed sent: the runner hangs up
        self._out: list[dict[str, Any]] = []
        self.appended_ms = 0.0

    # --- the driving interface ------------------------------------------------------------
    def start(self, now_ms: float = 0.0) -> list[dict[str, Any]]:
        self.session["expires_at"] = 3600
        self._emit("session.created", session=self.session)
        return self._drain()

    def receive_text(self, message: str | bytes, now_ms: float) -> list[dict[str, Any]]:
        if len(message) > self.max_message_bytes:
            self._error(ClientError("Message too large.", "message_too_large"), None)
            return self._drain()
        try:
            event = json.loads(message)
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(ClientError(f"Invalid JSON: {exc}", "invalid_json"), None)
            return self._drain()
        event_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            self._dispatch(event)
        except ClientError as error:
            self._error(error, event_id if isinstance(event_id, str) else None)
        return self._drain()

    def tick(self, now_ms: float) -> list[dict[str, Any]]:
        return self._drain()

    def next_deadline_ms(self) -> float | None:
        return None

    def take_speech_requests(self) -> list[SpeechRequest]:
        requests, self._new_requests = self._new_requests, []
        return requests

    def speech_ready(self, request_id: str, pcm16: bytes, now_ms: float) -> list[dict[str, Any]]:
        self._ready[request_id] = pcm16
        self._speak_ready()
        return self._drain()

    def speech_failed(self, request_id: str, message: str, now_ms: float) -> list[dict[str, Any]]:
        self._ready[request_id] = b""
        self._error(
            ClientError(f"speech synthesis failed: {message}", "speech_synthesis_failed", error_type="server_error"),
            None,
        )
        self._speak_ready()
        return self._drain()

    # --- client events --------------------------------------------------------------------
    def _dispatch(self, event: Any) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ClientError("Missing required parameter: 'type'.", "missing_required_parameter", "type")
        kind = event["type"]
        if kind not in _CLIENT_TYPES:
            supported = ", ".join(f"'{name}'" for name in _CLIENT_TYPES)
            raise ClientError(f"Invalid value: '{kind}'. Supported values are: {supported}.", "invalid_value", "type")
        if self._closing and kind != "session.close":
            raise ClientError("The translation session is closing: input is closed.", "session_closing")
        if kind == "session.update":
            self._on_session_update(event)
        elif kind == "session.input_audio_buffer.append":
            self._on_append(event)
        else:
            self._on_close()

    def _on_session_update(self, event: dict[str, Any]) -> None:
        _check_keys(event, {"type", "event_id", "session"}, "")
        session = event.get("session")
        if not isinstance(session, dict):
            raise ClientError("Missing required parameter: 'session'.", "missing_required_parameter", "session")
        _check_shape(session, _ALLOWED, "session")
        audio = session.get("audio") or {}
        for side in ("input", "output"):
            self.session["audio"][side].update(audio.get(side) or {})
        self._emit("session.updated", session=self.session)

    def _on_append(self, event: dict[str, Any]) -> None:
        _check_keys(event, {"type", "event_id", "audio"}, "")
        try:
            pcm = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ClientError("Invalid 'audio': expected base64 PCM16 24 kHz.", "invalid_value", "audio") from None
        self._stream_bytes += len(pcm)
        self.appended_ms = self._stream_bytes / BYTES_PER_MS
        for change in self._vad.feed(pcm):
            if isinstance(change, SpeechStopped):
                self._translate()

    def _on_close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._vad.in_speech:
            self._vad.reset()
            self._translate()  # flush: the utterance the caller was in the middle of
        self._speak_ready()

    # --- the "translation" ----------------------------------------------------------------
    def _translate(self) -> None:
        turns = self.script.turns
        turn = turns[self._utterances] if self._utterances < len(turns) else None
        self._utterances += 1
        heard = turn.hears if turn is not None and turn.hears else None
        line = turn.say if turn is not None and turn.say else self.script.fallback
        elapsed = int(self._stream_bytes / BYTES_PER_MS) // 200 * 200
        if heard and self.session["audio"]["input"].get("transcription"):
            self._emit("session.input_transcript.delta", delta=heard, elapsed_ms=elapsed)
        request = SpeechRequest(self._new_id("speech_"), line, RATE, self.script.voice, 1.0)
        self._speech.append(request)
        self._new_requests.append(request)

    def _speak_ready(self) -> None:
        """Speak, in order, every line whose audio is ready; after a close, end once all are out."""
        while self._speech and self._speech[0].id in self._ready:
            request = self._speech.popleft()
            pcm = self._ready.pop(request.id)
            elapsed = int(self._stream_bytes / BYTES_PER_MS) // 200 * 200
            self._emit("session.output_transcript.delta", delta=request.text, elapsed_ms=elapsed)
            step = self.chunk_ms * BYTES_PER_MS
            for start in range(0, len(pcm), step):
                self._emit(
                    "session.output_audio.delta",
                    delta=base64.b64encode(pcm[start : start + step]).decode(),
                    format="pcm16",
                    sample_rate=RATE,
                    channels=1,
                    elapsed_ms=elapsed,
                )
        if self._closing and not self._speech and not self.closed:
            self.closed = True
            self._emit("session.closed")

    # --- plumbing -------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return prefix + "".join(self._random.choice(_ID_ALPHABET) for _ in range(21))

    def _emit(self, type_: str, **fields: Any) -> None:
        self._out.append({"type": type_, "event_id": self._new_id("event_"), **fields})

    def _drain(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def _error(self, error: ClientError, event_id: str | None) -> None:
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


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            raise ClientError(f"Unknown parameter: '{name}'.", "unknown_parameter", name)


def _check_shape(obj: dict[str, Any], allowed: dict[str, Any] | set[str], where: str) -> None:
    """Only the fields a translation session may change (the SDK's update request), nested."""
    _check_keys(obj, set(allowed), where)
    if isinstance(allowed, dict):
        for key, inner in allowed.items():
            value = obj.get(key)
            if isinstance(value, dict):
                _check_shape(value, inner, f"{where}.{key}")
            elif value is not None and isinstance(inner, (dict, set)) and inner:
                raise ClientError(
                    f"Invalid type for '{where}.{key}': expected an object.", "invalid_type", f"{where}.{key}"
                )
