"""A stand-in for the engine (RealtimeAPIClient) under the client shapes: what they send is
recorded, what the model says is fed in as the engine's listeners would get it."""

from __future__ import annotations

from typing import Any

from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.observer import ClientEventSent
from telephony_bridge.voxengine.listeners import EventPayload


class FakeChannel:
    def __init__(self, playing: bool = True) -> None:
        self.playing = playing
        self.interrupts: list[bool] = []

    def interrupt(self, truncate: bool) -> bool:
        self.interrupts.append(truncate)
        was, self.playing = self.playing, False
        return was


class FakeEngine:
    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters = parameters
        self.sent: list[dict[str, Any]] = []
        self.listeners: dict[Any, list[Any]] = {}
        self.observer: Any = None
        self.closed = False
        self._channels: dict[int, Any] = {}
        self.caller_format = None
        self.media_to: list[Any] = []

    async def accept_caller_audio(self, frame: bytes) -> None: ...

    def addEventListener(self, member: Any, handler: Any) -> None:
        self.listeners.setdefault(member, []).append(handler)

    def set_caller_format(self, audio_format: Any) -> None:
        self.caller_format = audio_format

    def sendMediaTo(self, unit: Any, parameters: Any = None) -> None:
        self.media_to.append(unit)

    def stopMediaTo(self, unit: Any) -> None:
        self.media_to.remove(unit)

    def _send(self, event: dict[str, Any]) -> None:
        self.sent.append(dict(event))
        if self.observer is not None:
            self.observer(self, ClientEventSent(event))

    def sessionUpdate(self, session: dict[str, Any]) -> None:
        self._send(wire.session_update(session, "ga", "pcm16"))

    def responseCancel(self) -> None:
        self._send(wire.response_cancel())

    def close(self) -> None:
        self.closed = True
        self.parameters["onWebSocketClose"](EventPayload(code=1000, reason="closed", wasClean=True))

    def server(self, event: dict[str, Any]) -> None:
        """A server event, to every listener once (the shapes register one handler for every member)."""
        handlers: list[Any] = []
        for registered in self.listeners.values():
            handlers += [h for h in registered if h not in handlers]  # bound methods compare equal
        for handler in handlers:
            handler(EventPayload(client=self, name="x", data=event))

    def types(self) -> list[str]:
        return [event["type"] for event in self.sent]


def factory(engines: list[FakeEngine]):
    async def create(parameters):
        engine = FakeEngine(dict(parameters))
        engines.append(engine)
        return engine

    return create
