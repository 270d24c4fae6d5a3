"""The session object of the local engine, in each dialect's own wire shape (pure).

The engine keeps the session exactly as it goes on the wire (GA nested, beta flat), merges
`session.update` into it with the real API's rules, rejects what the real API rejects (unknown
parameters, bad values) with the same kind of error, and derives the few effective settings the
simulator acts on (`Settings`). It deliberately does not share code with the bridge's own
`telephony_bridge.realtime` codec: the engine is an independent peer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["ga", "beta"]

__all__ = [
    "BETA_MODELS",
    "BYTES_PER_MS",
    "SAMPLE_RATE",
    "ClientError",
    "Settings",
    "default_session",
    "merge_session_update",
    "settings_of",
    "validate_response_params",
]

# The beta SDK types `session.model` as a closed list; other names are left out of beta sessions.
BETA_MODELS = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    }
)
DEFAULT_MODEL = {"ga": "gpt-realtime", "beta": "gpt-4o-realtime-preview"}
DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. (Local engine: a simulator; what it says comes from its script.)"
)

# Formats by their beta names; GA names map onto these.
BETA_FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
GA_FORMAT_TYPES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
SAMPLE_RATE = {"pcm16": 24000, "g711_ulaw": 8000, "g711_alaw": 8000}
BYTES_PER_MS = {"pcm16": 48, "g711_ulaw": 8, "g711_alaw": 8}

SERVER_VAD_DEFAULTS = {
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}
# semantic_vad is simulated with the energy VAD; eagerness picks the hang-over.
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 350}

_GA_SESSION_KEYS = {
    "type",
    "model",
    "output_modalities",
    "instructions",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "prompt",
    "include",
    "parallel_tool_calls",
    "reasoning",
}
_GA_AUDIO_KEYS = {"input", "output"}
_GA_INPUT_KEYS = {"format", "transcription", "noise_reduction", "turn_detection"}
_GA_OUTPUT_KEYS = {"format", "voice", "speed"}
_BETA_SESSION_KEYS = {
    "model",
    "modalities",
    "instructions",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "turn_detection",
    "tools",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "speed",
    "tracing",
}
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
_GA_TRANSCRIPTION_KEYS = {"model", "language", "prompt", "languages", "keywords", "delay"}
_BETA_TRANSCRIPTION_KEYS = {"model", "language", "prompt"}

_GA_RESPONSE_KEYS = {
    "output_modalities",
    "instructions",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "conversation",
    "metadata",
    "input",
    "prompt",
    "parallel_tool_calls",
    "reasoning",
}
_BETA_RESPONSE_KEYS = {
    "modalities",
    "instructions",
    "voice",
    "output_audio_format",
    "tools",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "conversation",
    "metadata",
    "input",
}


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


def _unknown(param: str) -> ClientError:
    return ClientError(f"Unknown parameter: '{param}'.", "unknown_parameter", param)


def _invalid_value(param: str, value: Any, supported: tuple[str, ...] | None = None) -> ClientError:
    message = f"Invalid value: {value!r}."
    if supported:
        message += " Supported values are: " + ", ".join(repr(s) for s in supported) + "."
    return ClientError(message, "invalid_value", param)


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _expect(param: str, value: Any, kind: type | tuple[type, ...], what: str, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ClientError(
            f"Invalid type for '{param}': expected {what}, but got a boolean instead.", "invalid_type", param
        )
    if not isinstance(value, kind):
        raise ClientError(
            f"Invalid type for '{param}': expected {what}, but got {_type_name(value)} instead.", "invalid_type", param
        )


def _check_keys(param: str, value: dict, allowed: set[str]) -> None:
    for key in value:
        if key not in allowed:
            raise _unknown(f"{param}.{key}")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the simulator acts on, whatever the dialect."""

    input_format: str
    output_format: str
    audio_out: bool  # False: text-only responses
    voice: str
    speed: float
    transcription: bool
    turn_detection: dict[str, Any] | None  # normalised: type, threshold, prefix/silence ms, create/interrupt


