"""Input audio and voice activity: the uncommitted buffer, VAD-driven and manual commits,
what the caller is heard to say."""

from __future__ import annotations

import base64
import binascii
import logging

from .config import (
    BYTES_PER_MS,
    SAMPLE_RATE,
    ClientError,
)
from .engine_base import EngineBase
from .engine_state import (
    MIN_COMMIT_MS,
    _Content,
    _Item,
    _to_pcm16,
)
from .vad import SpeechStarted, SpeechStopped, VoiceActivityDetector

log = logging.getLogger("telephony_bridge.local_engine.session")


class InputAudio(EngineBase):
    """One part of `EngineSession` (session.py), working on the session's state."""

    # ------------------------------------------------------------------ input audio (and VAD)

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
            raise ClientError(
                "Invalid 'audio'. Expected base64-encoded audio bytes.", "invalid_value", "audio"
            ) from None
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
        self._emit(
            "input_audio_buffer.speech_started", audio_start_ms=started.audio_start_ms, item_id=self._pending_user_item
        )
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
                f"audio, but buffer only has {buffered:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
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
        item = _Item(
            id=item_id,
            type="message",
            role="user",
            status="completed",
            content=[_Content(kind="input_audio", audio=audio, audio_format=self.settings.input_format)],
        )
        previous = self._append_item(item)
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self._announce_item(item, previous)
        if self.settings.transcription:
            transcript = self._hears() or f"[speech {speech_seconds:.1f} s]"
            item.content[0].transcript = transcript
            self._emit(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=transcript,
                usage={"type": "duration", "seconds": round(speech_seconds, 3)},
            )

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
