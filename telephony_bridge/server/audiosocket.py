"""The AudioSocket listeners: Asterisk's TCP connections, each run as a call by the usual session.

`serve --audiosocket HOST:PORT[=NUMBER]` (or ``AUDIOSOCKET_LISTEN``, comma-separated) opens one
asyncio TCP server per listener, started and stopped in the app's lifespan (server/app.py): so it
shares the app's `BridgeRuntime` — `MAX_CALLS`, draining, metrics, the scenarios in force, the
embedded engine's URL, which the lifespan sets first — and it runs under the in-process test server
exactly as under `serve`, with nothing beside uvicorn to supervise.

A connection is admitted or refused before anything is read:
- its peer must be in ``AUDIOSOCKET_ALLOW`` (CIDRs; unset: loopback only, and the server says so
  at start-up). There is no answer request, so no stream token: the allow-list is the binding;
- not while draining, and not at `MAX_CALLS` (counted as for the HTTP carriers).
A refused connection gets a hang-up frame and is closed. An admitted one becomes a `CallSession`
over `AudioSocketTransport`, with a binding that routes the listener's number through
routes.toml (carriers/audiosocket_carrier.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

from starlette.websockets import WebSocketState

from telephony_bridge.carriers.audiosocket import HANGUP_FRAME, FrameReader
from telephony_bridge.carriers.audiosocket_carrier import ALLOW_ENV, AudioSocketCarrier, Listener
from telephony_bridge.carriers.base import CallStarted
from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.server.asgi import TRANSPORT_ABORT_SCOPE_KEY, reset
from telephony_bridge.server.carrier_routes import run_session
from telephony_bridge.server.runtime import BridgeRuntime
from telephony_bridge.server.session import CallSession, StreamRefused
from telephony_bridge.server.stream_tokens import StreamGrant

__all__ = ["AudioSocketServer", "AudioSocketTransport"]

log = logging.getLogger("telephony_bridge.server")

READ_BYTES: Final = 4096  # a dozen frames: reads follow the session's pace, never more than this ahead
_DISCONNECTED: Final = {"type": "websocket.disconnect", "code": 1006}  # the TCP connection went without a 0x00
SHUTDOWN_WAIT_S: Final = 5.0
REFUSAL_LINGER_S: Final = 1.0  # how long a refused peer is given to read the hang-up and close
REFUSAL_READ_LIMIT: Final = 64 * 1024  # what a refused peer may send meanwhile (discarded)


class AudioSocketTransport:
    """One TCP connection as the session's `MediaTransport` (server/media_transport.py): one whole
    frame per `receive()`, bytes out, and a close that sends Asterisk a hang-up frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._frames = FrameReader()
        self._pending: deque[bytes] = deque()
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        peer = writer.get_extra_info("peername")
        self.client_host: str | None = peer[0] if peer else None
        transport = writer.transport
        self.scope: Mapping[str, Any] = {
            "type": "audiosocket",
            "client": tuple(peer[:2]) if peer else None,
            TRANSPORT_ABORT_SCOPE_KEY: lambda: reset(transport),
        }
        self.query_params: Mapping[str, str] = {}

    async def receive(self) -> Mapping[str, Any]:
        while not self._pending:
            if self.client_state is WebSocketState.DISCONNECTED:
                return _DISCONNECTED
            try:
                data = await self._reader.read(READ_BYTES)
            except OSError:
                data = b""
            if not data:
                self.client_state = WebSocketState.DISCONNECTED
                return _DISCONNECTED
            self._pending.extend(self._frames.feed(data))
        return {"type": "websocket.receive", "bytes": self._pending.popleft()}

    async def send_text(self, data: str) -> None:
        raise RuntimeError("AudioSocket carries binary frames only")

    async def send_bytes(self, data: bytes) -> None:
        if self.application_state is WebSocketState.DISCONNECTED:
            raise RuntimeError("the AudioSocket connection is closed")
        if data:
            self._writer.write(data)
            await self._writer.drain()  # waits while the peer does not read: the session's watchdog sees it

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Hang up: a 0x00 frame (AudioSocket has no close code or reason), then close the connection."""
        if self.application_state is WebSocketState.DISCONNECTED:
            return
        self.application_state = WebSocketState.DISCONNECTED
        writer = self._writer
        try:
            if not writer.is_closing():
                writer.write(HANGUP_FRAME)
                await writer.drain()
        finally:
            writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    def half_close(self) -> None:
        """No more frames from the bridge (TCP FIN); the peer may still send."""
        self.application_state = WebSocketState.DISCONNECTED
        if self._writer.can_write_eof():
            self._writer.write_eof()

    def abort(self) -> None:
        self.application_state = self.client_state = WebSocketState.DISCONNECTED
        reset(self._writer.transport)


class AudioSocketServer:
    """Every configured listener's TCP server; `start` binds them (ports known after), `stop` ends them."""

    def __init__(self, runtime: BridgeRuntime, listeners: Sequence[Listener], config: Mapping[str, str]) -> None:
        self.runtime = runtime
        self.listeners = tuple(listeners)
        self._config = config
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[Any]] = set()
        self.bound: list[tuple[Listener, int]] = []  # each listener and the port it got (for port 0)

    async def start(self) -> None:
        for listener in self.listeners:
            carrier = AudioSocketCarrier(self._config, listener)
            if not carrier.secured:
                log.warning(
                    "%s is not set: the AudioSocket listener %s accepts loopback peers only", ALLOW_ENV, listener
                )

            async def connected(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, carrier: AudioSocketCarrier = carrier
            ) -> None:
                task = asyncio.current_task()
                assert task is not None
                self._connections.add(task)
                try:
                    await self._serve(carrier, reader, writer)
                finally:
                    self._connections.discard(task)

            try:
                server = await asyncio.start_server(connected, listener.host, listener.port, limit=READ_BYTES * 4)
            except OSError as exc:
                await self.stop()
                raise OSError(exc.errno, f"cannot listen for AudioSocket on {listener}: {exc.strerror or exc}") from exc
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.bound.append((listener, port))
            log.info(
                "AudioSocket listening on %s:%d%s",
                listener.host,
                port,
                f" (calls to {listener.number})" if listener.number else "",
            )

    async def stop(self) -> None:
        """No new connections; calls still in progress end (the drain has had its chance) and are awaited."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        if not self._connections:
            return
        for session in list(self.runtime.sessions):
            if isinstance(session, CallSession) and isinstance(session.carrier, AudioSocketCarrier):
                session.end(CallEnd.SHUTDOWN)
        await asyncio.wait(set(self._connections), timeout=SHUTDOWN_WAIT_S)

    async def _serve(
        self, carrier: AudioSocketCarrier, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        runtime = self.runtime
        transport = AudioSocketTransport(reader, writer)
        host = transport.client_host
        try:
            if not carrier.allow.allows(host):
                runtime.metrics.streams_forbidden += 1
                log.warning(
                    "AudioSocket connection from %s on %s refused: not in %s%s",
                    host or "?",
                    carrier.listener,
                    ALLOW_ENV,
                    "" if carrier.secured else " (unset: loopback only)",
                )
                await _refuse(transport, reader)
                return
            if runtime.draining or runtime.at_capacity():
                if not runtime.draining:
                    runtime.metrics.calls_over_capacity += 1
                log.warning(
                    "AudioSocket connection from %s refused: %s",
                    host,
                    "draining for shutdown"
                    if runtime.draining
                    else f"{len(runtime.sessions)} calls in progress (MAX_CALLS)",
                )
                await _refuse(transport, reader)
                return
            runtime.streams_opened += 1
            session = CallSession(transport, runtime, runtime.streams_opened, carrier, binding=self._binding)
            await run_session(runtime, session)
        finally:
            if not writer.is_closing():
                writer.close()  # the caller hung up first (EOF): the session had nothing to close

    def _binding(self, start: CallStarted) -> StreamGrant:
        """Admitted by the allow-list at connect; routed by the listener's number, never by the stream."""
        scenario = self.runtime.scenario_for(start.number)
        if scenario is None:
            self.runtime.metrics.calls_rejected += 1
            raise StreamRefused(f"number {start.number or '(none)'} matches no route")
        return StreamGrant(call_id=start.call_id, scenario=scenario, caller=start.caller, number=start.number)


async def _refuse(transport: AudioSocketTransport, reader: asyncio.StreamReader) -> None:
    """Hang up on a peer that is not let in. Asterisk sends its UUID frame at once: closing with it
    unread would reset the connection and lose the hang-up frame, so the bridge half-closes first
    and reads (discarding, bounded in time and size) until the peer closes too; then drops it."""
    with contextlib.suppress(TimeoutError, OSError, RuntimeError):
        async with asyncio.timeout(REFUSAL_LINGER_S):
            await transport.send_bytes(HANGUP_FRAME)
            transport.half_close()
            discarded = 0
            while discarded < REFUSAL_READ_LIMIT and (data := await reader.read(READ_BYTES)):
                discarded += len(data)
    transport.abort()
