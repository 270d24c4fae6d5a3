"""The model side of the kit: the local engine, recording the client events each connection
receives (audio appends left out) and telling the kit when connections open and close."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from websockets.http11 import Request

from telephony_bridge.local_engine import LocalEngine
from telephony_bridge.local_engine.server import EngineSocket
from telephony_bridge.testing.report import ModelConnection

_AUDIO_APPEND = "input_audio_buffer.append"
_AUDIO_APPEND_BYTES = _AUDIO_APPEND.encode()


class RecordingSocket:
    """The engine's side of one model WebSocket, recording the client events it receives."""

    def __init__(self, websocket: EngineSocket, record: ModelConnection) -> None:
        self._websocket = websocket
        self._record = record

    @property
    def request(self) -> Request | None:
        return self._websocket.request

    @property
    def remote_address(self) -> Any:
        return self._websocket.remote_address

    async def send(self, message: str) -> None:
        await self._websocket.send(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._websocket, name)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        async for message in self._websocket:
            head = message[:64]
            appends = _AUDIO_APPEND in head if isinstance(head, str) else _AUDIO_APPEND_BYTES in head
            if not appends:  # the type leads every append the bridge sends
                with contextlib.suppress(orjson.JSONDecodeError):
                    event = orjson.loads(message)
                    if isinstance(event, dict):
                        self._record.received.append(event)
            yield message


class ObservedEngine(LocalEngine):
    """The local engine, telling the kit when model connections open and close."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_connections: list[ModelConnection] = []
        self.changed = asyncio.Condition()

    async def serve_connection(self, websocket: EngineSocket) -> None:
        record = ModelConnection(remote=socket_address(getattr(websocket, "remote_address", None)))
        self.model_connections.append(record)
        try:
            await super().serve_connection(RecordingSocket(websocket, record))
        finally:
            record.closed = True
            async with self.changed:
                self.changed.notify_all()

    async def wait_until(self, predicate: Any, timeout: float) -> bool:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
            except TimeoutError:
                return bool(predicate())
        return True


def socket_address(value: Any) -> tuple[Any, ...] | None:
    return tuple(value[:2]) if value else None
