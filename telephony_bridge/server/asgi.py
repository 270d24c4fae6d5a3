"""ASGI plumbing under the Starlette app: the abort a media-stream session may use, and its key.

Here rather than in the app or the session, so that both can import it and neither the other.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

# Where ExposeTransportAbort leaves a way to reset the carrier's TCP connection.
TRANSPORT_ABORT_SCOPE_KEY = "telephony_bridge.abort_transport"


class ExposeTransportAbort:
    """ASGI middleware: lets a media-stream session drop a carrier connection that stopped reading.

    Such a connection's write buffer can never drain, so neither a close frame nor a graceful
    transport close ever completes, and the socket would stay open for as long as the peer keeps
    the TCP connection. ASGI has no "abort"; uvicorn's per-connection protocol object, the owner of
    the `send` callable it hands the application, holds the asyncio transport. It is looked up once
    per WebSocket, here, outside Starlette's wrappers of `send`. Under another server (or uvicorn
    at trace log level, which wraps `send`) there is no abort, and the socket is left to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if callable(getattr(transport, "abort", None)):
                scope[TRANSPORT_ABORT_SCOPE_KEY] = lambda: reset(transport)
        await self.app(scope, receive, send)


def reset(transport: Any) -> None:
    """Drop a connection at once. With linger 0, close() resets it and frees the unsent data;
    otherwise the kernel would keep trying to deliver up to a whole send buffer (MiBs) to a peer
    that does not read, long after the call ended."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
