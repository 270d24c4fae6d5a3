"""RealtimeAPIClient: Voximplant's `OpenAI.Beta.RealtimeAPIClient` surface over one ModelConnection.

`RealtimeClientCore` is the one implementation both client shapes share (this module's Beta
`RealtimeAPIClient` and `realtime_ga.GARealtimeAPIClient`): connection, media graph, playout,
barge-in, listeners. The shapes differ only in their client-event methods' arguments and in the
names and payloads of their events.

The model connection (realtime/connection.py) owns the socket, reconnects and replays; the uplink
(realtime/uplink.py) carries caller audio; this front turns what the connection reports into
scenario events (`addEventListener`), observer events (realtime/observer.py) and playout into the
calls it was sent to (`PlayoutChannel`s).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.connection import (
    DEFAULT_PING_INTERVAL_S,
    DEFAULT_SESSION_MAX_S,
    ModelConnection,
)
from telephony_bridge.realtime.conversation import ConversationMirror
from telephony_bridge.realtime.dialect import Codec
from telephony_bridge.realtime.events import Dialect, RealtimeAPIEvents, normalize_event_name
from telephony_bridge.realtime.observer import DownlinkLatency, ServerEvent
from telephony_bridge.realtime.playback import Interruption
from telephony_bridge.realtime.stall import DEFAULT_ANSWER_STALL_TIMEOUT_S
from telephony_bridge.realtime.text import with_model
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.listeners import EventPayload
from telephony_bridge.voxengine.model_client_base import ModelClientBase, log
from telephony_bridge.voxengine.playout_channel import PlayoutChannel

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
OPENAI_HOST = "api.openai.com"
# OpenAI's current GA realtime model (shared/reference/gpt-live.md, "Status"); REALTIME_MODEL overrides it.
DEFAULT_MODEL = "gpt-realtime-2.1"
# Models OpenAI has announced it shuts down (or has shut down): model -> date. A client created with
# one logs a warning with the date, so a scenario is moved before its calls start failing.
RETIRED_MODELS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "gpt-realtime",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime-mini-2025-12-15",
            "gpt-audio-mini",
            "gpt-audio-mini-2025-12-15",
        ),
        "2027-01-20",
    ),
    **dict.fromkeys(
        (
            "whisper-1",
            "gpt-4o-transcribe",
            "gpt-4o-mini-transcribe",
            "gpt-4o-mini-transcribe-2025-12-15",
            "gpt-4o-transcribe-diarize",
        ),
        "2027-02-26",
    ),
    **dict.fromkeys(
        (
            "gpt-4o-realtime-preview",
            "gpt-4o-realtime-preview-2024-10-01",
            "gpt-4o-realtime-preview-2024-12-17",
            "gpt-4o-realtime-preview-2025-06-03",
            "gpt-4o-mini-realtime-preview",
            "gpt-4o-mini-realtime-preview-2024-12-17",
        ),
        "2026-04-30",
    ),
}
DOWNLINK_SAMPLE_EVERY = 10  # model deltas between two latency samples


@with_snake_case_twins
class RealtimeClientCore(ModelClientBase):
    """What every realtime client shape shares: one model connection, one playout per call, one barge-in."""

    _id_prefix = "rtc"
    _ids = itertools.count(1)
    # Whether the bridge sends its own session.update (the audio formats) on connect. A translation
    # session has no format to set: its audio is PCM16 24 kHz by protocol.
    _bridge_session_update = True
    _normalize_event: Callable[[Any], Any] = staticmethod(normalize_event_name)  # the GA front has its own names
    codec: Codec
    dialect: Dialect

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        model: str,
        dialect: Dialect,
        codec: Codec,
        tasks: TaskOwner,
        on_websocket_close: Callable[[Any], Any] | None = None,
        trace: bool = False,
        reconnect: bool = True,
        max_reconnect_attempts: int = 12,
        session_max_s: float | None = DEFAULT_SESSION_MAX_S,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
        answer_stall_timeout_s: float = DEFAULT_ANSWER_STALL_TIMEOUT_S,
        model_in_url: bool = True,
        transport: str = "websocket",
        webrtc_config: Mapping[str, str] | None = None,
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
        if dialect == "beta" and urlsplit(url).hostname == OPENAI_HOST:
            raise ValueError(
                "dialect='beta' cannot reach api.openai.com: OpenAI closed the beta wire on 2026-05-07 (it closes "
                "beta-shaped sessions with beta_api_shape_disabled). Leave dialect at 'ga' (the default): the Beta "
                "client shape still works, translated to GA; 'beta' is for self-hosted beta-wire servers only."
            )
        if codec not in ("pcm16", "g711_ulaw"):
            raise ValueError(f"codec must be 'pcm16' or 'g711_ulaw', not {codec!r}")
        if transport == "webrtc" and dialect != "ga":  # an unknown transport: ModelClientBase refuses it
            raise ValueError("transport 'webrtc' speaks the GA wire only; leave dialect at 'ga'")
        super().__init__(
            url=with_model(url, model) if model_in_url else url,
            codec=codec,
            dialect=dialect,
            tasks=tasks,
            transport=transport,
            on_websocket_close=on_websocket_close,
        )
        self.model = model
        options = self._connection_options(
            api_key=api_key,
            trace=trace,
            reconnect=reconnect,
            max_reconnect_attempts=max_reconnect_attempts,
            ping_interval_s=ping_interval_s,
        )
        options.update(dialect=dialect, session_max_s=session_max_s, answer_stall_timeout_s=answer_stall_timeout_s)
        if transport == "webrtc":
            # The same connection machinery over a peer connection (realtime/webrtc_connection.py);
            # `url` is then the calls endpoint the SDP offer goes to.
            from telephony_bridge.realtime.webrtc_connection import WebRTCModelConnection

            self._use_connection(WebRTCModelConnection(webrtc_config=webrtc_config, **options))
        else:
            self._use_connection(ModelConnection(**options))
        self.set_caller_format = self._connection.uplink.set_input_format  # told by Call.sendMediaTo

    # --- lifecycle ------------------------------------------------------------------------
    def _connected(self) -> None:
        # The bridge owns the audio formats: set them before anything else (pitfall 10). Its own
        # update, so its session.updated never reaches the scenario (pitfall 22).
        if self._bridge_session_update:
            self._send(self._connection.session_update_for({}), own=True)

    @property
    def conversation(self) -> ConversationMirror:
        return self._connection.conversation

    @property
    def trace(self) -> bool:
        return self._connection.trace

    @property
    def _ws(self) -> Any:
        """The model socket (tests reach for it; kept after the close)."""
        return self._connection.ws

    @property
    def _caller_speaking(self) -> bool:
        return self._connection.caller_speaking

    async def _dispatch(self, event: Any) -> None:
        """A server event as the reader would hand it over (the fuzz tests drive this)."""
        await self._connection.dispatch(event)

    def _emit(self, member: Any, data: Mapping[str, Any]) -> None:
        self.listeners.emit(member, EventPayload(client=self, name=member.name, data=data))

    # --- client events --------------------------------------------------------------------
    def _outgoing(self, event: Mapping[str, Any], own: bool) -> Mapping[str, Any]:
        if event.get("type") == "session.update":  # the bridge's own update is not the scenario's
            return self._connection.track_session_update(event, own=own)
        return event

    def _cancel_response(self, response_id: str) -> None:
        """A barge-in cancels the answer by name: its audio is no longer due."""
        self._connection.response_cancelled(response_id)
        self._send(wire.response_cancel(response_id=response_id))

    def _delete_item(self, item_id: str) -> None:
        """Barge-in: the caller heard nothing of this item."""
        self._send(wire.conversation_item_delete(item_id))

    def _truncate_item(self, item_id: str, content_index: int, audio_end_ms: float) -> None:
        """Barge-in: the caller heard this item up to `audio_end_ms`."""
        self._send(wire.conversation_item_truncate(item_id, content_index, audio_end_ms))

    # --- media graph ----------------------------------------------------------------------
    def clearMediaBuffer(self, parameters: Mapping[str, Any] | None = None) -> None:
        """Barge-in: stop playback at once and truncate the conversation at what the caller heard.

        Does nothing (and fires nothing) when nothing is playing. `{"truncate": False}` skips the
        truncation; `{"tag": …}` limits it to the channels sent with that tag."""
        parameters = parameters or {}
        self._interrupt_channels(parameters.get("tag"), parameters.get("truncate", True) is not False)

    def _barge_in(self, channel: PlayoutChannel, interruption: Interruption, truncate: bool) -> None:
        # An answer still generating would keep adding audio the caller will never hear. Name it,
        # so a late cancel can never hit a newer answer; if the server already cancelled it (server
        # VAD), it says so with a benign error.
        for response_id in interruption.interrupted_response_ids:
            self._cancel_response(response_id)
        if truncate:
            for cut in interruption.truncations:
                if cut.delete:
                    self.stats.deletions += 1
                    self._delete_item(cut.item_id)
                else:
                    self.stats.truncations += 1
                    self._truncate_item(cut.item_id, cut.content_index, cut.audio_end_ms)
        if interruption.episode_ended is not None:
            channel.media_ended(interruption.episode_ended)

    # --- what the model connection reports (realtime.connection.ConnectionEvents) ---------
    async def on_audio_delta(
        self,
        response_id: str,
        item_id: str,
        content_index: int,
        audio: bytes,
        duration_ms: float,
        event: dict[str, Any],
    ) -> None:
        observer = self.observer
        sampled = observer is not None and self.stats.model_audio_deltas % DOWNLINK_SAMPLE_EVERY == 0
        started = asyncio.get_running_loop().time() if sampled else 0.0
        for channel in list(self._channels.values()):
            await channel.play(response_id, item_id, content_index, audio, duration_ms)
        if sampled and self._channels and observer is not None:
            # what the bridge adds between the model's delta and the carrier's media
            observer(self, DownlinkLatency(asyncio.get_running_loop().time() - started))
        if self.listeners.has(RealtimeAPIEvents.ResponseAudioDelta):
            self._emit(RealtimeAPIEvents.ResponseAudioDelta, event)

    async def on_audio_done(self, response_id: str) -> None:
        for channel in list(self._channels.values()):
            await channel.finish_audio(response_id)

    def on_response_started(self, response_id: str) -> None:
        for channel in self._channels.values():
            channel.call.playback.response_started(response_id)

    def on_item_added(self, response_id: str, item_id: str) -> None:
        for channel in self._channels.values():
            channel.call.playback.item_added(response_id, item_id)

    def on_response_finished(self, response_id: str) -> None:
        for channel in list(self._channels.values()):
            ended = channel.call.playback.response_finished(response_id)
            if ended is not None:
                channel.media_ended(ended)

    def on_server_event(self, member: RealtimeAPIEvents, event: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(self, ServerEvent(member, event))
        self._emit(member, event)


@with_snake_case_twins
class RealtimeAPIClient(RealtimeClientCore):
    """Voximplant's OpenAI.Beta.RealtimeAPIClient (positional arguments). Create with
    `OpenAI.Beta.createRealtimeAPIClient`."""

    def sessionUpdate(self, session: Mapping[str, Any], eventId: str | None = None) -> None:
        self._connection.update_session(session)  # replayed as one session.update after a reconnect
        self._send(wire.session_update(session, self.dialect, self.codec, eventId))

    def conversationItemCreate(
        self, previousItemId: str | None, item: Mapping[str, Any], eventId: str | None = None
    ) -> None:
        self._send(wire.conversation_item_create(previousItemId, item, self.dialect, eventId))

    def conversationItemDelete(self, itemId: str, eventId: str | None = None) -> None:
        self._send(wire.conversation_item_delete(itemId, eventId))

    def conversationItemTruncate(
        self, itemId: str, contentIndex: int, audioEndMs: int, eventId: str | None = None
    ) -> None:
        self._send(wire.conversation_item_truncate(itemId, contentIndex, audioEndMs, eventId))

    def conversationItemRetrieve(self, itemId: str, eventId: str | None = None) -> None:
        self._send(wire.conversation_item_retrieve(itemId, eventId))

    def responseCreate(self, response: Mapping[str, Any] | None = None, eventId: str | None = None) -> None:
        self._send(wire.response_create(response or {}, self.dialect, self.codec, eventId))

    def responseCancel(self, eventId: str | None = None) -> None:
        self._connection.response_cancelled()  # a cancelled answer owes the caller no more audio
        self._send(wire.response_cancel(eventId))


def resolve_realtime_url(explicit: str | None, environ: Mapping[str, str], local_engine_url: str | None) -> str:
    """`url` param > REALTIME_URL > the embedded local engine when OPENAI_API_KEY is unset > OpenAI."""
    if explicit:
        return explicit
    if environ.get("REALTIME_URL"):
        return environ["REALTIME_URL"]
    if not environ.get("OPENAI_API_KEY") and local_engine_url:
        return local_engine_url
    return OPENAI_REALTIME_URL


def model_for(parameters: Mapping[str, Any], environ: Mapping[str, str], default: str | None = None) -> str:
    """The `model` parameter, else REALTIME_MODEL, else OpenAI's current GA realtime model; a model
    OpenAI has announced it shuts down is logged with the date."""
    model = parameters.get("model") or default or environ.get("REALTIME_MODEL") or DEFAULT_MODEL
    retired_on = RETIRED_MODELS.get(model)
    if retired_on is not None:
        log.warning("model %r: OpenAI shuts it down on %s (announced); move to %s", model, retired_on, DEFAULT_MODEL)
    return model


def resolve_transport_url(url: str, parameters: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The URL a client of `parameters["transport"]` dials: `url` itself for a WebSocket; for WebRTC
    the `webrtcUrl` parameter, else REALTIME_WEBRTC_URL, else the calls endpoint beside `url`."""
    if parameters.get("transport", "websocket") != "webrtc":
        return url
    from telephony_bridge.realtime.webrtc_connection import calls_url_for

    return parameters.get("webrtcUrl") or environ.get("REALTIME_WEBRTC_URL") or calls_url_for(url)


