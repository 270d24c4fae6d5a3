"""Twilio's HTTP side of a call: request signatures and the TwiML the bridge answers with.

Built on the official ``twilio`` package (``RequestValidator``, ``VoiceResponse``) so the signature
algorithm and the TwiML vocabulary follow Twilio's own maintenance rather than a copy of it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

__all__ = [
    "MAX_PARAMETER_CHARS",
    "connect_stream_twiml",
    "dial_twiml",
    "reject_twiml",
    "signature_is_valid",
]


# Twilio: "the combined length of the name and value of each <Parameter> must be under 500
# characters". A longer one is silently dropped or fails the call, so refuse it when building.
MAX_PARAMETER_CHARS: Final = 500

_REJECT_REASONS: Final = frozenset({"rejected", "busy"})
_DEFAULT_PORTS: Final = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def _url_variants(url: str) -> list[str]:
    """``url`` as given, without its port and with the scheme's default port.

    RequestValidator does this too, but maps every non-https scheme to port 80, which is wrong
    for the ``wss://`` URL the media-stream upgrade is signed over; doing it here covers both.
    """
    parts = urlsplit(url)
    variants = [url]
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.netloc:
        return variants
    userinfo, at, hostport = parts.netloc.rpartition("@")
    port = parts.port  # ValueError for a malformed port: the caller treats that as invalid
    # Slice rather than use .hostname, which lower-cases: the signature covers the URL as spelt.
    host = hostport if port is None else hostport[: hostport.rfind(":")]
    without_port = parts._replace(netloc=f"{userinfo}{at}{host}")
    with_port = parts._replace(netloc=f"{userinfo}{at}{host}:{port or default}")
    for candidate in (urlunsplit(without_port), urlunsplit(with_port)):
        if candidate not in variants:
            variants.append(candidate)
    return variants


def signature_is_valid(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) signs ``url`` + ``params``.

    ``url`` must be the URL Twilio requested, rebuilt from the configured public base URL (not from
    proxy headers). ``params`` are the form fields of a POST (empty for the WebSocket upgrade); a
    multi-valued mapping with ``getlist``/``getall`` (Starlette's FormData) is honoured.
    A missing or empty signature is invalid, never an exception.
    """
    if not signature or not auth_token:
        return False
    try:
        validator = RequestValidator(auth_token)
        if validator.validate(url, params, signature):
            return True
        expected = signature.encode("utf-8")
        for candidate in _url_variants(url):
            computed = validator.compute_signature(candidate, params).encode("utf-8")
            if hmac.compare_digest(computed, expected):
                return True
    except (TypeError, ValueError, KeyError):
        # Odd input (non-string values, unparsable URL) means "not signed by Twilio".
        return False
    return False


def connect_stream_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    """TwiML answering a call with a bidirectional media stream to ``stream_url``.

    ``parameters`` arrive in the ``start`` frame's ``customParameters``: the stream URL itself
    must carry no query string (Twilio drops it), so values travel as ``<Parameter>`` children.
    """
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream url must be a ws:// or wss:// URL, got {stream_url!r}")
    if parts.query or parts.fragment:
        raise ValueError("stream url must not carry a query string; use parameters instead")
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise ValueError(f"stream parameter names and values must be strings: {name!r}")
        if len(name) + len(value) >= MAX_PARAMETER_CHARS:
            raise ValueError(
                f"stream parameter {name!r}: name and value together must be under "
                f"{MAX_PARAMETER_CHARS} characters (got {len(name) + len(value)})"
            )
        stream.parameter(name=name, value=value)
    response = VoiceResponse()
    response.append(connect)
    return str(response)


def reject_twiml(reason: str = "rejected") -> str:
    """TwiML refusing the call before it is answered (no charge); ``reason`` is rejected|busy."""
    if reason not in _REJECT_REASONS:
        raise ValueError(f"reject reason must be one of {sorted(_REJECT_REASONS)}, got {reason!r}")
    response = VoiceResponse()
    response.reject(reason=reason)
    return str(response)


def dial_twiml(number: str, caller_id: str | None = None) -> str:
    """TwiML transferring the call to ``number`` (E.164) or to a ``sip:`` URI."""
    if not number or not isinstance(number, str):
        raise ValueError("dial target must be a non-empty string")
    dial = Dial(caller_id=caller_id) if caller_id else Dial()
    if number.lower().startswith(("sip:", "sips:")):
        dial.sip(number)
    else:
        dial.number(number)
    response = VoiceResponse()
    response.append(dial)
    return str(response)
