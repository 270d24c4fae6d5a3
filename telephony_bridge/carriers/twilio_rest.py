"""Twilio REST calls: hang up a live call, replace its TwiML (transfer), place a call (dial).

Uses the official ``twilio`` client, whose HTTP layer is blocking (``requests``), so each call
runs in a worker thread via ``asyncio.to_thread``; these requests happen a few times per call at
most, never on the media path. The package's async client would need aiohttp and an explicitly
closed session per bridge, which buys nothing at this rate.

``base_url`` points the client's ``api`` domain elsewhere (a local test server, a mock); it is a
plain public attribute of ``twilio.base.domain.Domain``, so no monkey-patching is involved.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Final

__all__ = ["DEFAULT_TIMEOUT_S", "TwilioRest", "TwilioRestError"]

DEFAULT_TIMEOUT_S: Final = 10.0

# SIDs are interpolated into the request path; refusing anything but letters and digits keeps a
# hostile value from steering the request to another resource.
_SID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")  # dashes: SignalWire's UUIDs


class TwilioRestError(Exception):
    """A failed Twilio REST request. Its text never contains the auth token."""

    status: int
    message: str
    code: int | None

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(f"Twilio REST error {status}: {message}")
        self.status = status  # HTTP status, 0 when no HTTP answer arrived
        self.message = message
        self.code = code  # Twilio's own error code when the API returned one


class TwilioRest:
    """The call operations the bridge needs, as coroutines."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        self.account_sid = account_sid
        self._secrets = (
            auth_token,
            base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode(),
        )
        # One requests.Session per request (pool_connections=False): Session is not documented
        # as thread-safe and to_thread may run two requests at once; a lost keep-alive costs
        # one TLS handshake on an operation that happens once per call.
        # The SDK is imported here, not with the module: carriers/base.py `sdk_modules` says when.
        from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self._client_errors = (TwilioRestException, TwilioServiceException, OSError, TwilioException, ValueError)

        http_client = TwilioHttpClient(pool_connections=False, timeout=timeout_s)
        self._client = Client(account_sid, auth_token, http_client=http_client)
        if base_url is not None:
            self._client.api.base_url = base_url.rstrip("/")
            # Edge/region (possibly from TWILIO_EDGE/TWILIO_REGION) rewrite the host name, which
            # would mangle an explicit base URL.
            self._client.edge = None
            self._client.region = None

    def __repr__(self) -> str:
        return f"<TwilioRest {self.account_sid}>"

    async def hangup(self, call_sid: str) -> None:
        """End the call (``Status=completed``)."""
        await self._update(call_sid, status="completed")

    async def update_twiml(self, call_sid: str, twiml: str) -> None:
        """Replace what the call is doing with ``twiml`` (e.g. ``dial_twiml`` to transfer)."""
        if not twiml:
            raise ValueError("twiml must not be empty")
        await self._update(call_sid, twiml=twiml)

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        machine_detection: str | None = None,
        timeout_s: int = 60,
    ) -> str:
        """``Calls.create``: place a call whose TwiML Twilio fetches from ``url`` when it is answered
        (after answering-machine detection, whose result then comes as ``AnsweredBy``), reporting
        initiated, ringing, answered and completed to ``status_callback``. The new call's SID."""
        fields: dict[str, object] = {
            "to": to,
            "from_": from_,
            "url": url,
            "method": "POST",
            "status_callback": status_callback,
            "status_callback_method": "POST",
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            "timeout": timeout_s,
        }
        if machine_detection:
            fields["machine_detection"] = machine_detection
        return await asyncio.to_thread(self._create_blocking, fields)

    def _create_blocking(self, fields: dict[str, object]) -> str:
        sid: str | None = None
        failure: TwilioRestError | None = None
        try:
            sid = self._client.calls.create(**fields).sid
        except self._client_errors as exc:
            failure = self._failure(exc)
        if failure is not None:
            raise failure  # outside the except block: see _update_blocking
        if not isinstance(sid, str) or not _SID.fullmatch(sid):
            raise TwilioRestError(0, "Calls.create answered without a call SID")
        return sid

    async def _update(self, call_sid: str, **fields: str) -> None:
        if not isinstance(call_sid, str) or not _SID.fullmatch(call_sid):
            raise ValueError("call_sid must be a Twilio SID (letters and digits)")
        await asyncio.to_thread(self._update_blocking, call_sid, fields)

    def _update_blocking(self, call_sid: str, fields: dict[str, str]) -> None:
        failure: TwilioRestError | None = None
        try:
            self._client.calls(call_sid).update(**fields)
        except self._client_errors as exc:
            failure = self._failure(exc)
        if failure is not None:
            # Raised outside the except block so the original exception is not chained: a
            # requests exception carries the prepared request, Authorization header included.
            raise failure

    def _failure(self, exc: Exception) -> TwilioRestError:
        """The error to raise for what the client raised (one of `_client_errors`)."""
        from twilio.base.exceptions import TwilioRestException, TwilioServiceException

        if isinstance(exc, TwilioRestException):
            return TwilioRestError(exc.status, self._scrub(exc.msg or "request failed"), exc.code)
        if isinstance(exc, TwilioServiceException):
            text = exc.title if not exc.detail else f"{exc.title}: {exc.detail}"
            return TwilioRestError(exc.status, self._scrub(text), exc.code)
        # requests' ConnectionError, Timeout, ... derive from OSError; a 2xx that is not JSON
        return TwilioRestError(0, self._scrub(f"{type(exc).__name__}: {exc}"))

    def _scrub(self, text: str) -> str:
        # The API never echoes the token, but a proxy or a test server might echo the request.
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
