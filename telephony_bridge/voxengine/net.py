"""`Net.httpRequestAsync(url, options)`: a scenario's HTTP requests, shaped as on Voximplant.

`await Net.httpRequestAsync(url, {"method": "POST", "headers": {...}, "postData": "..."})` returns
an `HttpRequestResult` (read by attribute or key): `code` (the HTTP status, or ≤ 0 when there
was none), `text`, `headers` (`[{"key", "value"}]`), `data` (bytes, with `rawOutput`), `error`
(why there was no status). Failures are results, never exceptions, as on Voximplant:

| code | meaning |
|---|---|
| 0 | a limit was violated: the response was over 2 MB, or too many requests were queued |
| -1 | the request failed (connection refused or reset, TLS, protocol) |
| -2 | malformed URL (or a scheme other than http/https) |
| -3 | host not found |
| -4 | timed out (`timeout`, default and at most 90 s; `connectionTimeout`, default 6 s) |

Options: `method` (GET), `headers` (a dict, or `["Name: value"]` as official examples pass it),
`postData` (str or bytes), `params` (a dict appended to the query), `rawOutput` (put the bytes in
`data`), `timeout`, `connectionTimeout` (seconds). Per call at most 3 requests run at once and 35
wait; the rest get code 0. Logs and errors show a URL without its query string or credentials (an
API key there stays out of the log).

One HTTP client (`NetClient`, a connection pool) serves every call of the process; each call gets
its own `Net`, with its own concurrency limit.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.voxengine.listeners import EventPayload

log = logging.getLogger("telephony_bridge.scenario")

MAX_RESPONSE_BYTES = 2 * 1024 * 1024
MAX_TIMEOUT_S = 90.0
DEFAULT_CONNECT_TIMEOUT_S = 6.0
CONCURRENT_PER_CALL = 3
QUEUED_PER_CALL = 35

CODE_LIMIT = 0
CODE_FAILED = -1
CODE_BAD_URL = -2
CODE_HOST_NOT_FOUND = -3
CODE_TIMEOUT = -4


class NetClient:
    """The process's HTTP client for scenarios, opened on first use and closed with the app."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=True,
                trust_env=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


@with_snake_case_twins
class Net:
    """The `Net` global of one call's scenario."""

    def __init__(self, client: NetClient | None, label: str = "scenario") -> None:
        self._client = client
        self._label = label
        self._slots = asyncio.Semaphore(CONCURRENT_PER_CALL) if client is not None else None
        self._waiting = 0

    async def httpRequestAsync(self, url: str, options: Mapping[str, Any] | None = None) -> EventPayload:
        if self._client is None or self._slots is None:
            raise RuntimeError("Net is not available here (a scenario's start-up check): call it from an event handler")
        options = options or {}
        if self._slots.locked() and self._waiting >= QUEUED_PER_CALL:
            return _failure(
                CODE_LIMIT, f"too many requests at once ({CONCURRENT_PER_CALL} running, {QUEUED_PER_CALL} waiting)"
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._request(url, options)
        finally:
            self._slots.release()

    async def _request(self, url: str, options: Mapping[str, Any]) -> EventPayload:
        shown = redacted_url(url)
        try:
            request = self._build(url, options)
        except (ValueError, TypeError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _failure(CODE_BAD_URL, f"malformed request for {shown}: {type(exc).__name__}")
        timeout = _timeout(options)
        client = self._client.client()  # type: ignore[union-attr]
        try:
            async with asyncio.timeout(timeout):
                response = await client.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > MAX_RESPONSE_BYTES:
                            return _failure(CODE_LIMIT, f"response from {shown} over {MAX_RESPONSE_BYTES} bytes")
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return self._failed(CODE_TIMEOUT, shown, f"timed out after {timeout:g} s")
        except httpx.ConnectError as exc:
            if _host_not_found(exc):
                return self._failed(CODE_HOST_NOT_FOUND, shown, "host not found")
            return self._failed(CODE_FAILED, shown, "connection failed")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return _failure(CODE_BAD_URL, f"malformed URL {shown}")
        except httpx.HTTPError as exc:
            return self._failed(CODE_FAILED, shown, type(exc).__name__)
        raw = bytes(body)
        decoded = _decode(response, raw)
        if decoded is None:  # compressed beyond the limit, or broken encoding
            return _failure(CODE_LIMIT, f"response from {shown} could not be decoded within {MAX_RESPONSE_BYTES} bytes")
        result = EventPayload(
            code=response.status_code,
            text=_text(response, decoded),
            headers=[{"key": k, "value": v} for k, v in response.headers.items()],
            error=None,
        )
        if options.get("rawOutput"):
            result["data"] = decoded
        return result

    def _build(self, url: str, options: Mapping[str, Any]) -> httpx.Request:
        if not isinstance(url, str):
            raise TypeError("url")
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("scheme")
        method = str(options.get("method") or "GET").upper()
        content = options.get("postData")
        if content is not None and not isinstance(content, str | bytes):
            raise TypeError("postData must be a string or bytes")
        params = options.get("params")
        headers = _headers(options.get("headers"))
        if not any(name.lower() == "accept-encoding" for name, _ in headers):
            headers.append(("Accept-Encoding", "identity"))  # the 2 MB bound is on what we hold, decoded
        timeout = _timeout(options)
        connect = min(float(options.get("connectionTimeout") or DEFAULT_CONNECT_TIMEOUT_S), timeout)
        return self._client.client().build_request(  # type: ignore[union-attr]
            method,
            url,
            headers=headers,
            content=content,
            params=dict(params) if params else None,
            timeout=httpx.Timeout(timeout, connect=connect),
        )

    def _failed(self, code: int, shown: str, why: str) -> EventPayload:
        log.warning("%s: Net.httpRequestAsync %s: %s (code %d)", self._label, shown, why, code)
        return _failure(code, f"{why}: {shown}")


def _failure(code: int, error: str) -> EventPayload:
    return EventPayload(code=code, text="", headers=[], error=error)


def _headers(headers: Any) -> list[tuple[str, str]]:
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    pairs = []
    for line in headers:  # ["Name: value", ...]
        name, colon, value = str(line).partition(":")
        if not colon:
            raise ValueError("header lines are 'Name: value'")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _timeout(options: Mapping[str, Any]) -> float:
    return min(float(options.get("timeout") or MAX_TIMEOUT_S), MAX_TIMEOUT_S)


def _decode(response: httpx.Response, raw: bytes) -> bytes | None:
    """The body with a gzip or deflate Content-Encoding undone, never past the size limit (a small
    compressed bomb stays small); any other encoding is left as it came."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return raw
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32 if encoding != "deflate" else zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, MAX_RESPONSE_BYTES + 1)
    except zlib.error:
        return None
    return out if len(out) <= MAX_RESPONSE_BYTES else None


def _text(response: httpx.Response, body: bytes) -> str:
    return body.decode(response.charset_encoding or "utf-8", errors="replace")


def _host_not_found(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        hint in text
        for hint in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo failed",
            "no address associated",
            "temporary failure in name resolution",
        )
    )


def redacted_url(url: Any) -> str:
    """`url` for a log line: scheme, host, port and path; no credentials, query or fragment."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", "")) or "?"
    except ValueError:
        return "<malformed url>"
