"""What every OpenAI-library client shape stands on: the bridge's one engine, reached as a front.

A shape (RealtimeClient, OpenAIRealtimeWebSocket) never opens a socket and never plays audio
itself. On `connect` it asks for a Voximplant `RealtimeAPIClient` — inside a scenario the call's own
`OpenAI.Beta.createRealtimeAPIClient`, so the call journal, the metrics and the end-of-call cleanup
see it like any other client — and from then on:

- server events reach the shape through the engine's listeners, in wire order;
- the client events the engine sends (the shape's own and those of a barge-in) reach it through
  the engine's observer, teed (the call journal keeps its place in front);
- caller audio goes from the call straight into the engine's uplink (`accept_caller_audio` is the
  uplink's own coroutine function: nothing added per frame);
- model audio goes to the call through the engine's `PlayoutChannel`, and a barge-in is the
  engine's: stop at once, cancel the answer by id, truncate or delete at what the caller heard.

So reconnect and replay, pacing, marks and truncation are the same code for every shape.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from telephony_bridge.audio.formats import AudioFormat
from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime.events import RealtimeAPIEvents
from telephony_bridge.realtime.observer import ClientEventSent
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_client import RealtimeAPIClient, create_realtime_api_client

EngineFactory = Callable[[Mapping[str, Any]], Awaitable[RealtimeAPIClient]]


def standalone_factory(label: str) -> EngineFactory:
    """Outside a scenario: the engine on its own task owner (REALTIME_URL / OPENAI_API_KEY as the bridge reads them)."""

    async def create(parameters: Mapping[str, Any]) -> RealtimeAPIClient:
        return await create_realtime_api_client(parameters, tasks=TaskOwner(label), environ=os.environ)

    return create


def in_call(beta: Any) -> dict[str, Any]:
    """A shape's ties to one call, from its `OpenAI.Beta`: the call's engine factory (journal,
    observer, closed with the call) and its task owner for async handlers and tools."""
    tasks = beta._tasks
    return {
        "engine_factory": beta.createRealtimeAPIClient,
        "spawn": lambda coro, name: tasks.spawn(coro, name=name),
        "label": tasks.label,
    }


async def _dropped(frame: bytes) -> None:
    """Caller audio while the shape is not connected, or muted: nowhere to go."""


class _ObserverTee:
    """The engine's observer, then the shape: the journal first, as before the shape existed."""

    __slots__ = ("before", "shape")

    def __init__(self, before: Any, shape: Callable[[Mapping[str, Any]], None]) -> None:
        self.before = before
        self.shape = shape

    def __call__(self, client: Any, observed: Any) -> None:
        if self.before is not None:
            self.before(client, observed)
        if type(observed) is ClientEventSent:
            self.shape(observed.event)


@with_snake_case_twins
class EngineFront:
    """The engine half of a shape: media graph, mute, sending, barge-in. Subclasses add the surface."""

    def __init__(self, factory: EngineFactory) -> None:
        self._factory = factory
        self.engine: RealtimeAPIClient | None = None
        self._caller_format: AudioFormat | None = None
        self._pending_media: list[tuple[Any, Mapping[str, Any] | None]] = []
        self._muted = False

    # --- the engine -------------------------------------------------------------------------
    async def _open_engine(self, parameters: Mapping[str, Any]) -> RealtimeAPIClient:
        engine = await self._factory(parameters)
        self.engine = engine
        for member in RealtimeAPIEvents:
            engine.addEventListener(member, self._engine_event)
        engine.observer = _ObserverTee(engine.observer, self._client_event_sent)
        if self._caller_format is not None:
            engine.set_caller_format(self._caller_format)
        for unit, parameters_ in self._pending_media:
            engine.sendMediaTo(unit, parameters_)
        self._pending_media.clear()
        return engine

    def _engine_event(self, payload: Mapping[str, Any]) -> None:
        self._server_event(payload["data"])

    def _server_event(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def _client_event_sent(self, event: Mapping[str, Any]) -> None:
        """Every client event the engine queued for the model (never caller audio)."""

    @property
    def _open(self) -> bool:
        return self.engine is not None and not self.engine.closed

    def _send(self, event: Mapping[str, Any]) -> None:
        """A client event as given (already in the engine's wire dialect)."""
        if self.engine is None:
            raise RuntimeError("not connected: call connect() first")
        self.engine._send(event)  # the engine's one way to the model (order, observer, closed check)

    def _send_input_audio(self, pcm16: bytes) -> None:
        if pcm16:
            self._send(
                {"type": "input_audio_buffer.append", "audio": binascii.b2a_base64(pcm16, newline=False).decode()}
            )

    # --- media graph: the call's audio in, the model's audio out ----------------------------
    @property
    def accept_caller_audio(self) -> Callable[[bytes], Awaitable[None]]:
        """Read by the Call per frame: the engine's uplink itself, or a drop while not connected or muted."""
        engine = self.engine
        if engine is None or self._muted:
            return _dropped
        return engine.accept_caller_audio

    def set_caller_format(self, audio_format: AudioFormat) -> None:
        self._caller_format = audio_format
        if self.engine is not None:
            self.engine.set_caller_format(audio_format)

    def sendMediaTo(self, unit: Any, parameters: Mapping[str, Any] | None = None) -> None:
        """Play the model's audio into `unit` (a Call), through the engine's playout channel."""
        if self.engine is None:
            if not hasattr(unit, "attach_playout"):
                raise TypeError(f"{unit!r} cannot play model audio")
            self._pending_media.append((unit, parameters))
            return
        self.engine.sendMediaTo(unit, parameters)

    def stopMediaTo(self, unit: Any) -> None:
        if self.engine is None:
            self._pending_media = [(u, p) for u, p in self._pending_media if u is not unit]
            return
        self.engine.stopMediaTo(unit)

    @property
    def plays_to_a_call(self) -> bool:
        return self.engine is not None and bool(self.engine._channels)

    def _barge_in(self, truncate: bool = True) -> bool:
        """The bridge's barge-in on every call this shape plays to; False when nothing was playing.

        `clearMediaBuffer`, with its answer: each channel stops at once, cancels the answers it
        interrupted, and truncates (or deletes) at what the caller heard."""
        engine = self.engine
        if engine is None:
            return False
        stopped = [channel.interrupt(truncate) for channel in list(engine._channels.values())]  # every one
        return any(stopped)
