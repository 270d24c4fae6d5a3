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
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from telephony_bridge.carriers.twilio import is_sid
from telephony_bridge.carriers.twilio_rest import TwilioRest
from telephony_bridge.carriers.twilio_webhook import (
    connect_stream_twiml,
    dial_twiml,
    reject_twiml,
    signature_is_valid,
    stream_url,
)
from telephony_bridge.server.memory import (
    Release,
    freeze_startup_heap,
    release_when_idle,
)
from telephony_bridge.server.metrics import BridgeMetrics, Exporter
from telephony_bridge.server.session import TRANSPORT_ABORT_SCOPE_KEY, CallSession
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.stream_tokens import (
    TOKEN_PARAMETER,
    StreamGrant,
    StreamTokens,
)
from telephony_bridge.voxengine.routing import Router, load_routes
from telephony_bridge.voxengine.scenario import Scenario, ScenarioError, load_scenarios

log = logging.getLogger("telephony_bridge.server")

# Twilio's voice webhook is a urlencoded form of a few dozen fields, a few KiB. The body is read
# here, against these limits, rather than by Starlette's form parser (which accepts multipart and
# file uploads, buffers up to 1 MiB per field, and replaces invalid UTF-8 without a word).
MAX_WEBHOOK_BODY = 64 * 1024
MAX_WEBHOOK_FIELDS = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class TwilioCallControl:
    """Hang-up and transfer through Twilio's REST API."""

    def __init__(self, rest: TwilioRest) -> None:
        self._rest = rest

    async def hangup(self, call_sid: str) -> None:
        await self._rest.hangup(call_sid)

    async def transfer(self, call_sid: str, to: str, caller_id: str | None) -> None:
        await self._rest.update_twiml(call_sid, dial_twiml(to, caller_id))


@dataclass
class BridgeRuntime:
    settings: Settings
    scenarios: dict[str, Scenario]
    router: Router | None
    default_scenario: str = "default"
    local_engine_url: str | None = None
    metrics: BridgeMetrics = field(default_factory=BridgeMetrics)
    sessions: set[CallSession] = field(default_factory=set)
    # Called in the task that runs the session: start before it runs (its call id is not known yet;
    # context variables set here reach every task of the call), end after its teardown (journal
    # complete, clients closed, `call_sid` still set). A hook that raises is logged, never the call's end.
    on_session_start: list[Callable[[CallSession], None]] = field(default_factory=list)
    on_session_end: list[Callable[[CallSession], None]] = field(default_factory=list)
    streams_opened: int = 0  # media WebSockets accepted so far; the last one's number is its connection id
    draining: bool = False
    scenario_version: int = 1  # bumped by each --reload
    stream_tokens: StreamTokens = field(init=False)

    def __post_init__(self) -> None:
        self.stream_tokens = StreamTokens(self.settings.stream_token_secret, self.settings.stream_token_ttl_s)

    def at_capacity(self) -> bool:
        return len(self.sessions) >= self.settings.max_calls

    def scenario_for(self, number: str) -> str | None:
        if self.router is not None:
            return self.router.scenario_for(number)
        return self.default_scenario if self.default_scenario in self.scenarios else None

    def call_control(self) -> TwilioCallControl | None:
        s = self.settings
        if not (s.twilio_account_sid and s.twilio_auth_token):
            return None
        return TwilioCallControl(TwilioRest(s.twilio_account_sid, s.twilio_auth_token, base_url=s.twilio_api_base_url))


def load_runtime(settings: Settings) -> BridgeRuntime:
    """Load scenarios and routes, failing with file, line and reason — at start-up, never mid-call."""
    scenarios = load_scenarios(settings.scenarios_dir)
    routes_file = Path(settings.scenarios_dir) / "routes.toml"
    router = load_routes(routes_file, scenarios.keys()) if routes_file.exists() else None
    if router is None and "default" not in scenarios:
        raise ScenarioError(f"{settings.scenarios_dir}: no routes.toml and no default.py scenario")
    return BridgeRuntime(settings=settings, scenarios=scenarios, router=router)


def _notify(hooks: list[Callable[[CallSession], None]], session: CallSession) -> None:
    for hook in list(hooks):
        try:
            hook(session)
        except Exception:
            log.exception("%s: session hook %r failed", session.label, hook)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        _notify(runtime.on_session_start, session)
        try:
            await session.run()
        finally:
            runtime.sessions.discard(session)
            runtime.metrics.active_calls = len(runtime.sessions)
            _notify(runtime.on_session_end, session)

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
