"""A TCP proxy that injects network faults between the bridge and a model endpoint.

Put it in front of the local engine (or any WebSocket server) and point the bridge at it:
delay and jitter every chunk (order kept per direction), drop every connection at once (RST), turn
the open connections half-open (bytes swallowed, nothing closed — only keepalive pings can tell),
or refuse new connections for a while (the endpoint is down). Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    half_open: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            transport = writer.transport
            if transport is not None:
                transport.abort()


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, seed: int = 7) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay_ms = 0.0
        self.jitter_ms = 0.0
        self.refusing = False
        self.connections_made = 0
        self._links: set[_Link] = set()
        self._random = random.Random(seed)
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/v1/realtime") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- faults -----------------------------------------------------------------------------
    def drop_all(self) -> int:
        """Reset every open connection; returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self._links.clear()
        return len(links)

    def make_half_open(self) -> int:
        """Open connections stop carrying bytes either way, and nobody is told."""
        for link in self._links:
            link.half_open = True
        return len(self._links)

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # --- plumbing ---------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections_made += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        self._links.discard(link)
        for side in (writer, up_writer):
            with contextlib.suppress(Exception):
                side.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        release_at = 0.0
        try:
            while data := await reader.read(65536):
                if link.half_open:
                    continue
                delay = (self.delay_ms + self._random.uniform(-self.jitter_ms, self.jitter_ms)) / 1000
                release_at = max(release_at, loop.time() + max(0.0, delay))  # jitter never reorders
                wait = release_at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if link.half_open:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not link.half_open:
                link.abort()
