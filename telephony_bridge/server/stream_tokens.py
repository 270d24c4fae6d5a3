"""Binding a media stream to a call the answer endpoint accepted.

A carrier's stream upgrade is not enough to trust a stream: Twilio signs the upgrade over the
constant stream URL, so one captured signature would open any number of streams, each a paid model
session running whatever the stream's own `start` named. Instead the answer endpoint (webhook)
mints a short-lived token over the call id, the scenario it routed to and the numbers, and hands it
to the carrier in the answer document (a `<Parameter>` for Twilio); the stream's `start` is
accepted only with a valid, unexpired, unused token for the call id it names, and the scenario is
taken from the token, never from the stream.

Pure: the clock and the secret are given; nothing here does I/O. Single use holds within one
process. With several processes or instances, the secret is shared (`STREAM_TOKEN_SECRET`) so any
of them can check a token, and a token captured in flight could open at most one stream per process
within its lifetime (`ttl_s`, seconds): the carrier connects within a second or two of the answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from time import time
from typing import Final

import orjson

from telephony_bridge.carriers.base import STREAM_TOKEN_PARAMETER

__all__ = ["TOKEN_PARAMETER", "StreamGrant", "StreamTokenError", "StreamTokenProblem", "StreamTokens"]

TOKEN_PARAMETER: Final = STREAM_TOKEN_PARAMETER  # where a stream carries it back (carriers/base.py)
_VERSION: Final = "v1"
_MAX_TOKEN_CHARS: Final = 1024  # refuse anything longer before decoding it


class StreamTokenProblem(Enum):
    MISSING = "no stream token: the stream was not opened from the bridge's answer"
    MALFORMED = "malformed stream token"
    BAD_SIGNATURE = "stream token signature invalid"
    EXPIRED = "stream token expired"
    REUSED = "stream token already used"
    WRONG_CALL = "stream token issued for another call"


class StreamTokenError(Exception):
    def __init__(self, problem: StreamTokenProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What the answer endpoint decided for a call, as the stream may use it."""

    call_id: str
    scenario: str
    caller: str
    number: str
    # An outbound call placed by a running scenario (server/outbound.py): the stream joins that
    # scenario's waiting Call instead of starting the scenario. Empty for inbound calls.
    outbound: str = ""


class StreamTokens:
    def __init__(self, secret: bytes, ttl_s: float = 30.0, clock: Callable[[], float] = time) -> None:
        if len(secret) < 16:
            raise ValueError("the stream token secret must be at least 16 bytes")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock
        self._used: dict[str, float] = {}  # nonce → expiry; only tokens this process minted or verified

    def issue(self, grant: StreamGrant) -> str:
        fields = {
            "c": grant.call_id,
            "s": grant.scenario,
            "f": grant.caller,
            "t": grant.number,
            "e": round(self._clock() + self._ttl_s, 3),
            "n": os.urandom(9).hex(),
        }
        if grant.outbound:
            fields["o"] = grant.outbound
        body = orjson.dumps(fields)
        signed = f"{_VERSION}.{_b64(body)}"
        return f"{signed}.{_b64(self._mac(signed))}"

    def redeem(self, token: str | None, call_id: str) -> StreamGrant:
        """The grant of a valid token for `call_id`, which is then spent; StreamTokenError otherwise."""
        if not token:
            raise StreamTokenError(StreamTokenProblem.MISSING)
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
            raise StreamTokenError(StreamTokenProblem.MALFORMED)
        signed, _, mac = token.rpartition(".")
        version, _, body_b64 = signed.partition(".")
        if version != _VERSION:
            raise StreamTokenError(StreamTokenProblem.MALFORMED)
        try:
            given_mac = _unb64(mac)
        except ValueError:
            raise StreamTokenError(StreamTokenProblem.MALFORMED) from None
        if not hmac.compare_digest(given_mac, self._mac(signed)):
            raise StreamTokenError(StreamTokenProblem.BAD_SIGNATURE)
        try:  # signed by us: malformed now means a bug or a changed format, still refused
            fields = orjson.loads(_unb64(body_b64))
            grant = StreamGrant(
                call_id=str(fields["c"]),
                scenario=str(fields["s"]),
                caller=str(fields["f"]),
                number=str(fields["t"]),
                outbound=str(fields.get("o", "")),
            )
            expires, nonce = float(fields["e"]), str(fields["n"])
        except (ValueError, KeyError, TypeError):
            raise StreamTokenError(StreamTokenProblem.MALFORMED) from None
        now = self._clock()
        if now >= expires:
            raise StreamTokenError(StreamTokenProblem.EXPIRED)
        if grant.call_id != call_id:
            raise StreamTokenError(StreamTokenProblem.WRONG_CALL)
        self._forget_expired(now)
        if nonce in self._used:
            raise StreamTokenError(StreamTokenProblem.REUSED)
        self._used[nonce] = expires
        return grant

    def spent_count(self) -> int:
        """Tokens remembered as used (expired ones are forgotten): bounded by answers per TTL."""
        return len(self._used)

    def _forget_expired(self, now: float) -> None:
        if self._used:
            for nonce in [n for n, expires in self._used.items() if expires <= now]:
                del self._used[nonce]

    def _mac(self, signed: str) -> bytes:
        return hmac.new(self._secret, signed.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc
