"""The Starlette app: every carrier's answer endpoint and media socket, health, metrics.

Everything mutable lives on one `BridgeRuntime` made by `create_app` — no module-level state — so
tests can run several apps in one process and calls never share anything but the runtime's
read-only configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telephony_bridge.server.asgi import ExposeTransportAbort
from telephony_bridge.server.carrier_routes import carrier_routes
from telephony_bridge.server.console import console_routes
from telephony_bridge.server.console_auth import console_tokens
from telephony_bridge.server.memory import (
    Release,
    freeze_startup_heap,
    release_when_idle,
)
from telephony_bridge.server.metrics import Exporter
from telephony_bridge.server.recordings import recording_routes
from telephony_bridge.server.runtime import BridgeRuntime, load_runtime
from telephony_bridge.server.scenario_api import scenario_routes
from telephony_bridge.server.scenario_sessions import stop_scenario_sessions
from telephony_bridge.server.session_http import session_http_routes
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.softphone import softphone_routes

log = logging.getLogger("telephony_bridge.server")

# Twilio's voice webhook is a urlencoded form of a few dozen fields, a few KiB. The body is read
# here, against these limits, rather than by Starlette's form parser (which accepts multipart and
# file uploads, buffers up to 1 MiB per field, and replaces invalid UTF-8 without a word).
MAX_WEBHOOK_BODY = 64 * 1024
MAX_WEBHOOK_FIELDS = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def create_app(settings: Settings, runtime: BridgeRuntime | None = None) -> Starlette:
    runtime = runtime or load_runtime(settings)

    exporter = Exporter(runtime.metrics)
    runtime.carriers = [carrier_type(settings.carrier_config()) for carrier_type in runtime.carrier_types]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for carrier in runtime.carriers:
            if not carrier.secured and carrier.prefixes:  # AudioSocket's listeners say it themselves
                log.warning(
                    "%s is not set: %s signatures are not checked, so only loopback clients are accepted",
                    " / ".join(carrier.secret_names) or "no secret",
                    carrier.name,
                )
        engine = None
        if settings.uses_local_engine and runtime.local_engine_url is None:
            from telephony_bridge.local_engine.server import LocalEngine

            engine = LocalEngine(script=_engine_script(settings))
            await engine.start()
            runtime.local_engine_url = engine.url
            log.info(
                "no OPENAI_API_KEY or REALTIME_URL: the model is the embedded local engine (a simulator, not a "
                "language model; internal, at %s)",
                engine.url,
            )
        audiosocket = None
        if settings.audiosocket_listen:
            # In the lifespan, after the engine: its calls share this runtime (MAX_CALLS, drain,
            # routes, the engine's URL) and stop with the app. A port in use fails start-up.
            from telephony_bridge.server.audiosocket import AudioSocketServer

            audiosocket = AudioSocketServer(runtime, settings.audiosocket_listeners, settings.carrier_config())
            await audiosocket.start()
            runtime.audiosocket = audiosocket
        sip = None
        if settings.sip_listen:
            from telephony_bridge.server.sip_listener import SipServer, default_media

            media = runtime.sip_media or default_media(settings, runtime)
            sip = SipServer(runtime, settings.sip_listeners, settings.carrier_config(), media)
            await sip.start()
            runtime.sip = sip
        if settings.call_store:
            from telephony_bridge.server.store_writer import StoreWriter

            runtime.call_store = StoreWriter(settings, runtime.metrics)
            runtime.on_session_end.append(runtime.call_store.session_ended)
            runtime.call_store.start()
        if not console_tokens(settings):
            log.warning("no CONSOLE_TOKEN or API_KEYS: the console at /console serves loopback clients only")
        if settings.gc_freeze:
            log.debug("start-up heap frozen: %d objects out of the cyclic GC's reach", freeze_startup_heap())
        background = [asyncio.create_task(exporter.run_sampler(), name="metrics sampler")]
        if settings.idle_release_s > 0:
            background.append(
                asyncio.create_task(
                    release_when_idle(
                        lambda: (len(runtime.sessions), runtime.streams_opened),
                        settings.idle_release_s,
                        on_release=_count_release,
                    ),
                    name="idle memory release",
                )
            )
        if settings.reload:
            from telephony_bridge.server.reload import watch_scenarios

            background.append(asyncio.create_task(watch_scenarios(runtime), name="scenario reloader"))
        try:
            yield
        finally:
            await stop_scenario_sessions(runtime)
            if audiosocket is not None:
                await audiosocket.stop()
            if sip is not None:
                await sip.stop()
            if runtime.softphone is not None:
                await runtime.softphone.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if engine is not None:
                await engine.stop()
            await runtime.net.aclose()
            runtime.kv_store.close()
            if runtime.call_store is not None:
                runtime.on_session_end.remove(runtime.call_store.session_ended)
                await runtime.call_store.stop()

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
            *session_http_routes(runtime),  # each call's accessSecureURL
            *scenario_routes(runtime),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *recording_routes(settings),
            *console_routes(runtime),
            *softphone_routes(runtime),  # the browser softphone: its page, signalling and calls
        ],
        middleware=[Middleware(ExposeTransportAbort)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def _engine_script(settings: Settings) -> Any:
    if settings.engine_script is None:
        return None
    from telephony_bridge.local_engine.script import Script

    return Script.load(settings.engine_script)
