"""Run the real bridge server (uvicorn + the Starlette app) on a free 127.0.0.1 port.

In-process for tests that want to look at the runtime (metrics, sessions); `telephony-bridge serve`
as a subprocess is what the demo and the end-to-end tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import uvicorn

from telephony_bridge.server.app import create_app
from telephony_bridge.server.http_limits import uvicorn_config
from telephony_bridge.server.runtime import BridgeRuntime, load_runtime
from telephony_bridge.server.settings import Settings


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready socket on a free port, so the port is known before the server starts."""
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only for sockets created with it, and with
    # Nagle on, a media message followed by its mark waits ~40 ms for the ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextlib.asynccontextmanager
async def running_bridge(settings: Settings, runtime: BridgeRuntime | None = None) -> AsyncIterator[BridgeRuntime]:
    sock = bound_socket(settings.host)
    settings = replace(settings, port=sock.getsockname()[1])
    runtime = runtime or load_runtime(settings)
    runtime.settings = settings
    app = create_app(settings, runtime)
    server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
                raise RuntimeError("bridge server stopped during start-up")
            await asyncio.sleep(0.01)
        yield runtime
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        sock.close()
