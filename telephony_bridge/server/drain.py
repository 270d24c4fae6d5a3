"""Graceful shutdown: SIGTERM drains calls instead of cutting them.

uvicorn's own handling closes the listening socket and every WebSocket at once (close 1012), which
would drop every call on a rolling update. Here the first SIGTERM (or Ctrl+C) only marks the runtime
as draining: /readyz answers 503 so load balancers stop sending calls, the webhook answers 503 so the
carrier fails over, calls in progress go on. When they have all ended, or when DRAIN_TIMEOUT_S has
passed, the remaining calls are ended cleanly (scenarios see Disconnected and Terminated, the carrier
sees close 1001) and the server exits. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.server.carrier_routes import stream_url

if TYPE_CHECKING:
    from telephony_bridge.server.runtime import BridgeRuntime
    from telephony_bridge.server.settings import Settings

log = logging.getLogger("telephony_bridge.server")

SHUTDOWN_REASON = CallEnd.SHUTDOWN.text


def announce_listening(settings: Settings, port: int, workers: int = 1) -> None:
    """The one line a newcomer needs: where the bridge listens and what to give Twilio."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = settings.base_url
    processes = f" ({workers} workers)" if workers > 1 else ""
    log.info(
        "telephony_bridge listening on http://%s:%d%s — Twilio webhook: POST %s/incoming-call, media stream: %s",
        host,
        port,
        processes,
        base,
        stream_url(base),
    )
    if settings.public_url is None:
        log.info(
            "PUBLIC_URL is not set: the TwiML points at this local address, enough for `telephony-bridge call`; "
            "for Twilio set it to the https URL Twilio reaches"
        )


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, runtime: BridgeRuntime | None = None) -> None:
        super().__init__(config)
        self._runtime = runtime  # a worker process finds it on the app it loaded
        self._announce = runtime is not None  # with --workers the supervisor announces, once
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def runtime(self) -> BridgeRuntime:
        if self._runtime is None:
            app = self.config.loaded_app
            while not hasattr(app, "state") and hasattr(app, "app"):
                app = app.app  # unwrap uvicorn's middleware
            self._runtime = app.state.runtime
        return self._runtime

    async def startup(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started and self._announce:
            port = self.servers[0].sockets[0].getsockname()[1]
            announce_listening(self.runtime.settings, port)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.runtime.draining or self._loop is None:
            super().handle_exit(sig, frame)  # second signal, or not started yet: exit now
            if self.runtime.draining:
                self.force_exit = True
            return
        self.runtime.draining = True
        self._loop.call_soon_threadsafe(self._start_drain, signal.Signals(sig).name)

    def _start_drain(self, signal_name: str) -> None:
        self._drain_task = asyncio.get_running_loop().create_task(self.drain(signal_name))

    async def drain(self, why: str = "shutdown") -> None:
        runtime = self.runtime
        timeout_s = runtime.settings.drain_timeout_s
        calls = len(runtime.sessions)
        log.info(
            "%s: draining; %d call(s) in progress may finish within %.0f s (signal again to stop now)",
            why,
            calls,
            timeout_s,
        )
        deadline = time.monotonic() + timeout_s
        while runtime.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if runtime.sessions:
            log.warning("drain timeout: ending %d call(s) still in progress", len(runtime.sessions))
            for session in list(runtime.sessions):
                session.end(CallEnd.SHUTDOWN)
            end_by = time.monotonic() + 5
            while runtime.sessions and time.monotonic() < end_by:
                await asyncio.sleep(0.05)
        log.info("drained; shutting down")
        self.should_exit = True


def reuse_port_socket(host: str, port: int, listen: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _DrainingWorker(Process):
    """A uvicorn worker process whose server drains on SIGTERM, listening on its own socket.

    With one shared listening socket, whichever worker wins accept() keeps winning (a busy one
    can end up with every call); one SO_REUSEPORT socket per worker lets the kernel spread the
    connections over the workers by hash."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # runs in the worker
        super().target([reuse_port_socket(self.config.host, self.config.port, listen=True)])

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config)
        return self._server


class DrainingSupervisor(Multiprocess):
    """`--workers N`: uvicorn's supervisor, with workers that drain. On SIGTERM it signals every
    worker and waits for each to finish its calls (DRAIN_TIMEOUT_S) before exiting. Every worker
    drains and listens on its own socket: the first ones, one restarted after a crash, and those
    SIGHUP (replace all) and SIGTTIN (one more) start.

    Its socket (``reuse_port_socket(host, port, listen=False)``) is bound but never listens: it
    claims the port (a clash fails at start, and port 0 becomes a real port the workers share)
    without taking connections."""

    def run(self) -> None:
        # uvicorn has no hook for the worker class: its supervisor builds every worker (initial,
        # restarted, added) by the module-level name `Process`. Rebinding it for as long as the
        # supervisor runs covers every path without copying them; this process only supervises.
        plain = multiprocess.Process
        # mypy forbids assigning to a class name; rebinding uvicorn's is the point here.
        multiprocess.Process = _DrainingWorker  # type: ignore[misc]
        try:
            super().run()
        finally:
            multiprocess.Process = plain  # type: ignore[misc]  # (see above)
