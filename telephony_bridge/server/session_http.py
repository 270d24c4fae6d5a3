"""Each call's access URL: `{PUBLIC_URL}/api/sessions/{token}/http`, VoxEngine's `accessSecureURL`.

While a call runs, an outside system (a CRM, a dashboard, a human agent's tool) may send a request
there; the scenario's `AppEvents.HttpRequest` handlers get `method`, `path` (what follows `/http`),
`content` (the body as text; `body` is the same), `headers` (`[{"key", "value"}]`), and the first
value a handler returns is the response: a str as text, bytes as they are, a dict or list as JSON,
None as an empty 200.

The token is the credential: 32 random bytes, made per call, valid only while the call runs. It is
kept only as its SHA-256 digest, so looking it up says nothing about how close a guess was; a
request with an unknown, malformed or dead token gets 404 (never 401: nothing tells a dead session
from one that never was). Bodies are bounded (`MAX_BODY`, 413) and must arrive within
HTTP_BODY_TIMEOUT_S (408); handlers have `HANDLER_TIMEOUT_S` to answer (504).

With `serve --workers N` the token lives in the worker that runs the call, and a request reaching
another worker gets 404: use one worker per port where access URLs are used (README, "Configuration").
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from telephony_bridge.voxengine.listeners import EventPayload

if TYPE_CHECKING:
    from telephony_bridge.server.runtime import BridgeRuntime

PATH = "/api/sessions/{token}/http"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_BODY = 64 * 1024
HANDLER_TIMEOUT_S = 10.0
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)

# The session's side: deliver the event, get (answered in time, reply).
Deliver = Callable[[EventPayload], Awaitable[tuple[bool, Any]]]


class SessionAccess:
    """The access tokens of the calls in progress in this process."""

    def __init__(self) -> None:
        self._live: dict[bytes, Deliver] = {}

    def issue(self, deliver: Deliver) -> str:
        token = secrets.token_urlsafe(32)
        self._live[_digest(token)] = deliver
        return token

    def revoke(self, token: str) -> None:
        self._live.pop(_digest(token), None)

    def find(self, token: str) -> Deliver | None:
        if not _TOKEN.fullmatch(token):
            return None
        return self._live.get(_digest(token))

    def __len__(self) -> int:
        return len(self._live)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def access_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + PATH.format(token=token)


def session_http_routes(runtime: BridgeRuntime) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        if runtime.session_access.find(token) is None:
            return _not_found()
        body = await _read_body(request, runtime.settings.http_body_timeout_s)
        if isinstance(body, Response):
            return body
        deliver = runtime.session_access.find(token)  # the call may have ended while the body came
        if deliver is None:
            return _not_found()
        rest = request.path_params.get("rest", "")
        content = body.decode("utf-8", errors="replace")
        payload = EventPayload(
            name="HttpRequest",
            method=request.method,
            path="/" + rest,
            query=request.url.query,
            content=content,
            body=content,
            headers=[{"key": k, "value": v} for k, v in request.headers.items()],
        )
        answered, reply = await deliver(payload)
        if not answered:
            if runtime.session_access.find(token) is None:
                return _not_found()
            return PlainTextResponse(f"the scenario did not answer within {HANDLER_TIMEOUT_S:g} s", status_code=504)
        return _response(reply)

    return [
        Route(PATH, endpoint, methods=METHODS),
        Route(PATH + "/{rest:path}", endpoint, methods=METHODS),
    ]


def _not_found() -> Response:
    return PlainTextResponse("no such session", status_code=404)


def _response(reply: Any) -> Response:
    if reply is None:
        return Response(b"", status_code=200, media_type="text/plain")
    if isinstance(reply, bytes | bytearray):
        return Response(bytes(reply), media_type="application/octet-stream")
    if isinstance(reply, dict | list):
        try:
            return Response(orjson.dumps(reply), media_type="application/json")
        except TypeError:
            return PlainTextResponse("the scenario's reply is not JSON-serialisable", status_code=500)
    return PlainTextResponse(str(reply))


async def _read_body(request: Request, timeout_s: float) -> bytes | Response:
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        return PlainTextResponse("invalid Content-Length", status_code=400)
    if declared > MAX_BODY:
        return PlainTextResponse(f"request too large (over {MAX_BODY} bytes)", status_code=413)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    return PlainTextResponse(f"request too large (over {MAX_BODY} bytes)", status_code=413)
    except ClientDisconnect:
        return PlainTextResponse("request body incomplete", status_code=400)
    except TimeoutError:
        return PlainTextResponse(
            f"request body not received within {timeout_s:g} s", status_code=408, headers={"Connection": "close"}
        )
    return bytes(body)
