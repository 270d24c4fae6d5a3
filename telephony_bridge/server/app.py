"""The Starlette app: every carrier's answer endpoint and media socket, health, metrics.

Everything mutable lives on one `BridgeRuntime` made by `create_app` — no module-level state — so
tests can run several apps in one process and calls never share anything but the runtime's
read-only configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from telephony_bridge.carriers.base import Carrier
from telephony_bridge.carriers.registry import CARRIERS
from telephony_bridge.server.carrier_routes import carrier_routes
from telephony_bridge.server.memory import (
    Release,
    freeze_startup_heap,
    release_when_idle,
)
from telephony_bridge.server.metrics import BridgeMetrics, Exporter
from telephony_bridge.server.session import TRANSPORT_ABORT_SCOPE_KEY, CallSession
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.stream_tokens import (
    StreamTokens,
)
from telephony_bridge.voxengine.routing import Router, load_routes
from telephony_bridge.voxengine.scenario import Scenario, ScenarioError, load_scenarios

log = logging.getLogger("telephony_bridge.server")

@dataclass
class BridgeRuntime:
    settings: Settings
    scenarios: dict[str, Scenario]
    router: Router | None
    default_scenario: str = "default"
    local_engine_url: str | None = None
    metrics: BridgeMetrics = field(default_factory=BridgeMetrics)
    sessions: set[CallSession] = field(default_factory=set)
    streams_opened: int = 0  # media WebSockets accepted so far; the last one's number is its connection id
    draining: bool = False
    scenario_version: int = 1  # bumped by each --reload
    stream_tokens: StreamTokens = field(init=False)
    carrier_types: tuple[type[Carrier], ...] = CARRIERS  # what create_app answers for
    carriers: list[Carrier] = field(default_factory=list)  # made by create_app from carrier_types

    def __post_init__(self) -> None:
        self.stream_tokens = StreamTokens(self.settings.stream_token_secret, self.settings.stream_token_ttl_s)

    def at_capacity(self) -> bool:
        return len(self.sessions) >= self.settings.max_calls

    def scenario_for(self, number: str) -> str | None:
        if self.router is not None:
            return self.router.scenario_for(number)
        return self.default_scenario if self.default_scenario in self.scenarios else None


def load_runtime(settings: Settings) -> BridgeRuntime:
    """Load scenarios and routes, failing with file, line and reason — at start-up, never mid-call."""
    scenarios = load_scenarios(settings.scenarios_dir)
    routes_file = Path(settings.scenarios_dir) / "routes.toml"
    router = load_routes(routes_file, scenarios.keys()) if routes_file.exists() else None
    if router is None and "default" not in scenarios:
        raise ScenarioError(f"{settings.scenarios_dir}: no routes.toml and no default.py scenario")
    return BridgeRuntime(settings=settings, scenarios=scenarios, router=router)


class _ExposeTransportAbort:
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
                scope[TRANSPORT_ABORT_SCOPE_KEY] = lambda: _reset(transport)
        await self.app(scope, receive, send)


def _reset(transport: Any) -> None:
    """Drop a connection at once. With linger 0, close() resets it and frees the unsent data;
    otherwise the kernel would keep trying to deliver up to a whole send buffer (MiBs) to a peer
    that does not read, long after the call ended."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def create_app(settings: Settings, runtime: BridgeRuntime | None = None) -> Starlette:
    runtime = runtime or load_runtime(settings)

    exporter = Exporter(runtime.metrics)
    runtime.carriers = [carrier_type(settings.carrier_config()) for carrier_type in runtime.carrier_types]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for carrier in runtime.carriers:
            if not carrier.secured:
                log.warning("%s is not set: %s signatures are not checked, so only loopback clients are accepted",
                            " / ".join(carrier.secret_names) or "no secret", carrier.name)
        engine = None
        if settings.uses_local_engine and runtime.local_engine_url is None:
            from telephony_bridge.local_engine.server import LocalEngine

            engine = LocalEngine(script=_engine_script(settings))
            await engine.start()
            runtime.local_engine_url = engine.url
            log.info("no OPENAI_API_KEY or REALTIME_URL: the model is the embedded local engine (a simulator, not a "
                     "language model; internal, at %s)", engine.url)
        if settings.gc_freeze:
            log.debug("start-up heap frozen: %d objects out of the cyclic GC's reach", freeze_startup_heap())
        background = [asyncio.create_task(exporter.run_sampler(), name="metrics sampler")]
        if settings.idle_release_s > 0:
            background.append(asyncio.create_task(release_when_idle(
                lambda: (len(runtime.sessions), runtime.streams_opened), settings.idle_release_s, on_release=_count_release,
            ), name="idle memory release"))
        if settings.reload:
            from telephony_bridge.server.reload import watch_scenarios

            background.append(asyncio.create_task(watch_scenarios(runtime), name="scenario reloader"))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if engine is not None:
                await engine.stop()

    def _count_release(released: Release) -> None:
        runtime.metrics.idle_memory_releases += 1

    async def metrics(request: Request) -> Response:
        """Prometheus exposition (all workers' sums with --workers)."""
        body, content_type = exporter.render()
        return Response(body, media_type=content_type)

    async def healthz(request: Request) -> Response:
        """Liveness: the process serves HTTP."""
        return JSONResponse({"status": "ok", "active_calls": len(runtime.sessions)})

    async def readyz(request: Request) -> Response:
        """Readiness: the server takes new calls (not while draining for shutdown)."""
        if runtime.draining:
            return JSONResponse({"status": "draining", "active_calls": len(runtime.sessions)}, status_code=503)
        return JSONResponse({"status": "ready", "active_calls": len(runtime.sessions)})

    app = Starlette(
        routes=[
            *carrier_routes(runtime),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        middleware=[Middleware(_ExposeTransportAbort)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def _engine_script(settings: Settings) -> Any:
    if settings.engine_script is None:
        return None
    from telephony_bridge.local_engine.script import Script

    return Script.load(settings.engine_script)
