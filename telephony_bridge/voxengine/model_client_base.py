"""ModelClientBase: what every scenario-facing model client shares, whatever its wire.

Each client shape (Realtime Beta and GA, translation, GPT-Live) is a thin front over one model
connection (realtime/connection.py, realtime/live_connection.py) and the `PlayoutChannel`s of the
calls it plays into. What does not depend on the wire is here, once: the client's id, listeners and
observer, the connection's lifecycle (connect, close, what it reports about reconnects and the
close) and the media graph (sendMediaTo / stopMediaTo). A shape builds its connection, says how its
event names normalize and what a barge-in tells its model, and adds its client events.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime.connection import ModelConnection
from telephony_bridge.realtime.connection_events import Reconnected
from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.realtime.observer import ClientEventSent, MediaEvent, Observer
from telephony_bridge.realtime.playback import Interruption
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.listeners import EventPayload, Handler, Listeners
from telephony_bridge.voxengine.playout_channel import PlayoutChannel

log = logging.getLogger("telephony_bridge.realtime")

# How a client reaches the model: a WebSocket, or WebRTC (an SDP offer to the calls endpoint,
# events on the oai-events data channel, audio on Opus tracks).
TRANSPORTS = ("websocket", "webrtc")


@with_snake_case_twins
class ModelClientBase:
    """One model connection, its listeners and the calls its audio plays into."""

    # Each shape's: its ids (`<prefix>_<n>_<random>`) and how its listeners' event names normalize.
    _id_prefix: ClassVar[str]
    _ids: ClassVar[Iterator[int]]
    _normalize_event: Callable[[Any], Any]

    _connection: ModelConnection
    codec: str
    dialect: str

    def __init__(
        self,
        *,
        url: str,
        codec: str,
        dialect: str,
        tasks: TaskOwner,
        transport: str,
        on_websocket_close: Callable[[Any], Any] | None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, not {transport!r}")
        self.transport = transport
        self.url = url
        self.codec = codec
        self.dialect = dialect
        self.tasks = tasks
        self._id = f"{self._id_prefix}_{next(self._ids)}_{os.urandom(4).hex()}"
        self._on_websocket_close = on_websocket_close
        self._channels: dict[int, PlayoutChannel] = {}
        self.listeners = Listeners(f"{tasks.label} client {self._id}", tasks, self._normalize_event)
        # Told of every server event (not audio), every control event sent and every interruption,
        # as typed events (realtime/observer.py): the call journal listens here without being a
        # scenario listener.
        self.observer: Observer | None = None

    def _connection_options(
        self,
        *,
        api_key: str | None,
        trace: bool,
        reconnect: bool,
        max_reconnect_attempts: int,
        ping_interval_s: float | None,
    ) -> dict[str, Any]:
        """The keyword arguments every model connection takes alike; a shape adds its own."""
        return {
            "url": self.url,
            "api_key": api_key,
            "codec": self.codec,
            "tasks": self.tasks,
            "events": self,
            "name": self._id,
            "trace": trace,
            "reconnect": reconnect,
            "max_reconnect_attempts": max_reconnect_attempts,
            "ping_interval_s": ping_interval_s,
        }

    def _use_connection(self, connection: ModelConnection) -> None:
        self._connection = connection
        self.stats = connection.stats
        # The caller-audio hot path, bound straight to the uplink: no extra coroutine per frame.
        self.accept_caller_audio = connection.uplink.accept_caller_audio

    # --- lifecycle ------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 10.0) -> None:
        await self._connection.connect(timeout_s)
        self._connected()

    def _connected(self) -> None:
        """What a shape does once its connection is open, before the scenario gets the client."""

    def id(self) -> str:
        return self._id

    def webSocketId(self) -> str | None:
        return self._connection.session_id

    @property
    def closed(self) -> bool:
        return self._connection.closed

    @property
    def session(self) -> dict[str, Any]:
        return self._connection.session

    @property
    def local_address(self) -> tuple[str, int] | None:
        """This end of the model connection (host, port), kept after it closes; None before it opens.
        What the other end sees as the remote address: the call-flow kit matches connections by it."""
        ws = self._connection.ws
        if ws is None:
            return None
        try:
            return ws.local_address
        except (OSError, AttributeError):  # a transport already torn down
            return None

    async def aclose(self, reason: str = "closed by scenario") -> None:
        """Close for good. Idempotent; onWebSocketClose is called once."""
        await self._connection.aclose(reason)

    def close(self) -> None:
        """Close the model WebSocket (Voximplant's close(): fire and forget)."""
        if not self.closed:
            self.tasks.spawn(self.aclose(), name=f"close {self._id}")

    # --- listeners ------------------------------------------------------------------------
    def addEventListener(self, event: Any, handler: Handler) -> None:
        self.listeners.add(event, handler)

    def removeEventListener(self, event: Any, handler: Handler | None = None) -> None:
        self.listeners.remove(event, handler)

    def _emit_media(self, member: MediaEvents, **fields: Any) -> None:
        if self.observer is not None:
            self.observer(self, MediaEvent(member, {k: v for k, v in fields.items() if k != "call"}))
        self.listeners.emit(member, EventPayload(client=self, name=member.name, **fields))

    # --- client events (fire and forget, in order, like VoxEngine) ------------------------
    def _send(self, event: Mapping[str, Any], *, own: bool = False) -> None:
        """Queue a client event. `own`: sent by the bridge, not the scenario."""
        if self._connection.closed:
            log.warning("%s: %s after close ignored", self.tasks.label, event.get("type"))
            return
        event = self._outgoing(event, own)
        if self.observer is not None:
            self.observer(self, ClientEventSent(event))
        self._connection.send(event)

    def _outgoing(self, event: Mapping[str, Any], own: bool) -> Mapping[str, Any]:
        """The event as it goes on the wire (a shape may track or rewrite some)."""
        return event

    # --- media graph ----------------------------------------------------------------------
    def sendMediaTo(self, unit: Any, parameters: Mapping[str, Any] | None = None) -> None:
        """Play the model's audio into `unit` (a Call)."""
        if not hasattr(unit, "attach_playout") or not hasattr(unit, "playout"):
            raise TypeError(f"{unit!r} cannot play model audio")
        channel = PlayoutChannel(self, unit, parameters or {})
        unit.attach_playout(channel)
        self._channels[id(unit)] = channel

    def stopMediaTo(self, unit: Any) -> None:
        channel = self._channels.get(id(unit))
        if channel is not None:
            channel.detach()

    def _interrupt_channels(self, tag: Any, truncate: bool) -> None:
        for channel in list(self._channels.values()):
            if tag is None or channel.tag == tag:
                channel.interrupt(truncate)

    def _barge_in(self, channel: PlayoutChannel, interruption: Interruption, truncate: bool) -> None:
        """Tell the model what the caller did not hear of `channel`'s stopped playout (the channel
        has already stopped it, counted it and told the observer)."""
        raise NotImplementedError

    # --- what the model connection reports (realtime.connection_events.ConnectionEvents) ---
    def on_reconnecting(self, attempt: int, code: int, reason: str) -> None:
        self._emit_media(MediaEvents.WebSocketReconnecting, attempt=attempt, code=code, reason=reason)

    def on_reconnected(self, reconnected: Reconnected) -> None:
        r = reconnected
        self._emit_media(
            MediaEvents.WebSocketReconnected,
            attempt=r.attempt,
            downtimeMs=r.downtime_ms,
            replayedItems=r.replayed_items,
            recycled=r.recycled,
            resumedAnswer=r.resumed_answer,
            callerAudioLostMs=r.caller_audio_lost_ms,
            modelSilentBeforeMs=r.model_silent_before_ms,
        )

    def on_closing(self) -> None:
        for channel in list(self._channels.values()):
            channel.detach()

    def on_closed(self, code: int, reason: str, was_clean: bool) -> None:
        if self._on_websocket_close is None:
            return
        event = EventPayload(client=self, code=code, reason=reason, wasClean=was_clean)
        try:
            result = self._on_websocket_close(event)
            if asyncio.iscoroutine(result):
                self.tasks.spawn(result, name="onWebSocketClose")
        except Exception:
            log.exception("%s: onWebSocketClose raised", self.tasks.label)
