"""The GPT-Live wire as the local engine checks it (pure): the client event types, the strict
session config (`session.start`, what `session.update` may change) with the real API's errors,
and the session's audio formats (the engine's codec names: rate, size, encode/decode, silence)."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from telephony_bridge.audio import g711

__all__ = [
    "CLIENT_TYPES",
    "LIVE_FORMATS",
    "LiveClientError",
    "SessionStart",
    "check_keys",
    "check_session_update",
    "read_session_start",
    "response_object",
]

LIVE_FORMATS = {
    ("audio/pcmu", 8000): "g711_ulaw",
    ("audio/pcm", 24000): "pcm16",
    ("audio/pcm", 16000): "pcm16_16k",
    ("audio/pcma", 8000): "g711_alaw",
}
SESSION_KEYS = {
    "model",
    "audio",
    "client",
    "delegation",
    "input",
    "instructions",
    "safety_identifier",
    "store",
    "triggers",
}
MODELS = {"gpt-live-1", "gpt-live-1.1"}
CLIENT_TYPES = (
    "session.start",
    "session.update",
    "session.input_audio.append",
    "session.input_audio.mute",
    "session.input_audio.unmute",
    "session.output_audio.fixture.play",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "decision.create",
    "decision.item.create",
    "decision.item.delete",
    "response.item.create",
    "response.create",
    "session.close",
)


class LiveClientError(Exception):
    """A client event the real API answers with an `error` event (the session goes on)."""

    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


def unknown_parameter(param: str) -> LiveClientError:
    return LiveClientError(f"Unknown parameter: '{param}'.", "unknown_parameter", param)


def check_keys(where: str, value: Any, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LiveClientError(f"Invalid type for '{where}': expected an object.", "invalid_type", where)
    for key in value:
        if key not in allowed:
            raise unknown_parameter(f"{where}.{key}")
    for key in required:
        if key not in value:
            raise LiveClientError(
                f"Missing required parameter: '{where}.{key}'.", "missing_required_parameter", f"{where}.{key}"
            )
    return value


class SessionStart(NamedTuple):
    config: dict[str, Any]  # the client's session object, checked
    codec: str  # a key of the engine's formats (LIVE_FORMATS' values)
    format_type: str
    voice: str
    delegation: dict[str, Any] | None


def read_session_start(session: Any) -> SessionStart:
    """`session.start`'s session object, checked as strictly as the real API (LiveClientError)."""
    config = check_keys("session", session, SESSION_KEYS, ("model",))
    if config["model"] not in MODELS:
        raise LiveClientError(
            f"The model '{config['model']}' does not exist or you do not have access to it.",
            "model_not_found",
            "session.model",
        )
    audio = check_keys("session.audio", config.get("audio") or {}, {"format", "output"})
    fmt = audio.get("format") or {"type": "audio/pcm", "rate": 24000}
    check_keys("session.audio.format", fmt, {"type", "rate"}, ("type",))
    codec = LIVE_FORMATS.get(
        (str(fmt.get("type")), int(fmt.get("rate", 24000 if fmt.get("type") == "audio/pcm" else 8000)))
    )
    if codec is None:
        raise LiveClientError(f"Unsupported audio format {fmt!r}.", "invalid_value", "session.audio.format")
    output = check_keys("session.audio.output", audio.get("output") or {}, {"voice"})
    delegation = config.get("delegation")
    if delegation is not None:
        check_keys(
            "session.delegation",
            delegation,
            {"type", "responses", "decisions", "acknowledgement_delay_ms"},
            ("type",),
        )
        if delegation["type"] == "responses":
            check_keys(
                "session.delegation.responses",
                delegation.get("responses"),
                {
                    "model",
                    "instructions",
                    "tools",
                    "tool_choice",
                    "parallel_tool_calls",
                    "max_output_tokens",
                    "reasoning",
                    "text",
                    "service_tier",
                },
                ("model",),
            )
    for index, item in enumerate(config.get("input") or []):
        check_keys(f"session.input[{index}]", item, {"type", "role", "content", "id", "status"}, ("role", "content"))
    return SessionStart(config, codec, str(fmt["type"]), output.get("voice", "marin"), delegation)


def check_session_update(update: Any) -> dict[str, Any]:
    """`session.update`'s session object: only delegation (same type) and triggers may change."""
    if isinstance(update, dict):
        for key in update:
            if key in SESSION_KEYS and key not in ("delegation", "triggers"):
                raise LiveClientError(
                    f"'session.{key}' cannot change after the session started.",
                    "immutable_field_update",
                    f"session.{key}",
                )
    check_keys("session", update, {"delegation", "triggers"})
    return update


def response_object(response_id: str | None, status: str, model: str, output: list[Any]) -> dict[str, Any]:
    """The Responses API object a `response.event` carries, as the delegation's backend reports it."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


# --- the session's audio format -------------------------------------------------------------------


def bytes_per_ms(codec: str) -> int:
    return 8 if codec in ("g711_ulaw", "g711_alaw") else (32 if codec == "pcm16_16k" else 48)


def duration_ms(codec: str, nbytes: int) -> int:
    return nbytes // bytes_per_ms(codec)


def sample_rate(codec: str) -> int:
    return {"g711_ulaw": 8000, "g711_alaw": 8000, "pcm16_16k": 16000}.get(codec, 24000)


def encode(codec: str, pcm16: bytes) -> bytes:
    if codec == "g711_ulaw":
        return g711.ulaw_encode(pcm16)
    if codec == "g711_alaw":
        return g711.alaw_encode(pcm16)
    return pcm16


def decode(codec: str, raw: bytes) -> bytes:
    if codec == "g711_ulaw":
        return g711.ulaw_decode(raw)
    if codec == "g711_alaw":
        return g711.alaw_decode(raw)
    return raw[: len(raw) - len(raw) % 2]


def silence(codec: str, nbytes: int) -> bytes:
    fill = {"g711_ulaw": b"\xff", "g711_alaw": b"\xd5"}.get(codec, b"\x00")
    return fill * nbytes
