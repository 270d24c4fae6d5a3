"""One local-engine GPT-Live connection (`/v1/live/sessions`) as a sans-I/O state machine.

Same driving interface as `EngineSession` (start / receive_text / tick / speech_ready …), so the
server's connection runner pumps either. What makes it Live (shared/reference/gpt-live.md):

- Silent until `session.start`; then `session.started` with the resolved config. The config is
  strict: an unknown field anywhere is an `unknown_parameter` error and no session.
- **The timeline advances only with input.** Every `session.input_audio.append` moves it; output
  follows it, so output is continuous (silence between lines) and paced exactly as the input is,
  in `chunk_ms` deltas without timing or event ids. Nothing is sent while no input flows.
- The scripted brain takes a turn when `session.instructions.append` asks while it is quiet (the
  greeting), and when the caller stops speaking (VAD on the input). It yields by itself: caller
  speech while it talks stops its line after `YIELD_AFTER_MS`. An instruction containing "stop
  speaking" stops it too and never starts a turn (what the bridge sends after a clear).
- Transcripts: `session.output_transcript.delta` per word, `session.input_transcript.delta` with the
  turn's `hears`, each with `start_ms`/`end_ms` on the timeline.
- A turn with a tool `call` delegates: `session.delegation.created`; with Responses delegation
  the call comes nested in `response.event`s and the engine waits for `response.item.create`
  (the output) and `response.create`, then says `then`; with client delegation it waits for
  `session.commentary.append` with the delegation's id and says that (live_delegation.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import time
from typing import Any

from .engine_state import _ID_ALPHABET, SpeechRequest
from .live_delegation import LiveDelegation
from .live_protocol import (
    CLIENT_TYPES,
    LiveClientError,
    bytes_per_ms,
    check_keys,
    check_session_update,
    decode,
    duration_ms,
    encode,
    read_session_start,
    sample_rate,
    silence,
    unknown_parameter,
)
from .live_state import Delegation, SpokenLine
from .script import Script, Turn
from .vad import SpeechStarted, SpeechStopped, VoiceActivityDetector

__all__ = ["LiveEngineSession"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 15 * 1024 * 1024
YIELD_AFTER_MS = 300  # caller speech this long while the engine talks: it stops (the model's own barge-in)
USAGE_EVERY_MS = 15_000
SESSION_TTL_S = 3600
STOP_PHRASE = re.compile(r"stop speaking", re.IGNORECASE)


class LiveEngineSession(LiveDelegation):
    def __init__(
        self,
        script: Script | None = None,
        *,
        chunk_ms: int = 100,
        seed: int | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        **_: Any,
    ) -> None:
        self.script = script if script is not None else Script()
        self.chunk_ms = max(20, int(chunk_ms))
        self.max_message_bytes = max_message_bytes
        self._random = random.Random(seed)
        self.session: dict[str, Any] | None = None
        self.codec = "pcm16"
        self.finished = False  # session.closed sent: the server closes the socket
        self._out: list[dict[str, Any]] = []
        self._speech_requests: list[SpeechRequest] = []
        self._input_bytes = 0
        self._output_bytes = 0
        self._muted = False
        self._vad: VoiceActivityDetector | None = None
        self._caller_speaking_since: int | None = None
        self._line: SpokenLine | None = None
        self._turn_index = 0
        self._delegations: dict[str, Delegation] = {}
        self._usage_at = USAGE_EVERY_MS
        self.turns_taken = 0
        self.received: list[dict[str, Any]] = []  # every client event but audio (tests read it)

    # ------------------------------------------------------------------ driving API (as EngineSession)

    def start(self, now_ms: float = 0.0) -> list[dict[str, Any]]:
        return []  # a silent socket gets nothing: the client speaks first

    def receive_text(self, message: str | bytes, now_ms: float) -> list[dict[str, Any]]:
        if len(message) > self.max_message_bytes:
            self._error(LiveClientError("Message too large.", "message_too_large"), None)
            return self._drain()
        try:
            event = json.loads(message)
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(LiveClientError(f"Invalid JSON: {exc}", "invalid_json"), None)
            return self._drain()
        return self.receive(event, now_ms)

    def receive(self, event: Any, now_ms: float = 0.0) -> list[dict[str, Any]]:
        event_id = event.get("event_id") if isinstance(event, dict) and isinstance(event.get("event_id"), str) else None
        try:
            self._dispatch(event)
        except LiveClientError as error:
            self._error(error, event_id)
        except Exception:
            log.exception("local Live engine failed on %r", event.get("type") if isinstance(event, dict) else event)
            self._error(
                LiveClientError("The server had an error while processing your request.", "server_error"), event_id
            )
        return self._drain()

    def tick(self, now_ms: float) -> list[dict[str, Any]]:
        return self._drain()

    def next_deadline_ms(self) -> float | None:
        return None  # the timeline moves with input only

    def take_speech_requests(self) -> list[SpeechRequest]:
        requests, self._speech_requests = self._speech_requests, []
        return requests

    def speech_ready(self, request_id: str, pcm16: bytes, now_ms: float) -> list[dict[str, Any]]:
        line = self._line
        if line is not None and line.request_id == request_id and not line.ready:
            line.audio = encode(self.codec, pcm16)
            line.ready = True
            duration = duration_ms(self.codec, len(line.audio))
            words = re.findall(r"\s*\S+", line.text) or [line.text]
            step = duration / max(1, len(words))
            line.words = [(int(i * step), word) for i, word in enumerate(words)]
        return self._drain()

    def speech_failed(self, request_id: str, message: str, now_ms: float) -> list[dict[str, Any]]:
        line = self._line
        if line is not None and line.request_id == request_id:
            log.warning("local Live engine: speech synthesis failed: %s", message)
            self._line = None
        return self._drain()

    @property
    def position_ms(self) -> int:
        """The session timeline: input received so far."""
        return duration_ms(self.codec, self._input_bytes)

    # ------------------------------------------------------------------ plumbing

    def _new_id(self, prefix: str) -> str:
        return prefix + "".join(self._random.choice(_ID_ALPHABET) for _ in range(21))

    def _emit(self, type_: str, client_event_id: str | None = None, **fields: Any) -> None:
        event = {"type": type_, "event_id": self._new_id("event_"), **fields}
        if client_event_id is not None:
            event["client_event_id"] = client_event_id
        self._out.append(event)

    def _drain(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def _error(self, error: LiveClientError, client_event_id: str | None) -> None:
        body: dict[str, Any] = {
            "type": "invalid_request_error",
            "code": error.code,
            "message": error.message,
            "param": error.param,
        }
        if client_event_id is not None:
            body["client_event_id"] = client_event_id
        self._emit("error", error=body)

    def _dispatch(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise LiveClientError("Invalid event: expected a JSON object.", "invalid_type")
        kind = event.get("type")
        if kind not in CLIENT_TYPES:
            supported = ", ".join(f"'{name}'" for name in CLIENT_TYPES)
            raise LiveClientError(
                f"Invalid value: '{kind}'. Supported values are: {supported}.", "invalid_value", "type"
            )
        if kind != "session.input_audio.append":
            self.received.append(event)
        if self.session is None and kind != "session.start":
            raise LiveClientError(
                "The session has not started: send session.start first.", "session_not_started", "type"
            )
        if self.finished:
            raise LiveClientError("The session is closed.", "session_closed", "type")
        getattr(self, "_on_" + kind.replace(".", "_"))(event)

    # ------------------------------------------------------------------ session

    def _on_session_start(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id", "session"}, ("session",))
        if self.session is not None:
            raise LiveClientError("The session has already started.", "session_already_started", "type")
        config, codec, format_type, voice, delegation = read_session_start(event["session"])
        self.codec = codec
        rate = sample_rate(self.codec)
        self._vad = VoiceActivityDetector(rate, silence_duration_ms=500)
        resolved: dict[str, Any] = {
            "id": self._new_id("live_"),
            "expires_at": int(time.time()) + SESSION_TTL_S,
            "model": config["model"],
            "status": "active",
            "audio": {"format": {"type": format_type, "rate": rate}, "output": {"voice": voice}},
            "delegation": delegation if delegation is not None else {"type": "client"},
            "input": config.get("input") or [],
            "store": bool(config.get("store", False)),
        }
        if "instructions" in config:
            resolved["instructions"] = config["instructions"]
        self.session = resolved
        self._emit("session.started", event.get("event_id"), session=resolved)

    def _on_session_update(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id", "session"}, ("session",))
        update = check_session_update(event["session"])
        assert self.session is not None
        if "delegation" in update:
            if (update["delegation"] or {}).get("type") != self.session["delegation"].get("type"):
                raise LiveClientError(
                    "The delegation type cannot change.", "immutable_field_update", "session.delegation"
                )
            self.session["delegation"] = update["delegation"]
        if "triggers" in update:
            self.session["triggers"] = update["triggers"]
        self._emit("session.updated", event.get("event_id"), session=self.session)

    def _on_session_close(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id"})
        assert self.session is not None
        self.finished = True
        self._emit(
            "session.closed",
            event.get("event_id"),
            reason="close_requested",
            session=self.session,
            usage={"seconds": round(self.position_ms / 1000, 3)},
        )

    def _on_session_input_audio_mute(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id"})
        self._muted = True
        self._emit("session.input_audio.muted", event.get("event_id"))

    def _on_session_input_audio_unmute(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id"})
        self._muted = False
        self._emit("session.input_audio.unmuted", event.get("event_id"))

    def _on_session_output_audio_fixture_play(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id", "audio"}, ("audio",))
        pcm24 = base64.b64decode(event["audio"])
        self._emit("session.output_audio.fixture.playing", event.get("event_id"))
        from telephony_bridge.audio.resample import Resampler  # only for fixtures

        rate = sample_rate(self.codec)
        pcm = pcm24 if rate == 24000 else Resampler(24000, rate).process(pcm24)
        line = SpokenLine(
            text="",
            audio=encode(self.codec, pcm),
            ready=True,
            start_ms=self.position_ms,
            then=lambda: self._emit("session.output_audio.fixture.played"),
        )
        self._line = line

    # ------------------------------------------------------------------ text in

    def _appended(self, kind: str, event: dict[str, Any]) -> str:
        check_keys("event", event, {"type", "event_id", "content", "delegation_id"}, ("content", "delegation_id"))
        content = event["content"]
        if not isinstance(content, str) or not content:
            raise LiveClientError("'content' must be a non-empty string.", "invalid_value", "content")
        self._emit(
            f"session.{kind}.appended", event.get("event_id"), start_ms=self.position_ms, end_ms=self.position_ms
        )
        return content

    def _on_session_instructions_append(self, event: dict[str, Any]) -> None:
        content = self._appended("instructions", event)
        if STOP_PHRASE.search(content):
            self._stop_line()
        elif self._line is None and not self._pending_delegation():
            self._take_turn()

    def _on_session_thinking_append(self, event: dict[str, Any]) -> None:
        self._appended("thinking", event)

    def _on_session_commentary_append(self, event: dict[str, Any]) -> None:
        content = self._appended("commentary", event)
        delegation = self._delegations.get(event.get("delegation_id") or "")
        if delegation is not None and delegation.target == "client":
            del self._delegations[delegation.id]
            self._say(content)
        elif self._line is None:
            self._say(content)

    # ------------------------------------------------------------------ the timeline

    def _on_session_input_audio_append(self, event: dict[str, Any]) -> None:
        if len(event) > 2 and set(event) - {"type", "audio", "event_id"}:
            raise unknown_parameter(min(set(event) - {"type", "audio", "event_id"}))
        try:
            raw = binascii.a2b_base64(event["audio"])
        except (KeyError, TypeError, binascii.Error):
            raise LiveClientError("'audio' must be base64.", "invalid_value", "audio") from None
        self._input_bytes += len(raw)
        assert self._vad is not None
        pcm = decode(self.codec, raw)
        if self._muted:
            pcm = bytes(len(pcm))
        for change in self._vad.feed(pcm):
            if isinstance(change, SpeechStarted):
                self._caller_speaking_since = change.audio_start_ms
            elif isinstance(change, SpeechStopped):
                self._caller_stopped(change.audio_end_ms)
        if (
            self._caller_speaking_since is not None
            and self._line is not None
            and self._line.text
            and self.position_ms - self._caller_speaking_since >= YIELD_AFTER_MS
        ):
            self._stop_line()  # the model hears the caller and yields
        self._output_until(self._input_bytes)
        if self.position_ms >= self._usage_at:
            self._usage_at += USAGE_EVERY_MS
            self._emit("session.usage.updated", usage={"seconds": round(self.position_ms / 1000, 3)})

    def _output_until(self, input_bytes: int) -> None:
        """Continuous output, in step with input: whole chunks up to the timeline."""
        chunk = self.chunk_ms * bytes_per_ms(self.codec)
        while self._output_bytes + chunk <= input_bytes:
            self._emit_chunk(chunk)

    def _emit_chunk(self, size: int) -> None:
        line = self._line
        data = b""
        if line is not None and line.ready:
            if line.pos == 0:
                line.start_ms = duration_ms(self.codec, self._output_bytes)
            data = line.audio[line.pos : line.pos + size]
            line.pos += len(data)
            end_ms = duration_ms(self.codec, line.pos)
            while line.spoken_words < len(line.words) and line.words[line.spoken_words][0] < end_ms:
                offset, word = line.words[line.spoken_words]
                line.spoken_words += 1
                nxt = (
                    line.words[line.spoken_words][0]
                    if line.spoken_words < len(line.words)
                    else duration_ms(self.codec, len(line.audio))
                )
                self._emit(
                    "session.output_transcript.delta",
                    delta=word,
                    start_ms=line.start_ms + offset,
                    end_ms=line.start_ms + nxt,
                )
            if line.pos >= len(line.audio):
                self._line = None
                if line.then is not None:
                    line.then()
        audio = data + silence(self.codec, size - len(data))
        self._output_bytes += size
        # Primary-WebSocket audio deltas carry no event_id and no timing.
        self._out.append({"type": "session.output_audio.delta", "delta": base64.b64encode(audio).decode()})

    # ------------------------------------------------------------------ the brain

    def _caller_stopped(self, end_ms: int) -> None:
        start = self._caller_speaking_since if self._caller_speaking_since is not None else end_ms
        self._caller_speaking_since = None
        turn = self._next_turn()
        heard = (turn.hears if turn is not None else None) or f"[speech {max(0, end_ms - start) / 1000:.1f} s]"
        self._emit("session.input_transcript.delta", delta=heard, start_ms=start, end_ms=max(end_ms, start + 1))
        if self._pending_delegation():
            return  # still waiting on a backend: it speaks the result when it comes
        self._stop_line()
        self._take_turn()

    def _next_turn(self) -> Turn | None:
        turns = self.script.turns
        return turns[self._turn_index] if self._turn_index < len(turns) else None

    def _take_turn(self) -> None:
        turn = self._next_turn()
        self.turns_taken += 1
        if turn is None:
            self._say(self.script.fallback)
            return
        self._turn_index += 1
        if turn.call is not None:
            self._delegate(turn)
        if turn.say:
            self._say(turn.say)

    def _say(self, text: str) -> None:
        self._stop_line()
        request = SpeechRequest(self._new_id("speech_"), text, sample_rate(self.codec), self.script.voice, 1.0)
        self._line = SpokenLine(text=text, request_id=request.id, start_ms=self.position_ms)
        self._speech_requests.append(request)

    def _stop_line(self) -> None:
        self._line = None
