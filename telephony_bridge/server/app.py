"""The Starlette app: Twilio voice webhook, media WebSocket, health.

Everything mutable lives on one `BridgeRuntime` made by `create_app` — no module-level state — so
tests can run several apps in one process and calls never share anything but the runtime's
read-only configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from telephony_bridge.carriers.twilio import is_sid
from telephony_bridge.carriers.twilio_webhook import (
    connect_stream_twiml,
    reject_twiml,
    signature_is_valid,
    stream_url,
)
from telephony_bridge.server.asgi import ExposeTransportAbort
from telephony_bridge.server.memory import (
    Release,
    freeze_startup_heap,
    release_when_idle,
)
from telephony_bridge.server.metrics import Exporter
from telephony_bridge.server.runtime import BridgeRuntime, load_runtime
from telephony_bridge.server.session import CallSession
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.stream_tokens import (
    TOKEN_PARAMETER,
    StreamGrant,
)

log = logging.getLogger("telephony_bridge.server")

# Twilio's voice webhook is a urlencoded form of a few dozen fields, a few KiB. The body is read
# here, against these limits, rather than by Starlette's form parser (which accepts multipart and
# file uploads, buffers up to 1 MiB per field, and replaces invalid UTF-8 without a word).
MAX_WEBHOOK_BODY = 64 * 1024
MAX_WEBHOOK_FIELDS = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _read_webhook_form(request: Request, timeout_s: float) -> FormData | Response:
    """The webhook's form, or the response refusing it (415, 413, 408, 400) with the reason."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        return PlainTextResponse(f"a Twilio voice webhook is an {FORM_CONTENT_TYPE} form", status_code=415)
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        return PlainTextResponse("invalid Content-Length", status_code=400)
    if declared > MAX_WEBHOOK_BODY:
        return PlainTextResponse(f"request too large (over {MAX_WEBHOOK_BODY} bytes)", status_code=413)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):  # a client trickling its body holds a connection
            async for chunk in request.stream():  # chunked bodies have no Content-Length to refuse up front
                body += chunk
                if len(body) > MAX_WEBHOOK_BODY:
                    return PlainTextResponse(f"request too large (over {MAX_WEBHOOK_BODY} bytes)", status_code=413)
    except ClientDisconnect:
        return PlainTextResponse("request body incomplete", status_code=400)
    except TimeoutError:
        return PlainTextResponse(f"request body not received within {timeout_s:g} s", status_code=408,
                                 headers={"Connection": "close"})
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_WEBHOOK_FIELDS)
    except UnicodeDecodeError:
        return PlainTextResponse("the form is not percent-encoded UTF-8", status_code=400)
    except ValueError:
        return PlainTextResponse(f"too many form fields (over {MAX_WEBHOOK_FIELDS})", status_code=400)
    return FormData(pairs)


def create_app(settings: Settings, runtime: BridgeRuntime | None = None) -> Starlette:
    runtime = runtime or load_runtime(settings)

    exporter = Exporter(runtime.metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.twilio_auth_token:
            log.warning("TWILIO_AUTH_TOKEN is not set: Twilio signatures are not checked, so only loopback clients are accepted")
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

    async def incoming_call(request: Request) -> Response:
        if runtime.draining:
            # 503 makes Twilio try the number's fallback URL: another instance takes the call.
            return PlainTextResponse("draining for shutdown", status_code=503, headers={"Retry-After": "5"})
        if runtime.at_capacity():
            runtime.metrics.calls_over_capacity += 1
            log.warning("webhook refused: %d calls in progress (MAX_CALLS)", len(runtime.sessions))
            return PlainTextResponse("at capacity", status_code=503, headers={"Retry-After": "5"})
        form = await _read_webhook_form(request, settings.http_body_timeout_s)
        if isinstance(form, Response):
            return form
        params = dict(form.items())  # the last value of a repeated field; the signature covers them all
        if not _request_allowed(request, form):
            runtime.metrics.webhooks_forbidden += 1
            log.warning("webhook from %s rejected: missing or invalid X-Twilio-Signature", request.client.host if request.client else "?")
            return PlainTextResponse("forbidden", status_code=403)
        call_sid, number = params.get("CallSid"), params.get("To")
        if not call_sid or not number:
            return PlainTextResponse("a Twilio voice webhook needs CallSid and To", status_code=400)
        if not is_sid(call_sid, "CA"):
            return PlainTextResponse("CallSid is not a Twilio call id (CA + 32 hex digits)", status_code=400)
        scenario = runtime.scenario_for(number)
        if scenario is None:
            runtime.metrics.calls_rejected += 1
            log.info("call %s to %s matches no route: rejected", call_sid, number)
            return Response(reject_twiml(), media_type="text/xml")
        # The stream is bound to this answer: its start must carry this token (single use, short
        # lived), and the scenario is read from it, never from the stream.
        token = runtime.stream_tokens.issue(StreamGrant(call_id=call_sid, scenario=scenario,
                                                        caller=params.get("From", ""), number=number))
        try:
            twiml = connect_stream_twiml(stream_url(settings.base_url), {TOKEN_PARAMETER: token})
        except ValueError:  # From/To so long the parameter would exceed Twilio's limit
            return PlainTextResponse("From or To too long", status_code=400)
        log.info("call %s from %s to %s → scenario %s", call_sid, params.get("From", "?"), number, scenario)
        return Response(twiml, media_type="text/xml")

    def _request_allowed(request: Request, params: FormData) -> bool:
        if not settings.twilio_auth_token:
            return _is_loopback(request.client.host if request.client else None)
        url = settings.base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return signature_is_valid(settings.twilio_auth_token, url, params, request.headers.get("x-twilio-signature"))

    async def media_stream(websocket: WebSocket) -> None:
        if settings.twilio_auth_token:
            # Over the URL as requested, query included (Twilio signs what it connects to; our TwiML
            # gives it none), rebuilt from PUBLIC_URL rather than from Host or forwarding headers.
            url = stream_url(settings.base_url) + (f"?{websocket.url.query}" if websocket.url.query else "")
            allowed = signature_is_valid(settings.twilio_auth_token, url, {}, websocket.headers.get("x-twilio-signature"))
        else:
            allowed = _is_loopback(websocket.client.host if websocket.client else None)
        await websocket.accept()
        if allowed and runtime.at_capacity():
            runtime.metrics.calls_over_capacity += 1
            log.warning("media stream refused: %d calls in progress (MAX_CALLS)", len(runtime.sessions))
            await websocket.close(1013, f"bridge at capacity ({settings.max_calls} calls); try again later")
            return
        if not allowed:
            runtime.metrics.streams_forbidden += 1
            log.warning("media stream from %s rejected: missing or invalid signature", websocket.client.host if websocket.client else "?")
            await websocket.close(1008, "invalid or missing X-Twilio-Signature")
            return
        runtime.streams_opened += 1
        session = CallSession(websocket, runtime, runtime.streams_opened)
        runtime.sessions.add(session)
        runtime.metrics.active_calls = len(runtime.sessions)
        try:
            await session.run()
        finally:
            runtime.sessions.discard(session)
            runtime.metrics.active_calls = len(runtime.sessions)

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
            Route("/incoming-call", incoming_call, methods=["POST"]),
            WebSocketRoute("/media-stream", media_stream),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
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
