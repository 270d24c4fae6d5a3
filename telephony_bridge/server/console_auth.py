"""Who may use the web console: holders of CONSOLE_TOKEN or an API_KEYS key.

Given as `Authorization: Bearer <token>`, or once as `?token=<token>` on any console URL, which
answers with an HttpOnly, SameSite=Strict session cookie and a redirect to the bare URL (so the
token leaves the address bar and the history). The cookie holds a hash of the token, never the
token: it stays valid while the token does, and revoking the token revokes it. With no token
configured the console serves loopback clients only (and the app says so at start-up).
Recordings and transcripts are served only to a request that passes here.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from telephony_bridge.server.settings import Settings

COOKIE = "tb_console"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def console_tokens(settings: Settings) -> tuple[str, ...]:
    return tuple(t for t in (settings.console_token, *(settings.api_keys or ())) if t)  # None from the environment


def _cookie_value(token: str) -> str:
    return hashlib.sha256(b"telephony-bridge console session\0" + token.encode()).hexdigest()


def _matches(presented: str, expected: list[str]) -> bool:
    # Every candidate is compared, so the time taken does not say which one nearly matched.
    return any([hmac.compare_digest(presented.encode(), e.encode()) for e in expected])  # noqa: C419


def console_refusal(connection: HTTPConnection, settings: Settings, cookie_path: str = "/console") -> Response | None:
    """None when the request may go on; otherwise the response (refusal, or the cookie redirect).
    `cookie_path`: where the session cookie is sent back (the softphone's pages are under /softphone)."""
    tokens = console_tokens(settings)
    if not tokens:
        host = connection.client.host if connection.client else ""
        if host in LOOPBACK or host.startswith("127."):
            return None
        return PlainTextResponse(
            "forbidden: no CONSOLE_TOKEN (or API_KEYS) is configured, so the console serves loopback clients only",
            status_code=403,
        )
    given = connection.query_params.get("token")
    if given is not None:
        if not _matches(given, list(tokens)):
            return PlainTextResponse("unauthorized", status_code=401)
        rest = [(k, v) for k, v in connection.query_params.multi_items() if k != "token"]
        target = connection.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            _cookie_value(given),
            httponly=True,
            samesite="strict",
            path=cookie_path,
            secure=settings.base_url.startswith("https:"),
        )
        return response
    scheme, _, bearer = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer and _matches(bearer.strip(), list(tokens)):
        return None
    cookie = connection.cookies.get(COOKIE)
    if cookie and _matches(cookie, [_cookie_value(t) for t in tokens]):
        return None
    return PlainTextResponse(
        "unauthorized: give the console token as Authorization: Bearer … or once as ?token=…",
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
