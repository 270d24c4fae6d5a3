"""Text about the model connection that leaves the bridge: the endpoint URL with its model, and
what goes into logs and errors (secrets redacted, audio elided). Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

_AUDIO_FIELDS = ("audio", "delta")


def redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return text


def with_model(url: str, model: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("model", model)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def trace_line(event: Mapping[str, Any]) -> str:
    """One line per event with audio elided: traces must never carry audio (or secrets)."""
    kind = str(event.get("type", ""))
    carries_audio = kind == "input_audio_buffer.append" or kind.endswith("audio.delta")
    shown = {
        key: (
            f"<{len(value)} base64 chars>"
            if carries_audio and key in _AUDIO_FIELDS and isinstance(value, str)
            else value
        )
        for key, value in event.items()
    }
    text = orjson.dumps(shown, default=str).decode()
    return text if len(text) <= 400 else text[:400] + "…"
