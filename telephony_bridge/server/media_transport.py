"""What a call's session needs of the connection its carrier streams over.

A Starlette `WebSocket` is one (the HTTP carriers' media sockets); so is the small TCP adapter of
the AudioSocket listener (server/audiosocket.py). `CallSession` and `MediaLink` use only this, so
the session stays the same for every carrier and every transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from starlette.websockets import WebSocketState

__all__ = ["MediaTransport"]


class MediaTransport(Protocol):
    """A message transport with WebSocket's shape. `receive()` returns one message:
    ``{"type": "websocket.receive", "bytes": …}`` (or ``"text"``), or ``{"type":
    "websocket.disconnect", "code": …}`` once the peer is gone. Sends raise OSError (or
    RuntimeError, WebSocketDisconnect) when the connection is gone."""

    @property
    def application_state(self) -> WebSocketState: ...

    @property
    def client_state(self) -> WebSocketState: ...

    @property
    def scope(self) -> Mapping[str, Any]:
        """Connection details; TRANSPORT_ABORT_SCOPE_KEY (server/asgi.py) holds a way to drop it."""
        ...

    @property
    def query_params(self) -> Mapping[str, str]: ...

    async def receive(self) -> Mapping[str, Any]: ...

    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...
