"""The HTTP side of every registered carrier: its answer endpoint and its media-stream socket.

Per carrier and URL prefix: `POST {prefix}/incoming-call` (the methods the carrier uses) answers
a call with the carrier's own document naming `{PUBLIC_URL}{prefix}/media-stream`, and that
WebSocket runs the call (`server/session.py`). Nothing here knows a carrier's wire format: the
carrier reads its request, checks its signature and writes its document (`carriers/base.py`).

The limits are the server's: draining and `MAX_CALLS` answer 503 (the carrier then tries the
number's fallback URL), the body is bounded in size and time, and a carrier without its secret
configured serves loopback clients only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from telephony_bridge.carriers.base import AnswerRefused, Carrier, HttpRequest
from telephony_bridge.server.runtime import BridgeRuntime
from telephony_bridge.server.session import CallSession
from telephony_bridge.server.stream_tokens import StreamGrant

log = logging.getLogger("telephony_bridge.server")

# A voice webhook is a urlencoded form of a few dozen fields, a few KiB. The body is read here,
# against these limits, rather than by Starlette's form parser (which accepts multipart and file
# uploads, buffers up to 1 MiB per field, and replaces invalid UTF-8 without a word).
MAX_WEBHOOK_BODY = 64 * 1024
MAX_WEBHOOK_FIELDS = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
ANSWER_PATH = "/incoming-call"
STREAM_PATH = "/media-stream"


def carrier_routes(runtime: BridgeRuntime) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for carrier in runtime.carriers:
        for prefix in carrier.prefixes:
            routes.append(
                Route(
                    prefix + ANSWER_PATH,
                    _answer_endpoint(runtime, carrier, prefix),
                    methods=list(carrier.answer_methods),
                )
            )
            routes.append(WebSocketRoute(prefix + STREAM_PATH, _stream_endpoint(runtime, carrier, prefix)))
    return routes


def stream_url(public_url: str, prefix: str = "") -> str:
    """`https://host[/base]` → `wss://host[/base]{prefix}/media-stream` (`http` → `ws`, for local
    use). A query or fragment in the base URL is a configuration error: carriers drop them."""
    parts = urlsplit(public_url.strip())
    scheme = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"public url must be an http(s) URL with a host, got {public_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"public url must not carry a query string or fragment: {public_url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + prefix + STREAM_PATH, "", ""))


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _answer_endpoint(
    runtime: BridgeRuntime, carrier: Carrier, prefix: str
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    settings = runtime.settings

    async def answer(request: Request) -> Response:
        if runtime.draining:
            # 503 makes the carrier try the number's fallback URL: another instance takes the call.
            return PlainTextResponse("draining for shutdown", status_code=503, headers={"Retry-After": "5"})
        if runtime.at_capacity():
            runtime.metrics.calls_over_capacity += 1
            log.warning("%s webhook refused: %d calls in progress (MAX_CALLS)", carrier.name, len(runtime.sessions))
            return PlainTextResponse("at capacity", status_code=503, headers={"Retry-After": "5"})
        http_request = await read_carrier_request(runtime, carrier, request)
        if isinstance(http_request, Response):
            return http_request
        try:
            call = carrier.read_answer(http_request)
        except AnswerRefused as refused:
            return refusal(runtime, carrier, refused, http_request.client_host)
        scenario = runtime.scenario_for(call.number)
        if scenario is None:
            runtime.metrics.calls_rejected += 1
            log.info("call %s to %s matches no route: rejected", call.call_id, call.number)
            rejection = carrier.reject_document()
            return Response(rejection.body, status_code=rejection.status, media_type=rejection.media_type)
        # The stream is bound to this answer: its start must carry this token (single use, short
        # lived), and the scenario and numbers are read from it, never from the stream.
        token = runtime.stream_tokens.issue(
            StreamGrant(call_id=call.call_id, scenario=scenario, caller=call.caller, number=call.number)
        )
        try:
            document = carrier.answer_document(stream_url(settings.base_url, prefix), token)
        except ValueError as exc:  # a field so long the document would exceed the carrier's limit
            return PlainTextResponse(f"cannot answer: {exc}", status_code=400)
        log.info("call %s from %s to %s → scenario %s", call.call_id, call.caller or "?", call.number, scenario)
        return Response(document.body, status_code=document.status, media_type=document.media_type)

    return answer


async def read_carrier_request(runtime: BridgeRuntime, carrier: Carrier, request: Request) -> HttpRequest | Response:
    """A carrier's request (answer, outbound answer, status callback) as the carrier reads it, or
    the response refusing it: its body bounded, and from loopback only when the carrier's secret is
    not configured. The URL is rebuilt from PUBLIC_URL (what the carrier signed), never from headers."""
    read = await _read_form(request, runtime.settings.http_body_timeout_s, carrier.body_types)
    if isinstance(read, Response):
        return read
    pairs, body = read
    client_host = request.client.host if request.client else None
    if not carrier.secured and not is_loopback(client_host):
        return _forbidden(runtime, carrier, client_host)
    query = f"?{request.url.query}" if request.url.query else ""
    lists: dict[str, list[str]] = {}
    for name, value in pairs:
        lists.setdefault(name, []).append(value)
    return HttpRequest(
        method=request.method,
        url=runtime.settings.base_url + request.url.path + query,
        headers={k.lower(): v for k, v in request.headers.items()},
        form={name: values[-1] for name, values in lists.items()},
        form_lists=lists,
        client_host=client_host,
        body=body,
    )


def refusal(runtime: BridgeRuntime, carrier: Carrier, refused: AnswerRefused, client_host: str | None) -> Response:
    if refused.forbidden:
        return _forbidden(runtime, carrier, client_host)
    return PlainTextResponse(refused.reason, status_code=refused.status)


def _forbidden(runtime: BridgeRuntime, carrier: Carrier, client_host: str | None) -> Response:
    runtime.metrics.webhooks_forbidden += 1
    log.warning(
        "%s webhook from %s rejected: %s",
        carrier.name,
        client_host or "?",
        f"missing or invalid {carrier.signature_header}"
        if carrier.secured
        else "no secret configured, and not a loopback client",
    )
    return PlainTextResponse("forbidden", status_code=403)


def _stream_endpoint(
    runtime: BridgeRuntime, carrier: Carrier, prefix: str
) -> Callable[[WebSocket], Coroutine[Any, Any, None]]:
    settings = runtime.settings

    async def media_stream(websocket: WebSocket) -> None:
        client_host = websocket.client.host if websocket.client else None
        if carrier.secured:
            # Over the URL as requested, rebuilt from PUBLIC_URL rather than from Host or forwarding headers.
            url = stream_url(settings.base_url, prefix) + (f"?{websocket.url.query}" if websocket.url.query else "")
            allowed = carrier.stream_allowed(url, {k.lower(): v for k, v in websocket.headers.items()})
        else:
            allowed = is_loopback(client_host)
        await websocket.accept()
        if allowed and runtime.at_capacity():
            runtime.metrics.calls_over_capacity += 1
            log.warning("media stream refused: %d calls in progress (MAX_CALLS)", len(runtime.sessions))
            await websocket.close(1013, f"bridge at capacity ({settings.max_calls} calls); try again later")
            return
        if not allowed:
            runtime.metrics.streams_forbidden += 1
            log.warning(
                "%s media stream from %s rejected: missing or invalid %s",
                carrier.name,
                client_host or "?",
                carrier.signature_header,
            )
            await websocket.close(1008, f"invalid or missing {carrier.signature_header}")
            return
        runtime.streams_opened += 1
        await run_session(runtime, CallSession(websocket, runtime, runtime.streams_opened, carrier))

    return media_stream


async def run_session(runtime: BridgeRuntime, session: CallSession) -> None:
    """Run one call's session with the runtime's bookkeeping, as every way in does (media sockets,
    AudioSocket, SIP, the softphone): counted among the calls in progress (MAX_CALLS, metrics) and
    announced to the session hooks, in the task that runs it, from its start to its end."""
    runtime.sessions.add(session)
    runtime.metrics.active_calls = len(runtime.sessions)
    notify_hooks(runtime.on_session_start, session)
    try:
        await session.run()
    finally:
        runtime.sessions.discard(session)
        runtime.metrics.active_calls = len(runtime.sessions)
        notify_hooks(runtime.on_session_end, session)


def notify_hooks(hooks: list[Callable[[Any], None]], session: CallSession) -> None:
    for hook in list(hooks):
        try:
            hook(session)
        except Exception:
            log.exception("%s: session hook %r failed", session.label, hook)


async def _read_form(
    request: Request,
    timeout_s: float,
    body_types: tuple[str, ...] = (FORM_CONTENT_TYPE,),
) -> tuple[list[tuple[str, str]], bytes] | Response:
    """The request's fields (a urlencoded body, a JSON object's top-level scalars where the carrier
    declares JSON bodies, or the query of a GET) and the body's bytes, or the response refusing it
    (415, 413, 408, 400) with the reason."""
    if request.method == "GET":
        try:
            return parse_qsl(
                request.url.query, keep_blank_values=True, errors="strict", max_num_fields=MAX_WEBHOOK_FIELDS
            ), b""
        except (UnicodeDecodeError, ValueError):
            return PlainTextResponse("unreadable query string", status_code=400)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in body_types:
        return PlainTextResponse(f"a voice webhook is an {' or '.join(body_types)} body", status_code=415)
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
        return PlainTextResponse(
            f"request body not received within {timeout_s:g} s", status_code=408, headers={"Connection": "close"}
        )
    if content_type == JSON_CONTENT_TYPE:
        return _json_fields(bytes(body))
    try:
        return parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_WEBHOOK_FIELDS,
        ), bytes(body)
    except UnicodeDecodeError:
        return PlainTextResponse("the form is not percent-encoded UTF-8", status_code=400)
    except ValueError:
        return PlainTextResponse(f"too many form fields (over {MAX_WEBHOOK_FIELDS})", status_code=400)


def _json_fields(body: bytes) -> tuple[list[tuple[str, str]], bytes] | Response:
    """A JSON object's top-level strings, numbers and booleans as fields (nested values are left
    to the carrier, which has the body); anything but an object is refused."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return PlainTextResponse("the body is not JSON", status_code=400)
    if not isinstance(document, dict):
        return PlainTextResponse("the body is not a JSON object", status_code=400)
    if len(document) > MAX_WEBHOOK_FIELDS:
        return PlainTextResponse(f"too many fields (over {MAX_WEBHOOK_FIELDS})", status_code=400)
    pairs = []
    for name, value in document.items():
        if isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            pairs.append((name, str(value)))
    return pairs, body
