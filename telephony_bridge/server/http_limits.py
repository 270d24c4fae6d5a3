"""HTTP-side limits uvicorn does not have: a deadline and a size cap on each request head.

A slow client (slowloris) that trickles a request head byte by byte holds its connection for as
long as it likes: uvicorn arms its keep-alive timeout only after a response, and httptools (our
fast parser) puts no bound on a head's size. `GuardedHttpProtocol` is uvicorn's own HTTP protocol
(httptools when installed, h11 otherwise) with both: a connection whose next request head is not
complete within `head_timeout_s` is closed, and one whose head grows past `max_head_bytes` gets
431 and is closed. A WebSocket upgrade hands the connection to another protocol, and the guard
stops there: a call's media stream is bounded by the session's own watchdog.

`uvicorn_config` builds every uvicorn.Config the bridge runs (serve, --workers, tests) from the
settings, so the limits, the connection cap and permessage-deflate (off: no carrier uses it, and
it costs memory and CPU per frame) are the same everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import uvicorn

from telephony_bridge.server.settings import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # the `fast` extra is not installed
    # Either class is uvicorn's HTTP protocol; the subclass below uses only what both have, but mypy
    # sees two distinct classes bound to one name.
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol  # type: ignore[assignment]

log = logging.getLogger("telephony_bridge.server")

MAX_HEAD_BYTES: Final = 32 * 1024  # a Twilio webhook's head is under 2 KiB
WS_MAX_SIZE: Final = 1 << 20
_HEAD_TIMEOUT_ATTRIBUTE: Final = "telephony_bridge_head_timeout_s"
_TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 30\r\n\r\nrequest head over 32768 bytes\n"
)


class GuardedHttpProtocol(_BaseProtocol):
    """uvicorn's HTTP protocol with a deadline and a size cap on each request head."""

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._head_timeout_s: float = getattr(config, _HEAD_TIMEOUT_ATTRIBUTE, 10.0)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_cycle: Any = None  # the request cycle in progress when the deadline was armed
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes seen, for a blank line split across reads

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None:
            super().data_received(data)
            return
        # Count only the head: a webhook's body may arrive in the same read.
        seen = self._head_tail + data
        end = seen.find(b"\r\n\r\n")
        head_bytes = self._head_bytes + (end + 4 - len(self._head_tail) if end >= 0 else len(data))
        if head_bytes > self.max_head_bytes:
            self._head_done()
            if not self.transport.is_closing():
                log.warning("connection from %s closed: request head over %d bytes", _peer(self), self.max_head_bytes)
                self.transport.write(_TOO_LARGE)
                self.transport.close()
            return
        self._head_bytes, self._head_tail = head_bytes, seen[-3:]
        super().data_received(data)
        if self._head_timer is not None and (
            self.cycle is not self._head_cycle or self.transport.get_protocol() is not self
        ):
            self._head_done()  # a request (or an upgrade) began: its head is complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # a keep-alive connection: the next head has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_done()
        self._head_cycle, self._head_bytes, self._head_tail = self.cycle, 0, b""
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_overdue)

    def _head_done(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self or self.cycle is not self._head_cycle:
            return
        log.warning(
            "connection from %s closed: no complete request head within %g s", _peer(self), self._head_timeout_s
        )
        transport.close()


def _peer(protocol: Any) -> str:
    client = getattr(protocol, "client", None)
    return f"{client[0]}:{client[1]}" if client else "?"


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """A uvicorn.Config with the bridge's limits; `options` add or override uvicorn's own."""
    config = uvicorn.Config(
        app,
        http="telephony_bridge.server.http_limits:GuardedHttpProtocol",  # a name: --workers pickles the config
        limit_concurrency=settings.connection_limit,
        ws_per_message_deflate=False,
        ws_max_size=WS_MAX_SIZE,
        **options,
    )
    # Read by each GuardedHttpProtocol; an attribute of the config so that it reaches workers too.
    setattr(config, _HEAD_TIMEOUT_ATTRIBUTE, settings.http_header_timeout_s)
    return config
