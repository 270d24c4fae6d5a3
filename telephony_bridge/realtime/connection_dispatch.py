"""How a model connection takes the model's events: the untrusted-input guard, the audio hot path
(decode, count, hand over), and the bookkeeping every consumer needs (responses and items in
progress, the caller's speech, the session, the conversation mirror for a replay).

A base of `ModelConnection` (realtime/connection.py), which owns the attributes declared here;
GPT-Live's connection (live_connection.py) dispatches its own events and keeps the guard.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from typing import Any

import pybase64
from websockets.exceptions import ConnectionClosed

from telephony_bridge.realtime.connection_events import ConnectionEvents
from telephony_bridge.realtime.conversation import ConversationMirror
from telephony_bridge.realtime.dialect import Codec
from telephony_bridge.realtime.events import Dialect, RealtimeAPIEvents, event_for_wire_type
from telephony_bridge.realtime.stall import AnswerStallPolicy
from telephony_bridge.realtime.stats import ClientStatistics
from telephony_bridge.realtime.text import trace_line
from telephony_bridge.tasks import TaskOwner

__all__ = ["ServerEventDispatch"]

log = logging.getLogger("telephony_bridge.realtime")


class ServerEventDispatch:
    # Set by ModelConnection.__init__.
    tasks: TaskOwner
    trace: bool
    dialect: Dialect
    codec: Codec
    stats: ClientStatistics
    conversation: ConversationMirror
    caller_speaking: bool
    session: dict[str, Any]
    session_id: str | None
    audio_delta_type: str
    _events: ConnectionEvents
    _ms_per_byte: float
    _answer_stall: AnswerStallPolicy
    _answering: asyncio.Event
    _responses_in_progress: set[str]

    # ModelConnection's: session.update bookkeeping, recycling, the error policy.
    def _own_session_updated(self, event: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _session_update_refused(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def _maybe_recycle(self) -> None:
        raise NotImplementedError

    def _apply_error_policy(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def dispatch(self, event: Any) -> None:
        """Untrusted input from the model enters here: a malformed event is logged and skipped,
        never allowed to kill the reader (and with it the call's model audio)."""
        if not isinstance(event, dict):
            self._malformed(f"a JSON {type(event).__name__}, not an object")
            return
        try:
            await self._dispatch_event(event)
        except (asyncio.CancelledError, ConnectionClosed):
            raise
        except Exception as exc:
            # The place, as text: a logged exc_info would pin the frames (and the call) in any log
            # handler that keeps records.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self._malformed(
                f"{event.get('type')!r} event broke its handling ({type(exc).__name__}: {exc}, "
                f"at {os.path.basename(where.filename)}:{where.lineno})"
            )

    def _malformed(self, what: str) -> None:
        self.stats.malformed_events += 1
        count = self.stats.malformed_events
        if count <= 10 or count % 100 == 0:
            log.warning("%s: malformed model event #%d ignored: %s", self.tasks.label, count, what)

    async def _dispatch_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == self.audio_delta_type:  # the hot path: model audio to the consumer
            audio = self._decode_audio(event)
            if audio is not None:
                await self._events.on_audio_delta(
                    event.get("response_id", ""),
                    event.get("item_id", ""),
                    event.get("content_index", 0),
                    audio,
                    len(audio) * self._ms_per_byte,
                    event,
                )
            return
        if self.trace:
            log.info("%s ← %s", self.tasks.label, trace_line(event))
        member = event_for_wire_type(kind, self.dialect) if isinstance(kind, str) else RealtimeAPIEvents.Unknown
        if member is RealtimeAPIEvents.ResponseAudioDone:
            await self._events.on_audio_done(event.get("response_id", ""))
        self._bookkeep(member, event)
        if member is RealtimeAPIEvents.ResponseFunctionCallArgumentsDone and "name" not in event:
            # The beta wire leaves the name out; scenarios written for GA read data["name"].
            item = self.conversation.items.get(event.get("item_id", ""))
            if item is not None and item.name:
                event["name"] = item.name
        if member is RealtimeAPIEvents.SessionUpdated and self._own_session_updated(event):
            return  # the bridge's own update: the session state is kept, the consumer is not told
        self._events.on_server_event(member, event)
        if member is RealtimeAPIEvents.Error:
            self._session_update_refused(event)
            self._apply_error_policy(event)

    def _decode_audio(self, event: dict[str, Any]) -> bytes | None:
        """An audio delta's bytes, counted and told to the stall policy and the mirror; None if unusable."""
        try:
            # SIMD, ~16x binascii's on a PCM16 delta; validate=True keeps it on the SIMD path (without it,
            # pybase64 first filters non-alphabet characters: 2.7x slower). bench/README.md.
            audio = pybase64.b64decode(event["delta"], validate=True)
        except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError
            log.warning("%s: audio delta without valid base64; ignored", self.tasks.label)
            return None
        if self.codec == "pcm16" and len(audio) % 2:
            audio = audio[:-1]  # half a sample cannot be played; keep the stream's alignment
        self._account_audio(event.get("item_id", ""), audio)
        return audio

    def _account_audio(self, item_id: str, audio: bytes) -> float:
        """Model audio received for `item_id` (however it came: a delta, or a WebRTC track): counted
        and told to the stall policy and the mirror. Returns its duration in ms."""
        duration_ms = len(audio) * self._ms_per_byte
        self.stats.model_audio_deltas += 1
        self.stats.model_audio_ms += duration_ms
        self._answer_stall.audio_received(self._answer_stall.last_heard_at, duration_ms)
        self.conversation.audio_received(item_id, duration_ms)
        return duration_ms

    def _bookkeep(self, member: RealtimeAPIEvents, event: dict[str, Any]) -> None:
        """Keep the consumer told of response and item lifecycles (needed before any audio), and
        the conversation mirror current for a replay."""
        self.conversation.apply(event)
        if member is RealtimeAPIEvents.InputAudioBufferSpeechStarted:
            self.caller_speaking = True
        elif member is RealtimeAPIEvents.InputAudioBufferSpeechStopped:
            self.caller_speaking = False
        if member is RealtimeAPIEvents.ResponseCreated:
            rid = (event.get("response") or {}).get("id", "")
            self._responses_in_progress.add(rid)
            self._answer_stall.response_started(rid, self._answer_stall.last_heard_at)
            self._answering.set()
            self._events.on_response_started(rid)
        elif member is RealtimeAPIEvents.ResponseOutputItemAdded:
            item = event.get("item") or {}
            if item.get("type") == "message":
                self._events.on_item_added(event.get("response_id", ""), item.get("id", ""))
        elif member is RealtimeAPIEvents.ResponseAudioDone:
            self._answer_stall.audio_finished(event.get("response_id", ""))
        elif member is RealtimeAPIEvents.ResponseDone:
            self._answer_stall.audio_finished((event.get("response") or {}).get("id", ""))
            self._response_finished((event.get("response") or {}).get("id", ""))
            self._maybe_recycle()
        elif member is RealtimeAPIEvents.SessionCreated:
            self.session_id = (event.get("session") or {}).get("id")
            self.session = event.get("session") or {}
        elif member is RealtimeAPIEvents.SessionUpdated:
            self.session = event.get("session") or {}

    def _response_finished(self, response_id: str) -> None:
        self._responses_in_progress.discard(response_id)
        self._events.on_response_finished(response_id)
