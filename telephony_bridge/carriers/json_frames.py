"""The common first steps of a JSON-text media stream's codec (Plivo, Exotel, Telnyx): a text frame
of bounded size that holds a JSON object, and a base64 audio payload. Each failure is a
`CarrierProtocolError` naming the carrier, with an excerpt of the offending data only."""

from __future__ import annotations

import binascii
from typing import Any

import orjson

from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt

__all__ = ["audio_payload", "json_object"]


def json_object(carrier: str, message: str | bytes, max_chars: int | None) -> dict[str, Any]:
    """`message` as a JSON object; `max_chars` None when the codec bounds the size itself."""
    if type(message) is not str:
        raise CarrierProtocolError(f"{carrier}: non-text frame ({len(message)} bytes); it sends JSON text")
    if max_chars is not None and len(message) > max_chars:
        raise CarrierProtocolError(f"{carrier}: message of {len(message)} chars")
    try:
        event = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise CarrierProtocolError(f"{carrier}: not JSON: {excerpt(message)}") from None
    if type(event) is not dict:
        raise CarrierProtocolError(f"{carrier}: not a JSON object: {excerpt(message)}")
    return event


def audio_payload(carrier: str, payload: str) -> bytes:
    """A media message's base64 payload, strictly decoded (binascii: cheaper than base64's, as strict)."""
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        raise CarrierProtocolError(f"{carrier}: media payload is not base64: {excerpt(payload)}") from None
