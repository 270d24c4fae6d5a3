"""LiveConnection: one GPT-Live session over the ModelConnection machinery.

The socket's life is ModelConnection's (auth, keepalive pings, reader and writer tasks, reconnect
with backoff, the close reported once); what differs is the protocol around it:

- the first message is `session.start` (queued by the client); caller audio flows only once
  `session.started` arrived (the uplink's socket is set then, and its timeline starts);
- server events are Live events (live_wire.LiveAPIEvents), told to the consumer's
  `on_live_event`; output audio (`session.output_audio.delta`: no ids, no timing) to its
  `on_audio_delta` with empty ids;
- **reconnect**: Live has no resume. The bridge opens a new session with the same config, seeded
  through `session.input` with the conversation so far, rebuilt from the transcript deltas
  (caller and agent lines, newest 128). What was being said when the socket dropped is lost; the
  new session carries on from the transcript.
- `session.closed` (asked for, or ended by the server) ends it: no reconnect after it, except
  for reason `expired` (the session hit its time limit), which is reseeded like a drop;
- no answer watchdog and no session recycling: there are no answers, and output never stops.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from telephony_bridge.realtime import live_wire
from telephony_bridge.realtime.connection import DEFAULT_PING_INTERVAL_S, ModelConnection
from telephony_bridge.realtime.connection_events import ConnectionEvents
from telephony_bridge.realtime.error_policy import LIVE_FATAL_ERROR_CODES
from telephony_bridge.realtime.live_uplink import LiveUplink
from telephony_bridge.realtime.text import trace_line
from telephony_bridge.tasks import TaskOwner

log = logging.getLogger("telephony_bridge.realtime")

MAX_TRANSCRIPT_TURNS = 400  # kept for a reseed; the newest 128 merged turns are sent


class LiveConnection(ModelConnection):
    fatal_error_codes = LIVE_FATAL_ERROR_CODES

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        codec: live_wire.LiveCodec,
        tasks: TaskOwner,
        events: ConnectionEvents,
        name: str,
        trace: bool = False,
        reconnect: bool = True,
        max_reconnect_attempts: int = 12,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
    ) -> None:
        # The Realtime parts of the base (dialect, answer watchdog, recycling) stay unused.
        super().__init__(
            url=url,
            api_key=api_key,
            dialect="ga",
            codec=codec,
            tasks=tasks,
            events=events,
            name=name,
            trace=trace,
            reconnect=reconnect,
            max_reconnect_attempts=max_reconnect_attempts,
            session_max_s=None,
            ping_interval_s=ping_interval_s,
            answer_stall_timeout_s=0,
        )
        self.uplink: LiveUplink = LiveUplink(codec, self.stats, tasks.label)
        self.start_config: dict[str, Any] | None = None  # session.start.session, as sent
        self.transcript: list[tuple[str, str]] = []  # (role, text): caller "user", agent "assistant"
        self.output_ms = 0.0  # the session's output timeline (all output, silence included)
        self.close_reason: str | None = None  # session.closed's reason, once it came

    def set_codec(self, codec: live_wire.LiveCodec, input_format: Any) -> None:
        self.codec = codec
        self._ms_per_byte = 1 / 48 if codec == "pcm16" else 1 / 8
        self.uplink.set_model_codec(codec, input_format)

    async def connect(self, timeout_s: float = 10.0) -> None:
        await super().connect(timeout_s)
        self._own_tasks.append(self.tasks.spawn(self.uplink.keep_flowing(), name=f"live input keeper {self.name}"))

    def _ready(self, ws: ClientConnection) -> None:
        self._connected.set()  # the writer may send session.start; caller audio waits for session.started

    def start(self, config: dict[str, Any], event_id: str | None = None) -> None:
        self.start_config = config
        self.send(live_wire.session_start(config, event_id))

    async def _replay(self, ws: ClientConnection, resume: bool) -> int:
        """No resume on Live: a new session with the same config, seeded with the transcript so far."""
        if self.start_config is None:
            return 0
        config = dict(self.start_config)
        seeded = live_wire.seed_input(self.transcript)
        earlier = list(config.get("input") or [])
        config["input"] = (earlier + seeded)[-live_wire.MAX_INPUT_MESSAGES :]
        self.output_ms = 0.0
        await ws.send(orjson.dumps(live_wire.session_start(config)), text=True)
        return len(seeded)

    # --- server events --------------------------------------------------------------------
    async def _dispatch_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == live_wire.OUTPUT_AUDIO_DELTA:  # the hot path, ten a second
            audio = self._decode_audio(event)
            if audio is not None:
                duration_ms = len(audio) * self._ms_per_byte
                self.output_ms += duration_ms
                await self._events.on_audio_delta("", "", 0, audio, duration_ms, event)
            return
        if self.trace:
            log.info("%s ← %s", self.tasks.label, trace_line(event))
        member = live_wire.event_for_wire_type(kind)
        if member is live_wire.LiveAPIEvents.SessionStarted:
            self.session = event.get("session") or {}
            self.session_id = self.session.get("id")
            self.uplink.session_started(asyncio.get_running_loop().time())
            self.uplink.ws = self._ws  # the timeline starts: caller audio flows
        elif member is live_wire.LiveAPIEvents.SessionUpdated:
            self.session = event.get("session") or {}
        elif member is live_wire.LiveAPIEvents.SessionInputTranscriptDelta:
            self._transcribed("user", event.get("delta"))
        elif member is live_wire.LiveAPIEvents.SessionOutputTranscriptDelta:
            self._transcribed("assistant", event.get("delta"))
        elif member is live_wire.LiveAPIEvents.SessionClosed:
            self.close_reason = event.get("reason")
            if self.close_reason != "expired":  # finalised on purpose: the socket's close is the end, not a drop
                self.reconnect = False
        on_live_event = getattr(self._events, "on_live_event", None)
        if on_live_event is not None:
            on_live_event(member, event)
        if member is live_wire.LiveAPIEvents.Error:
            self._apply_error_policy(event)

    def _transcribed(self, role: str, delta: Any) -> None:
        if not isinstance(delta, str) or not delta:
            return
        transcript = self.transcript
        if transcript and transcript[-1][0] == role:
            transcript[-1] = (role, transcript[-1][1] + delta)
        else:
            transcript.append((role, delta))
            del transcript[:-MAX_TRANSCRIPT_TURNS]