def default_session(dialect: Dialect, model: str | None, session_id: str) -> dict[str, Any]:
    vad = {"type": "server_vad", **SERVER_VAD_DEFAULTS}
    if dialect == "ga":
        return {
            "type": "realtime",
            "model": model or DEFAULT_MODEL["ga"],
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {**vad, "idle_timeout_ms": None},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "include": None,
        }
    return {
        "id": session_id,
        "model": model if model in BETA_MODELS else DEFAULT_MODEL["beta"],
        "modalities": ["text", "audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": vad,
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
    }


def _check_modalities(param: str, value: Any) -> None:
    _expect(param, value, list, "an array")
    for entry in value:
        if entry not in ("text", "audio"):
            raise _invalid_value(param, entry, ("text", "audio"))


def _check_max_tokens(param: str, value: Any) -> None:
    if value == "inf" or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise ClientError(
            f"Invalid '{param}': expected an integer between 1 and 4096, or 'inf'.", "invalid_value", param
        )


def _check_tools(param: str, value: Any) -> None:
    _expect(param, value, list, "an array")
    for index, tool in enumerate(value):
        where = f"{param}[{index}]"
        _expect(where, tool, dict, "an object")
        if tool.get("type", "function") != "function":
            raise ClientError(
                f"The local engine supports only function tools, not {tool.get('type')!r}.",
                "unsupported_tool_type",
                f"{where}.type",
            )
        _check_keys(where, tool, _TOOL_KEYS)
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise ClientError(
                f"Missing required parameter: '{where}.name'.", "missing_required_parameter", f"{where}.name"
            )


def _check_tool_choice(param: str, value: Any, dialect: Dialect) -> None:
    if isinstance(value, str):
        if value not in ("auto", "none", "required") and dialect == "ga":
            raise _invalid_value(param, value, ("auto", "none", "required"))
        return
    if (
        dialect == "ga"
        and isinstance(value, dict)
        and value.get("type") == "function"
        and isinstance(value.get("name"), str)
    ):
        _check_keys(param, value, {"type", "name"})
        return
    raise ClientError(f"Invalid type for '{param}'.", "invalid_type", param)


def _normalise_turn_detection(param: str, value: Any, dialect: Dialect) -> dict[str, Any] | None:
    if value is None:
        return None
    _expect(param, value, dict, "an object")
    kind = value.get("type", "server_vad" if dialect == "beta" else None)
    if kind is None:
        raise ClientError(f"Missing required parameter: '{param}.type'.", "missing_required_parameter", f"{param}.type")
    if kind not in ("server_vad", "semantic_vad"):
        raise _invalid_value(f"{param}.type", kind, ("server_vad", "semantic_vad"))
    allowed = (
        _BETA_TURN_KEYS if dialect == "beta" else (_SERVER_VAD_KEYS if kind == "server_vad" else _SEMANTIC_VAD_KEYS)
    )
    _check_keys(param, value, allowed)
    for key in ("create_response", "interrupt_response"):
        if key in value:
            _expect(f"{param}.{key}", value[key], bool, "a boolean", nullable=True)
    result: dict[str, Any] = {"type": kind}
    if kind == "server_vad":
        threshold = value.get("threshold", SERVER_VAD_DEFAULTS["threshold"])
        if threshold is None:
            threshold = SERVER_VAD_DEFAULTS["threshold"]
        _expect(f"{param}.threshold", threshold, (int, float), "a number")
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
            _expect(f"{param}.{key}", number, int, "an integer")
            if number < 0:
                raise ClientError(f"Invalid '{param}.{key}': must be non-negative.", "invalid_value", f"{param}.{key}")
            result[key] = number
        if dialect == "ga":
            idle = value.get("idle_timeout_ms")
            _expect(f"{param}.idle_timeout_ms", idle, int, "an integer", nullable=True)
            result["idle_timeout_ms"] = idle
    else:
        eagerness = value.get("eagerness") or "auto"
        if eagerness not in SEMANTIC_SILENCE_MS:
            raise _invalid_value(f"{param}.eagerness", eagerness, ("low", "medium", "high", "auto"))
        result["eagerness"] = eagerness
    for key in ("create_response", "interrupt_response"):
        flag = value.get(key)
        result[key] = SERVER_VAD_DEFAULTS[key] if flag is None else flag
    return result


def _ga_format(param: str, value: Any) -> dict[str, Any]:
    _expect(param, value, dict, "an object")
    kind = value.get("type")
    if kind not in GA_FORMAT_TYPES:
        raise _invalid_value(f"{param}.type", kind, tuple(GA_FORMAT_TYPES))
    if kind == "audio/pcm":
        _check_keys(param, value, {"type", "rate"})
        rate = value.get("rate", 24000)
        if rate != 24000:
            raise ClientError(
                f"Invalid value: {rate!r}. Supported values are: 24000.", "invalid_value", f"{param}.rate"
            )
        return {"type": kind, "rate": 24000}
    _check_keys(param, value, {"type"})
    return {"type": kind}


def _check_transcription(param: str, value: Any, allowed: set[str]) -> Any:
    if value is None:
        return None
    _expect(param, value, dict, "an object")
    _check_keys(param, value, allowed)
    return dict(value)


def _check_noise(param: str, value: Any, allowed: set[str]) -> Any:
    if value is None:
        return None
    _expect(param, value, dict, "an object")
    _check_keys(param, value, allowed)
    if "type" in value and value["type"] not in ("near_field", "far_field"):
        raise _invalid_value(f"{param}.type", value["type"], ("near_field", "far_field"))
    return dict(value)


def _check_speed(param: str, value: Any) -> None:
    _expect(param, value, (int, float), "a number")
    if not 0.25 <= value <= 1.5:
        raise ClientError(f"Invalid '{param}': expected a number between 0.25 and 1.5.", "invalid_value", param)


def _check_voice(param: str, value: Any, dialect: Dialect) -> None:
    if dialect == "ga" and isinstance(value, dict):
        _check_keys(param, value, {"id"})
        _expect(f"{param}.id", value.get("id"), str, "a string")
        return
    _expect(param, value, str, "a string")


def merge_session_update(current: dict[str, Any], update: Any, dialect: Dialect) -> dict[str, Any]:
    """Return the session after `update`, or raise ClientError (leaving `current` untouched)."""
    _expect("session", update, dict, "an object")
    merged = copy.deepcopy(current)
    if dialect == "ga":
        _check_keys("session", update, _GA_SESSION_KEYS)
        if "type" not in update:
            raise ClientError(
                "Missing required parameter: 'session.type'.", "missing_required_parameter", "session.type"
            )
        if update["type"] != "realtime":
            raise ClientError(
                "The local engine supports only realtime sessions (session.type 'realtime').",
                "invalid_value",
                "session.type",
            )
        for key, value in update.items():
            param = f"session.{key}"
            if key == "audio":
                _expect(param, value, dict, "an object")
                _check_keys(param, value, _GA_AUDIO_KEYS)
                _merge_ga_audio(merged["audio"], value)
                continue
            if key == "instructions":
                _expect(param, value, str, "a string")
            elif key == "output_modalities":
                _check_modalities(param, value)
                if len(value) != 1:
                    raise ClientError(
                        "Invalid 'session.output_modalities': expected ['audio'] or ['text'].", "invalid_value", param
                    )
            elif key == "model":
                _expect(param, value, str, "a string")
            elif key == "tools":
                _check_tools(param, value)
            elif key == "tool_choice":
                _check_tool_choice(param, value, dialect)
            elif key == "max_output_tokens":
                _check_max_tokens(param, value)
            elif key == "truncation" and isinstance(value, str) and value not in ("auto", "disabled"):
                raise _invalid_value(param, value, ("auto", "disabled"))
            merged[key] = copy.deepcopy(value)
        return merged
    _check_keys("session", update, _BETA_SESSION_KEYS)
    for key, value in update.items():
        param = f"session.{key}"
        if key in ("input_audio_format", "output_audio_format"):
            if value not in BETA_FORMATS:
                raise _invalid_value(param, value, BETA_FORMATS)
        elif key == "instructions":
            _expect(param, value, str, "a string")
        elif key == "modalities":
            _check_modalities(param, value)
        elif key == "voice":
            _check_voice(param, value, dialect)
        elif key == "speed":
            _check_speed(param, value)
        elif key == "temperature":
            _expect(param, value, (int, float), "a number")
            if not 0.6 <= value <= 1.2:
                raise ClientError(
                    "Invalid 'session.temperature': expected a number between 0.6 and 1.2.", "invalid_value", param
                )
        elif key == "turn_detection":
            value = _normalise_turn_detection(param, value, dialect)
        elif key == "input_audio_transcription":
            value = _check_transcription(param, value, _BETA_TRANSCRIPTION_KEYS)
        elif key == "input_audio_noise_reduction":
            value = _check_noise(param, value, {"type"})
        elif key == "tools":
            _check_tools(param, value)
        elif key == "tool_choice":
            _check_tool_choice(param, value, dialect)
        elif key == "max_response_output_tokens":
            _check_max_tokens(param, value)
        elif key == "model" and value not in BETA_MODELS:
            continue  # the beta session object only carries known model names
        merged[key] = copy.deepcopy(value)
    return merged


def _merge_ga_audio(audio: dict[str, Any], update: dict[str, Any]) -> None:
    if "input" in update:
        section = update["input"]
        _expect("session.audio.input", section, dict, "an object")
        _check_keys("session.audio.input", section, _GA_INPUT_KEYS)
        target = audio["input"]
        for key, value in section.items():
            param = f"session.audio.input.{key}"
            if key == "format":
                target[key] = _ga_format(param, value)
            elif key == "turn_detection":
                target[key] = _normalise_turn_detection(param, value, "ga")
            elif key == "transcription":
                target[key] = _check_transcription(param, value, _GA_TRANSCRIPTION_KEYS)
            elif key == "noise_reduction":
                target[key] = _check_noise(param, value, {"type", "strength"})
    if "output" in update:
        section = update["output"]
        _expect("session.audio.output", section, dict, "an object")
        _check_keys("session.audio.output", section, _GA_OUTPUT_KEYS)
        target = audio["output"]
        for key, value in section.items():
            param = f"session.audio.output.{key}"
            if key == "format":
                target[key] = _ga_format(param, value)
            elif key == "voice":
                _check_voice(param, value, "ga")
                target[key] = copy.deepcopy(value)
            elif key == "speed":
                _check_speed(param, value)
                target[key] = value


def _vad_settings(turn_detection: dict[str, Any] | None) -> dict[str, Any] | None:
    if turn_detection is None:
        return None
    settings = {**SERVER_VAD_DEFAULTS, **{k: v for k, v in turn_detection.items() if v is not None}}
    if turn_detection["type"] == "semantic_vad":
        settings["silence_duration_ms"] = SEMANTIC_SILENCE_MS[turn_detection.get("eagerness") or "auto"]
    return settings


def _voice_name(voice: Any) -> str:
    if isinstance(voice, dict):
        return str(voice.get("id", ""))
    return str(voice or "")


def settings_of(session: dict[str, Any], dialect: Dialect) -> Settings:
    if dialect == "ga":
        audio_in = session["audio"]["input"]
        audio_out = session["audio"]["output"]
        return Settings(
            input_format=GA_FORMAT_TYPES[audio_in["format"]["type"]],
            output_format=GA_FORMAT_TYPES[audio_out["format"]["type"]],
            audio_out="audio" in session.get("output_modalities", ["audio"]),
            voice=_voice_name(audio_out.get("voice")),
            speed=float(audio_out.get("speed") or 1.0),
            transcription=audio_in.get("transcription") is not None,
            turn_detection=_vad_settings(audio_in.get("turn_detection")),
        )
    return Settings(
        input_format=session["input_audio_format"],
        output_format=session["output_audio_format"],
        audio_out="audio" in session.get("modalities", ["text", "audio"]),
        voice=_voice_name(session.get("voice")),
        speed=float(session.get("speed") or 1.0),
        transcription=session.get("input_audio_transcription") is not None,
        turn_detection=_vad_settings(session.get("turn_detection")),
    )


def validate_response_params(params: Any, dialect: Dialect) -> dict[str, Any]:
    """Check `response.create`'s `response` object; return it (possibly empty)."""
    if params is None:
        return {}
    _expect("response", params, dict, "an object")
    _check_keys("response", params, _GA_RESPONSE_KEYS if dialect == "ga" else _BETA_RESPONSE_KEYS)
    for key, value in params.items():
        param = f"response.{key}"
        if key in ("output_modalities", "modalities"):
            _check_modalities(param, value)
        elif key == "instructions":
            _expect(param, value, str, "a string")
        elif key == "conversation":
            if value not in ("auto", "none"):
                raise _invalid_value(param, value, ("auto", "none"))
        elif key == "metadata":
            _expect(param, value, dict, "an object", nullable=True)
        elif key == "output_audio_format":
            if value not in BETA_FORMATS:
                raise _invalid_value(param, value, BETA_FORMATS)
        elif key == "voice":
            _check_voice(param, value, dialect)
        elif key == "audio":
            _expect(param, value, dict, "an object")
            _check_keys(param, value, {"output"})
            output = value.get("output") or {}
            _expect(f"{param}.output", output, dict, "an object")
            _check_keys(f"{param}.output", output, {"format", "voice"})
            if "format" in output:
                _ga_format(f"{param}.output.format", output["format"])
            if "voice" in output:
                _check_voice(f"{param}.output.voice", output["voice"], dialect)
        elif key == "tools":
            _check_tools(param, value)
        elif key in ("max_output_tokens", "max_response_output_tokens"):
            _check_max_tokens(param, value)
    return params
