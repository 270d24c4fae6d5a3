"""LiveAPIClient: Voximplant's `OpenAI.LiveAPIClient` (GPT-Live) over one LiveConnection.

Methods take one object, the Live client event's body without `type` (as Voximplant's GA client
does), and have snake_case twins. Events are `LiveAPIEvents` with payload
`{client, name, data: {customEvent, payload}}`, `payload` being the raw server event.

Output: Live sends audio continuously at about real time, silence included, with no response or
item ids and no end marker. The bridge classifies each delta by its energy: the first audible
delta starts a *turn* (synthetic ids `live_turn_N` / `live_item_N` in the call's playback ledger),
which goes into the call's one Playout like any model answer; QUIET_MS of silent output ends it.
Silence between turns is not sent to the phone. `AgentStartedSpeaking` fires when a turn's first
audio enters the phone's playout (`outputMs`: its position on the session's output timeline);
`AgentStoppedSpeaking` when it leaves it — QUIET_MS of silence, a clearMediaBuffer(), or the close
— with `durationMs` (written to the phone), `heardMs` (what the ledger says the caller heard of
it by then: marks-confirmed, or by clock) and `interrupted`. Heard audio keeps playing after
AgentStoppedSpeaking for up to the playout lead; `WebSocketMediaEnded` says when it has played.

Barge-in belongs to the model (it hears the caller and yields): the bridge sends nothing on
caller speech. `clearMediaBuffer()` is the app's stop: the Playout drops what is queued and clears
the carrier, and the model is told with `session.instructions.append` what was not heard.

Playout lead: the model is paced at 1×, so the bridge's lead over the phone is the carrier's buffer
plus jitter. It is measured per delta (written minus heard) and reported (`stats_live()`,
`AgentStoppedSpeaking.playoutLeadMs`); above MAX_LEAD_MS the bridge waits before writing more.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import live_wire
from telephony_bridge.realtime.connection import DEFAULT_PING_INTERVAL_S
from telephony_bridge.realtime.connection_events import Reconnected
from telephony_bridge.realtime.live_connection import LiveConnection
from telephony_bridge.realtime.live_wire import LiveAPIEvents
from telephony_bridge.realtime.observer import ServerEvent
from telephony_bridge.realtime.playback import Interruption
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.listeners import EventPayload
from telephony_bridge.voxengine.live_client_events import LiveClientEvents
from telephony_bridge.voxengine.model_client_base import ModelClientBase, log
from telephony_bridge.voxengine.playout_channel import PlayoutChannel, model_audio_format

QUIET_MS = 350.0  # silent output that ends a turn
MAX_LEAD_MS = 600.0  # the bridge's lead over the phone it lets build up before it waits
# μ-law bytes whose magnitude is above ~-40 dBFS (|sample| > 330): 1, else 0. One translate + count per delta.
_ULAW_LOUD = bytes(
    1 if abs(int(v)) > 330 else 0
    for v in np.frombuffer(
        __import__("telephony_bridge.audio.g711", fromlist=["ulaw_decode"]).ulaw_decode(bytes(range(256))), "<i2"
    )
)
LOUD_FRACTION = 0.05


def audible(audio: bytes, codec: str) -> bool:
    """Whether a delta carries speech (energy), not silence or comfort noise."""
    if not audio:
        return False
    if codec == "g711_ulaw":
        return audio.translate(_ULAW_LOUD).count(1) > len(audio) * LOUD_FRACTION
    samples = np.frombuffer(audio[: len(audio) - len(audio) % 2], "<i2")
    return (
        bool(samples.size)
        and int(np.count_nonzero(np.abs(samples.astype(np.int32)) > 330)) > samples.size * LOUD_FRACTION
    )


@dataclass(slots=True)
class _Turn:
    number: int
    response_id: str
    item_id: str
    output_start_ms: float
    sent_ms: float = 0.0
    quiet_ms: float = 0.0
    max_lead_ms: float = 0.0
    interrupted: bool = False


@with_snake_case_twins
class LiveAPIClient(ModelClientBase, LiveClientEvents):
    """Voximplant's OpenAI.LiveAPIClient. Create with `OpenAI.createLiveAPIClient`."""

    _id_prefix = "live"
    _ids = itertools.count(1)
    _normalize_event = staticmethod(live_wire.normalize_event_name)
    _connection: LiveConnection
    codec: live_wire.LiveCodec

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        tasks: TaskOwner,
        codec: live_wire.LiveCodec = "g711_ulaw",
        on_websocket_close: Callable[[Any], Any] | None = None,
        trace: bool = False,
        statistics: bool = False,
        privacy: bool = False,
        reconnect: bool = True,
        max_reconnect_attempts: int = 12,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
        transport: str = "websocket",
        webrtc_config: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            url=url,
            codec=codec,
            dialect="live",
            tasks=tasks,
            transport=transport,
            on_websocket_close=on_websocket_close,
        )
        self.statistics = statistics
        self.privacy = privacy
        options = self._connection_options(
            api_key=api_key,
            trace=trace and not privacy,
            reconnect=reconnect,
            max_reconnect_attempts=max_reconnect_attempts,
            ping_interval_s=ping_interval_s,
        )
        if transport == "webrtc":
            # The same Live machinery over a peer connection, opened by sessionStart (the config
            # goes with the SDP offer): realtime/webrtc_live_connection.py.
            from telephony_bridge.realtime.webrtc_live_connection import WebRTCLiveConnection

            self._use_connection(WebRTCLiveConnection(webrtc_config=webrtc_config, **options))
        else:
            self._use_connection(LiveConnection(**options))
        self._caller_format = ULAW_8K
        self._started = False
        self._turns = itertools.count(1)
        self._turn: _Turn | None = None
        self._dropping_rest = False  # a cleared turn: the rest of its speech is not played
        self._transcript_marks: deque[tuple[float, float, str]] = deque(
            maxlen=400
        )  # agent words on the output timeline
        self.max_lead_ms = 0.0
        self.turns_spoken = 0

    # --- lifecycle ------------------------------------------------------------------------
    def _connected(self) -> None:
        # Told once the scenario has its client and has added listeners (before its next await).
        asyncio.get_running_loop().call_soon(self._connected_events)

    def _connected_events(self) -> None:
        response = getattr(self._connection.ws, "response", None)
        if response is not None:
            headers = {
                k: v for k, v in response.headers.raw_items() if k.lower() not in ("set-cookie", "authorization")
            }
            self._emit(
                LiveAPIEvents.HTTPResponse,
                {"statusCode": response.status_code, "reasonPhrase": response.reason_phrase, "headers": headers},
            )
        self._emit(
            LiveAPIEvents.ConnectorInformation,
            {
                "url": self._connection.safe_url(),
                "codec": self.codec,
                "audioFormat": live_wire.AUDIO_FORMATS[self.codec],
            },
        )

    @property
    def transcript(self) -> list[tuple[str, str]]:
        return self._connection.transcript

    @property
    def uplink(self) -> Any:
        return self._connection.uplink

    def set_caller_format(self, audio_format: Any) -> None:
        self._caller_format = audio_format
        self._connection.uplink.set_input_format(audio_format)

    def _emit(self, member: LiveAPIEvents, payload: Mapping[str, Any]) -> None:
        if self.observer is not None and member in (
            LiveAPIEvents.AgentStartedSpeaking,
            LiveAPIEvents.AgentStoppedSpeaking,
        ):
            self.observer(self, ServerEvent(member, payload))  # type: ignore[arg-type]
        self.listeners.emit(
            member, EventPayload(client=self, name=member.name, data={"customEvent": member.name, "payload": payload})
        )

    # --- client events --------------------------------------------------------------------
    def sessionStart(self, parameters: Mapping[str, Any] | None = None) -> None:
        """`session.start`: the model, instructions, voice, delegation, input… The audio format is
        the bridge's (μ-law 8 kHz pass-through; `{"type": "audio/pcm", "rate": 24000}` asks for
        PCM16); Realtime-only fields are dropped with a warning (Live rejects them)."""
        if self._started:
            raise RuntimeError("sessionStart() was already called: use sessionUpdate / sessionInstructionsAppend")
        parameters = dict(parameters or {})
        session = dict(parameters.get("session") or {})
        audio_format = (session.get("audio") or {}).get("format") if isinstance(session.get("audio"), Mapping) else None
        if audio_format is not None:
            codec = live_wire.codec_of_format(audio_format)
            if codec != self.codec:
                self.codec = codec
                self._connection.set_codec(codec, self._caller_format)
                for channel in self._channels.values():
                    channel.playout.source_format(model_audio_format(codec))
        self._started = True
        self._connection.start(live_wire.live_session_config(session, self.codec), parameters.get("event_id"))

    def sessionUpdate(self, parameters: Mapping[str, Any]) -> None:
        """Only `delegation` and `triggers` change after the start; a new `instructions` goes as
        `session.instructions.append`; voice and format are fixed (ValueError)."""
        session = dict(parameters.get("session") or {})
        audio = session.get("audio")
        if audio:
            raise ValueError("GPT-Live fixes the voice and audio format at sessionStart")
        instructions = session.pop("instructions", None)
        if instructions:
            self.sessionInstructionsAppend({"content": instructions, "delegation_id": None})
        update = live_wire.live_session_update(session)
        if update:
            if self._connection.start_config is not None:
                self._connection.start_config.update(update)  # a reseeded session starts with it
            self._send(live_wire.session_update(update, parameters.get("event_id")))

    # --- media graph ----------------------------------------------------------------------
    def clearMediaBuffer(self, parameters: Mapping[str, Any] | None = None) -> None:
        """Stop the agent's audio at once (the app's decision, not caller speech): drop what is
        queued, clear the carrier, and tell the model with `session.instructions.append` what the
        caller did not hear. Nothing happens when nothing is playing."""
        self._interrupt_channels((parameters or {}).get("tag"), True)

    def _barge_in(self, channel: PlayoutChannel, interruption: Interruption, truncate: bool) -> None:
        turn = self._turn
        heard_ms = 0.0
        for cut in interruption.truncations:
            heard_ms = max(heard_ms, float(cut.audio_end_ms))
        if interruption.episode_ended is not None:
            channel.media_ended(interruption.episode_ended)
        said_ms = turn.sent_ms if turn is not None else heard_ms
        heard_text = self._heard_text(turn, heard_ms) if turn is not None else None
        self.sessionInstructionsAppend(
            {"content": live_wire.unheard_note(heard_ms, said_ms, heard_text), "delegation_id": None}
        )
        if turn is not None:
            turn.interrupted = True
            self._dropping_rest = True
            self._end_turn(heard_ms)

    def _heard_text(self, turn: _Turn, heard_ms: float) -> str:
        until = turn.output_start_ms + heard_ms
        words = [
            text for start, end, text in self._transcript_marks if turn.output_start_ms - 200 <= start and end <= until
        ]
        return "".join(words).strip()

    # --- what the connection reports --------------------------------------------------------
    async def on_audio_delta(
        self,
        response_id: str,
        item_id: str,
        content_index: int,
        audio: bytes,
        duration_ms: float,
        event: dict[str, Any],
    ) -> None:
        if self.listeners.has(LiveAPIEvents.SessionOutputAudioDelta):  # every delta, silent ones too
            self._emit(LiveAPIEvents.SessionOutputAudioDelta, event)
        loud = audible(audio, self.codec)
        turn = self._turn
        if self._dropping_rest:
            if loud:
                self.stats.late_deltas_dropped += 1
                return
            self._dropping_rest = False
        if turn is None:
            if not loud:
                return  # silence between turns is not sent to the phone
            turn = self._start_turn(duration_ms)
        turn.quiet_ms = 0.0 if loud else turn.quiet_ms + duration_ms
        for channel in list(self._channels.values()):
            await channel.play(turn.response_id, turn.item_id, 0, audio, duration_ms)
            await self._bound_lead(channel, turn)
        turn.sent_ms += duration_ms
        if turn.quiet_ms >= QUIET_MS and self._turn is turn:
            for channel in list(self._channels.values()):
                await channel.finish_audio(turn.response_id)
            self._end_turn(None)

    def _start_turn(self, duration_ms: float) -> _Turn:
        number = next(self._turns)
        turn = _Turn(number, f"live_turn_{number}", f"live_item_{number}", self._connection.output_ms - duration_ms)
        self._turn = turn
        self.turns_spoken += 1
        for channel in self._channels.values():
            ledger = channel.call.playback
            ledger.response_started(turn.response_id)
            ledger.item_added(turn.response_id, turn.item_id)
        self._emit(LiveAPIEvents.AgentStartedSpeaking, {"turn": number, "outputMs": round(turn.output_start_ms)})
        return turn

    def _end_turn(self, heard_ms: float | None) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        for channel in list(self._channels.values()):
            ledger = channel.call.playback
            if heard_ms is None:
                heard_ms = ledger.heard_ms(turn.item_id, 0, channel.call.now_ms())
            ended = ledger.response_finished(turn.response_id)
            if ended is not None:
                channel.media_ended(ended)
        self._emit(
            LiveAPIEvents.AgentStoppedSpeaking,
            {
                "turn": turn.number,
                "transcript": self._heard_text(turn, turn.sent_ms + QUIET_MS),
                "outputMs": round(turn.output_start_ms + turn.sent_ms),
                "durationMs": round(turn.sent_ms),
                "heardMs": round(heard_ms or 0.0),
                "interrupted": turn.interrupted,
                "playoutLeadMs": round(turn.max_lead_ms),
            },
        )

    async def _bound_lead(self, channel: PlayoutChannel, turn: _Turn) -> None:
        """Measure the bridge's lead over the phone (written minus heard); wait when it grows past MAX_LEAD_MS."""
        ledger = channel.call.playback
        lead = turn.sent_ms - ledger.heard_ms(turn.item_id, 0, channel.call.now_ms())
        turn.max_lead_ms = max(turn.max_lead_ms, lead)
        self.max_lead_ms = max(self.max_lead_ms, lead)
        if lead > MAX_LEAD_MS:
            await asyncio.sleep(min(lead - MAX_LEAD_MS, 500.0) / 1000)

    def on_live_event(self, member: LiveAPIEvents, event: dict[str, Any]) -> None:
        wire_event = event
        if member is LiveAPIEvents.SessionOutputTranscriptDelta:
            start, end = event.get("start_ms"), event.get("end_ms")
            if isinstance(start, (int, float)) and isinstance(end, (int, float)):
                self._transcript_marks.append((float(start), float(end), str(event.get("delta", ""))))
        if self.observer is not None:
            if member is LiveAPIEvents.SessionOutputTranscriptDelta and self._turn is not None:
                event = {**event, "item_id": self._turn.item_id}  # the journal's line; the scenario gets the wire event
            self.observer(self, ServerEvent(member, event))  # type: ignore[arg-type]
        self._emit(member, wire_event)

    async def on_audio_done(self, response_id: str) -> None: ...
    def on_response_started(self, response_id: str) -> None: ...
    def on_item_added(self, response_id: str, item_id: str) -> None: ...
    def on_response_finished(self, response_id: str) -> None: ...
    def on_server_event(self, member: Any, event: dict[str, Any]) -> None: ...

    def on_reconnecting(self, attempt: int, code: int, reason: str) -> None:
        self._end_turn(None)
        super().on_reconnecting(attempt, code, reason)

    def on_reconnected(self, reconnected: Reconnected) -> None:
        self._transcript_marks.clear()  # the new session's timeline starts at zero
        super().on_reconnected(replace(reconnected, resumed_answer=False))  # Live has no answer to resume

    def on_closing(self) -> None:
        self._end_turn(None)
        super().on_closing()

    def on_closed(self, code: int, reason: str, was_clean: bool) -> None:
        if self.statistics:  # Voximplant's per-client statistics, here in the call's log
            log.info("%s: Live client %s statistics: %s", self.tasks.label, self._id, self.stats_live())
        if not was_clean and code != 1000:
            self._emit(LiveAPIEvents.WebSocketError, {"code": code, "reason": reason})
        super().on_closed(code, reason, was_clean)

    def stats_live(self) -> dict[str, Any]:
        """Live-specific numbers: the playout lead, input kept flowing, gap fill not duplicated."""
        uplink = self._connection.uplink
        return {
            "maxPlayoutLeadMs": round(self.max_lead_ms),
            "inputMs": round(uplink.sent_ms),
            "silenceFilledMs": round(uplink.filled_ms),
            "gapFillTrimmedMs": round(uplink.trimmed_ms),
            "turns": self.turns_spoken,
            "reconnects": self.stats.reconnects,
        }
