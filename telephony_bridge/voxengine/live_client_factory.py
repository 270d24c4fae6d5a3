"""`OpenAI.createLiveAPIClient`: where the Live client connects, and the client made from the
scenario's parameters."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from telephony_bridge.realtime import live_wire
from telephony_bridge.realtime.connection import DEFAULT_PING_INTERVAL_S
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.live_client import LiveAPIClient

__all__ = ["create_live_api_client", "resolve_live_url"]


def resolve_live_url(
    base_url: str | None, environ: Mapping[str, str], local_engine_url: str | None, api_key: str | None
) -> str:
    """`baseUrl` (http(s) or ws(s), the Live path added) > LIVE_URL (as given) > the embedded local
    engine when there is no key > OpenAI."""
    if base_url:
        parts = urlsplit(base_url)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        path = parts.path.rstrip("/")
        if not path.endswith("/live/sessions"):
            path = (path if path.endswith("/v1") else path + "/v1") + "/live/sessions"
        return urlunsplit((scheme, parts.netloc, path, parts.query, ""))
    if environ.get("LIVE_URL"):
        return environ["LIVE_URL"]
    if not api_key and local_engine_url:
        parts = urlsplit(local_engine_url)
        return urlunsplit((parts.scheme, parts.netloc, live_wire.LIVE_PATH, "", ""))
    return live_wire.OPENAI_LIVE_URL


def _http_url(websocket_url: str) -> str:
    parts = urlsplit(websocket_url)
    return urlunsplit(({"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme), *parts[1:]))


async def create_live_api_client(
    parameters: Mapping[str, Any],
    *,
    tasks: TaskOwner,
    environ: Mapping[str, str] | None = None,
    local_engine_url: str | None = None,
) -> LiveAPIClient:
    """Voximplant's `OpenAI.createLiveAPIClient(parameters)`; connects before returning."""
    environ = os.environ if environ is None else environ
    parameters = dict(parameters or {})
    api_key = parameters.get("apiKey") or environ.get("OPENAI_API_KEY")
    transport = parameters.get("transport", "websocket")
    url = resolve_live_url(parameters.get("baseUrl"), environ, local_engine_url, api_key)
    if transport == "webrtc":
        # The sessions endpoint over HTTP(S) (POST with the offer): `webrtcUrl`, LIVE_WEBRTC_URL,
        # else the WebSocket URL's own, https for wss.
        url = parameters.get("webrtcUrl") or environ.get("LIVE_WEBRTC_URL") or _http_url(url)
    client = LiveAPIClient(
        url=url,
        transport=transport,
        webrtc_config={name: value for name, value in environ.items() if name.startswith("WEBRTC_")},
        api_key=api_key,
        tasks=tasks,
        codec="pcm16" if parameters.get("codec") == "pcm16" else "g711_ulaw",
        on_websocket_close=parameters.get("onWebSocketClose"),
        trace=bool(parameters.get("trace", False)),
        statistics=bool(parameters.get("statistics", False)),
        privacy=bool(parameters.get("privacy", False)),
        reconnect=bool(parameters.get("reconnect", True)),
        max_reconnect_attempts=int(parameters.get("maxReconnectAttempts", 12)),
        ping_interval_s=parameters.get("pingIntervalS", DEFAULT_PING_INTERVAL_S),
    )
    await client.connect()
    return client