def webrtc_config_of(environ: Mapping[str, str]) -> dict[str, str]:
    """The WEBRTC_* settings (ICE servers, host addresses: webrtc/peer.py) a WebRTC client uses."""
    return {name: value for name, value in environ.items() if name.startswith("WEBRTC_")}


def client_options(parameters: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of RealtimeClientCore every shape takes from its parameters alike."""
    return {
        "transport": parameters.get("transport", "websocket"),
        "webrtc_config": webrtc_config_of(environ),
        "api_key": parameters.get("apiKey") or environ.get("OPENAI_API_KEY"),
        "codec": parameters.get("codec", "pcm16"),
        "on_websocket_close": parameters.get("onWebSocketClose"),
        # `privacy` (Voximplant: no logging of the connection) wins over `trace`.
        "trace": bool(parameters.get("trace", False)) and not parameters.get("privacy", False),
        "reconnect": bool(parameters.get("reconnect", True)),
        "max_reconnect_attempts": int(parameters.get("maxReconnectAttempts", 12)),
        "session_max_s": parameters.get("sessionMaxDurationS", DEFAULT_SESSION_MAX_S),
        "ping_interval_s": parameters.get("pingIntervalS", DEFAULT_PING_INTERVAL_S),
        "answer_stall_timeout_s": float(
            parameters.get(
                "answerStallTimeoutS", environ.get("ANSWER_STALL_TIMEOUT_S") or DEFAULT_ANSWER_STALL_TIMEOUT_S
            )
        ),
    }


async def create_realtime_api_client(
    parameters: Mapping[str, Any],
    *,
    tasks: TaskOwner,
    environ: Mapping[str, str] | None = None,
    local_engine_url: str | None = None,
) -> RealtimeAPIClient:
    """Voximplant's `OpenAI.Beta.createRealtimeAPIClient(parameters)`; connects before returning."""
    environ = os.environ if environ is None else environ
    parameters = dict(parameters or {})
    url = resolve_realtime_url(parameters.get("url"), environ, local_engine_url)
    client = RealtimeAPIClient(
        url=resolve_transport_url(url, parameters, environ),
        model=model_for(parameters, environ),
        dialect=parameters.get("dialect", "ga"),
        tasks=tasks,
        **client_options(parameters, environ),
    )
    await client.connect()
    return client
