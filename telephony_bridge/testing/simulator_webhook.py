"""The phone simulator's webhook client: make the answer request as the call's carrier does (its
simulator profile says how) and read the answer document, with what a failure means to a person.
`WebhookClient` is the webhook half of one simulated call."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import orjson

from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.carrier_profile import AnswerDeclined, AnswerRequestSpec, CarrierProfile, StreamTarget
from telephony_bridge.testing.simulator_result import CallResult

WEBHOOK_PATH = messages.WEBHOOK_PATH
TWILIO_HTTP_USER_AGENT = messages.HTTP_USER_AGENT
PARAMETER_LIMIT = 500  # Twilio: name + value of a <Parameter> under 500 characters


def connect_url_for(twiml_stream_url: str, base_url: str) -> str:
    """Where to connect for a TwiML stream URL: its path on ``base_url``'s host when the hosts differ."""
    stream = urllib.parse.urlsplit(twiml_stream_url)
    base = urllib.parse.urlsplit(base_url)
    if (stream.hostname or "").lower() == (base.hostname or "").lower():
        return twiml_stream_url
    scheme = "wss" if base.scheme.lower() in ("https", "wss") else "ws"
    return urllib.parse.urlunsplit((scheme, base.netloc, stream.path or "/", stream.query, ""))


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _post_form(
    url: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    timeout: float,
    *,
    method: str = "POST",
    body: bytes | None = None,
) -> tuple[int, str, str]:
    """A request with a urlencoded form (the body of a POST, the query of a GET) or `body` as is."""
    data: bytes | None
    if method == "GET":
        query = urllib.parse.urlencode(params)
        url, data = (url + ("&" if "?" in url else "?") + query if query else url), None
    else:
        data = body if body is not None else urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    # A proxy from the environment never makes sense for a bridge on this machine.
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", "") if e.headers else "", e.read().decode("utf-8", "replace")


_HTTP_HINTS = {
    403: ": the bridge refused the signature (--auth-token must be its {carrier} secret; without one it"
    " takes loopback clients only)",
    404: ": nothing answers {path} there (is --url the bridge's base URL?)",
    405: ": {path} there does not take {method} (is --url the bridge's base URL?)",
    503: ": the bridge is draining for shutdown",
}


def _unreachable(base_url: str, reason: object) -> str:
    """What a failed webhook POST means to a person, from the socket error under urllib's."""
    if isinstance(reason, ConnectionRefusedError):
        return (
            f"no bridge answered at {base_url} (connection refused: is `telephony-bridge serve` running on that port?)"
        )
    if isinstance(reason, socket.gaierror):
        return f"no bridge at {base_url}: unknown host ({reason.strerror})"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer from {base_url} (timed out)"
    return f"no bridge answered at {base_url} ({reason})"


class WebhookClient:
    """The webhook step of a simulated call (mixed into the call: it records into its result)."""

    base_url: str
    to: str
    from_: str
    profile: CarrierProfile
    connect_timeout_s: float
    result: CallResult

    def emit(self, kind: str, detail: str, t_ms: float | None = None, data: Any = None) -> None:
        raise NotImplementedError

    def protocol_error(self, problem: str) -> None:
        raise NotImplementedError

    def warn(self, problem: str) -> None:
        raise NotImplementedError

    @property
    def signed(self) -> bool:
        return bool(getattr(self.profile, "signed", False))

    def webhook_request(self) -> tuple[str, AnswerRequestSpec]:
        """The URL and request that ask for the call's answer document (an inbound call's answer
        request; an outbound call's answer URL overrides it)."""
        spec = self.profile.answer_request(self.result.call_sid, self.from_, self.to)
        return self.base_url + spec.path, spec

    async def webhook(self) -> StreamTarget | None:
        result, profile = self.result, self.profile
        url, spec = self.webhook_request()
        headers = {"User-Agent": getattr(profile, "http_user_agent", f"{profile.name}-simulator")}
        body = None
        if spec.json is not None:
            headers["Content-Type"] = "application/json"
            body = orjson.dumps(spec.json)
        elif spec.method != "GET":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers.update(spec.headers)
        self.emit(
            "webhook", f"{spec.method} {url} From={self.from_} To={self.to}" + (" (signed)" if self.signed else "")
        )
        try:
            status, content_type, text = await asyncio.to_thread(
                _post_form, url, spec.form, headers, self.connect_timeout_s, method=spec.method, body=body
            )
        except (urllib.error.URLError, OSError) as e:
            result.error = _unreachable(self.base_url, getattr(e, "reason", e))
            result.rejected = True
            self.emit("webhook", result.error)
            return None
        result.webhook_status, result.twiml = status, text
        if status != 200:
            hint = _HTTP_HINTS.get(status, "").format(carrier=profile.name, path=spec.path, method=spec.method)
            result.error = f"HTTP {status} from {url}" + hint
            result.rejected = True
            self.emit("webhook", result.error)
            return None
        expected = getattr(profile, "answer_content_types", None)
        if expected and content_type.split(";")[0].strip().lower() not in expected:
            self.protocol_error(f"webhook answered Content-Type {content_type!r}, not {expected[0]}")
        try:
            target = profile.read_answer(status, content_type, text, self.base_url)
        except AnswerDeclined as e:
            self.emit("twiml", str(e))
            result.rejected = True
            return None
        except ValueError as e:
            result.error = str(e) if str(e).startswith("unusable") else f"unusable answer: {e}"
            result.rejected = True
            self.emit("webhook", result.error)
            return None
        self.emit("twiml", f"connect stream {target.url}")
        check = getattr(profile, "answer_problems", None)
        if check is not None:
            errors, warnings = check(target)
            for warning in warnings:
                self.warn(warning)
            for error in errors:
                self.protocol_error(error)
        elif urllib.parse.urlsplit(target.url).scheme != "wss":
            self.warn(f"stream url {target.url!r} is not wss://: {profile.name} only connects to wss")
        result.stream_url, result.custom_parameters = target.url, dict(target.parameters)
        return target
