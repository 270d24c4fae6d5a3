"""Bearer keys for the bridge's own API (starting scenarios, recordings, the console).

`API_KEYS` is a comma-separated list; with none configured, every endpoint that needs a key is
off (404), never open. Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response

from telephony_bridge.server.settings import Settings

__all__ = ["api_key_refusal", "has_api_key"]


def has_api_key(connection: HTTPConnection, settings: Settings) -> bool:
    """Whether the request carries one of the configured keys as `Authorization: Bearer <key>`."""
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    presented = given.strip().encode()
    # Every key is compared, so the time taken does not say which one nearly matched.
    matches = [hmac.compare_digest(presented, key.encode()) for key in settings.api_keys]  # all of them, always
    return any(matches)


def api_key_refusal(connection: HTTPConnection, settings: Settings) -> Response | None:
    """None when the request may go on; otherwise the response refusing it."""
    if not settings.api_keys:
        return PlainTextResponse("not found (no API_KEYS configured: this endpoint is off)", status_code=404)
    if not has_api_key(connection, settings):
        return PlainTextResponse("unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return None
