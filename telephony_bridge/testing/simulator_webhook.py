"""The phone simulator's webhook client: POST the voice webhook as Twilio does and read the TwiML,
with what a failure means to a person. `WebhookClient` is the webhook half of one simulated call."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any

from twilio.request_validator import RequestValidator

from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.simulator_result import CallResult
from telephony_bridge.testing.twilio_messages import TwimlAnswer, read_twiml

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


def _post_form(url: str, params: dict[str, str], headers: dict[str, str], timeout: float) -> tuple[int, str, str]:
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(params).encode(), method="POST", headers=headers
    )
    # A proxy from the environment never makes sense for a bridge on this machine.
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", "") if e.headers else "", e.read().decode("utf-8", "replace")


_HTTP_HINTS = {
    403: ": the bridge refused the signature (--auth-token must be its TWILIO_AUTH_TOKEN; without one it"
         " takes loopback clients only)",
    404: f": nothing answers {WEBHOOK_PATH} there (is --url the bridge's base URL?)",
    405: f": {WEBHOOK_PATH} there does not take POST (is --url the bridge's base URL?)",
    503: ": the bridge is draining for shutdown",
}


def _unreachable(base_url: str, reason: object) -> str:
    """What a failed webhook POST means to a person, from the socket error under urllib's."""
    if isinstance(reason, ConnectionRefusedError):
        return f"no bridge answered at {base_url} (connection refused: is `telephony-bridge serve` running on that port?)"
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
    validator: RequestValidator | None
    connect_timeout_s: float
    result: CallResult

    def emit(self, kind: str, detail: str, t_ms: float | None = None, data: Any = None) -> None:
        raise NotImplementedError

    def protocol_error(self, problem: str) -> None:
        raise NotImplementedError

    def warn(self, problem: str) -> None:
        raise NotImplementedError

    def webhook_request(self) -> tuple[str, dict[str, str]]:
        """The URL and form of the request that asks for the call's TwiML (an inbound call's voice
        webhook; an outbound call's answer URL overrides it)."""
        result = self.result
        return self.base_url + WEBHOOK_PATH, messages.webhook_form(
            account_sid=result.account_sid, call_sid=result.call_sid, from_=self.from_, to=self.to)

    async def webhook(self) -> TwimlAnswer | None:
        result = self.result
        url, params = self.webhook_request()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": TWILIO_HTTP_USER_AGENT,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        if self.validator is not None:
            headers["X-Twilio-Signature"] = self.validator.compute_signature(url, params)
        self.emit("webhook", f"POST {url} From={self.from_} To={self.to}" + (" (signed)" if self.validator else ""))
        try:
            status, content_type, body = await asyncio.to_thread(
                _post_form, url, params, headers, self.connect_timeout_s
            )
        except (urllib.error.URLError, OSError) as e:
            result.error = _unreachable(self.base_url, getattr(e, "reason", e))
            result.rejected = True
            self.emit("webhook", result.error)
            return None
        result.webhook_status, result.twiml = status, body
        if status != 200:
            result.error = f"HTTP {status} from {url}" + _HTTP_HINTS.get(status, "")
            result.rejected = True
            self.emit("webhook", result.error)
            return None
        if content_type.split(";")[0].strip().lower() not in ("text/xml", "application/xml"):
            self.protocol_error(f"webhook answered Content-Type {content_type!r}, not text/xml")
        try:
            answer = read_twiml(body)
        except (ET.ParseError, ValueError) as e:
            result.error = f"unusable TwiML: {e}"
            result.rejected = True
            self.emit("webhook", result.error)
            return None
        self.emit("twiml", answer.note)
        if answer.stream_url is None:
            result.rejected = True
            return None
        self.check_stream_twiml(answer)
        result.stream_url, result.custom_parameters = answer.stream_url, answer.parameters
        return answer

    def check_stream_twiml(self, answer: TwimlAnswer) -> None:
        parts = urllib.parse.urlsplit(answer.stream_url or "")
        if parts.scheme != "wss":
            self.warn(f"stream url {answer.stream_url!r} is not wss://: Twilio only connects to wss")
        if parts.query:
            self.protocol_error(f"stream url {answer.stream_url!r} has a query string: Twilio drops it")
        for name, value in answer.parameters.items():
            if len(name) + len(value) >= PARAMETER_LIMIT:
                self.protocol_error(f"<Parameter name={name!r}> is {len(name) + len(value)} characters: limit is 500")
