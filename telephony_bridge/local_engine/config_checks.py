"""Field checks of the local engine's session and response parameters: the real API's errors for
unknown parameters, bad types and bad values (`ClientError`), one function per field (pure)."""

from __future__ import annotations

from typing import Any, Literal

Dialect = Literal["ga", "beta"]

GA_FORMAT_TYPES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}

SERVER_VAD_DEFAULTS = {
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}

# semantic_vad is simulated with the energy VAD; eagerness picks the hang-over.
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 350}

_SERVER_VAD_KEYS = {
    "type",
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "idle_timeout_ms",
    "create_response",
    "interrupt_response",
}

_SEMANTIC_VAD_KEYS = {"type", "eagerness", "create_response", "interrupt_response"}

_BETA_TURN_KEYS = {
    "type",
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "create_response",
    "interrupt_response",
    "eagerness",
}

_TOOL_KEYS = {"type", "name", "description", "parameters"}


class ClientError(Exception):
    """A client event the real API would answer with an `error` event (the connection goes on)."""

    def __init__(
        self, message: str, code: str | None = None, param: str | None = None, error_type: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type


def unknown_parameter(param: str) -> ClientError:
    return ClientError(f"Unknown parameter: '{param}'.", "unknown_parameter", param)


def invalid_value(param: str, value: Any, supported: tuple[str, ...] | None = None) -> ClientError:
    message = f"Invalid value: {value!r}."
    if supported:
        message += " Supported values are: " + ", ".join(repr(s) for s in supported) + "."
    return ClientError(message, "invalid_value", param)


def type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def expect(param: str, value: Any, kind: type | tuple[type, ...], what: str, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ClientError(
            f"Invalid type for '{param}': expected {what}, but got a boolean instead.", "invalid_type", param
        )
    if not isinstance(value, kind):
        raise ClientError(
            f"Invalid type for '{param}': expected {what}, but got {type_name(value)} instead.", "invalid_type", param
        )


def check_keys(param: str, value: dict, allowed: set[str]) -> None:
    for key in value:
        if key not in allowed:
            raise unknown_parameter(f"{param}.{key}")


def check_modalities(param: str, value: Any) -> None:
    expect(param, value, list, "an array")
    for entry in value:
        if entry not in ("text", "audio"):
            raise invalid_value(param, entry, ("text", "audio"))


def check_max_tokens(param: str, value: Any) -> None:
    if value == "inf" or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise ClientError(
            f"Invalid '{param}': expected an integer between 1 and 4096, or 'inf'.", "invalid_value", param
        )


def check_tools(param: str, value: Any) -> None:
    expect(param, value, list, "an array")
    for index, tool in enumerate(value):
        where = f"{param}[{index}]"
        expect(where, tool, dict, "an object")
        if tool.get("type", "function") != "function":
            raise ClientError(
                f"The local engine supports only function tools, not {tool.get('type')!r}.",
                "unsupported_tool_type",
                f"{where}.type",
            )
        check_keys(where, tool, _TOOL_KEYS)
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise ClientError(
                f"Missing required parameter: '{where}.name'.", "missing_required_parameter", f"{where}.name"
            )


def check_tool_choice(param: str, value: Any, dialect: Dialect) -> None:
    if isinstance(value, str):
        if value not in ("auto", "none", "required") and dialect == "ga":
            raise invalid_value(param, value, ("auto", "none", "required"))
        return
    if (
        dialect == "ga"
        and isinstance(value, dict)
        and value.get("type") == "function"
        and isinstance(value.get("name"), str)
    ):
        check_keys(param, value, {"type", "name"})
        return
    raise ClientError(f"Invalid type for '{param}'.", "invalid_type", param)


def normalise_turn_detection(param: str, value: Any, dialect: Dialect) -> dict[str, Any] | None:
    if value is None:
        return None
    expect(param, value, dict, "an object")
    kind = value.get("type", "server_vad" if dialect == "beta" else None)
    if kind is None:
        raise ClientError(f"Missing required parameter: '{param}.type'.", "missing_required_parameter", f"{param}.type")
    if kind not in ("server_vad", "semantic_vad"):
        raise invalid_value(f"{param}.type", kind, ("server_vad", "semantic_vad"))
    allowed = (
        _BETA_TURN_KEYS if dialect == "beta" else (_SERVER_VAD_KEYS if kind == "server_vad" else _SEMANTIC_VAD_KEYS)
    )
    check_keys(param, value, allowed)
    for key in ("create_response", "interrupt_response"):
        if key in value:
            expect(f"{param}.{key}", value[key], bool, "a boolean", nullable=True)
    result: dict[str, Any] = {"type": kind}
    if kind == "server_vad":
        threshold = value.get("threshold", SERVER_VAD_DEFAULTS["threshold"])
        if threshold is None:
            threshold = SERVER_VAD_DEFAULTS["threshold"]
        expect(f"{param}.threshold", threshold, (int, float), "a number")
        if not 0.0 <= threshold <= 1.0:
            raise ClientError(
                f"Invalid '{param}.threshold': expected a number between 0.0 and 1.0.",
                "invalid_value",
                f"{param}.threshold",
            )
        result["threshold"] = float(threshold)
        for key in ("prefix_padding_ms", "silence_duration_ms"):
            number = value.get(key)
            if number is None:
                number = SERVER_VAD_DEFAULTS[key]
            expect(f"{param}.{key}", number, int, "an integer")
            if number < 0:
                raise ClientError(f"Invalid '{param}.{key}': must be non-negative.", "invalid_value", f"{param}.{key}")
            result[key] = number
        if dialect == "ga":
            idle = value.get("idle_timeout_ms")
            expect(f"{param}.idle_timeout_ms", idle, int, "an integer", nullable=True)
            result["idle_timeout_ms"] = idle
    else:
        eagerness = value.get("eagerness") or "auto"
        if eagerness not in SEMANTIC_SILENCE_MS:
            raise invalid_value(f"{param}.eagerness", eagerness, ("low", "medium", "high", "auto"))
        result["eagerness"] = eagerness
    for key in ("create_response", "interrupt_response"):
        flag = value.get(key)
        result[key] = SERVER_VAD_DEFAULTS[key] if flag is None else flag
    return result


def ga_format(param: str, value: Any) -> dict[str, Any]:
    expect(param, value, dict, "an object")
    kind = value.get("type")
    if kind not in GA_FORMAT_TYPES:
        raise invalid_value(f"{param}.type", kind, tuple(GA_FORMAT_TYPES))
    if kind == "audio/pcm":
        check_keys(param, value, {"type", "rate"})
        rate = value.get("rate", 24000)
        if rate != 24000:
            raise ClientError(
                f"Invalid value: {rate!r}. Supported values are: 24000.", "invalid_value", f"{param}.rate"
            )
        return {"type": kind, "rate": 24000}
    check_keys(param, value, {"type"})
    return {"type": kind}


def check_transcription(param: str, value: Any, allowed: set[str]) -> Any:
    if value is None:
        return None
    expect(param, value, dict, "an object")
    check_keys(param, value, allowed)
    return dict(value)


def check_noise(param: str, value: Any, allowed: set[str]) -> Any:
    if value is None:
        return None
    expect(param, value, dict, "an object")
    check_keys(param, value, allowed)
    if "type" in value and value["type"] not in ("near_field", "far_field"):
        raise invalid_value(f"{param}.type", value["type"], ("near_field", "far_field"))
    return dict(value)


def check_speed(param: str, value: Any) -> None:
    expect(param, value, (int, float), "a number")
    if not 0.25 <= value <= 1.5:
        raise ClientError(f"Invalid '{param}': expected a number between 0.25 and 1.5.", "invalid_value", param)


def check_voice(param: str, value: Any, dialect: Dialect) -> None:
    if dialect == "ga" and isinstance(value, dict):
        check_keys(param, value, {"id"})
        expect(f"{param}.id", value.get("id"), str, "a string")
        return
    expect(param, value, str, "a string")
