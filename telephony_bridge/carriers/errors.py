"""Errors shared by the carrier protocol codecs."""

from __future__ import annotations

__all__ = ["CarrierProtocolError", "excerpt"]

# Long enough to recognise a field in a log line, short enough that a frame's audio payload
# (or anything a hostile peer sends) never ends up copied wholesale into logs and metrics.
_EXCERPT_CHARS = 40


def excerpt(value: object, limit: int = _EXCERPT_CHARS) -> str:
    """A short, printable rendering of ``value`` for an error reason."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} chars)"


class CarrierProtocolError(ValueError):
    """A carrier sent a message the bridge cannot use.

    The runtime logs it with the call id, counts it and carries on with the call (a bad frame is
    not a reason to hang up). ``reason`` is human-readable and carries at most a short excerpt of
    the offending data, never a whole payload.
    """

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
