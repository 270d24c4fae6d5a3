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
from typing import Any

from .config_checks import (
    GA_FORMAT_TYPES,
    SEMANTIC_SILENCE_MS,
    SERVER_VAD_DEFAULTS,
    ClientError,
    Dialect,
    check_keys,
    check_max_tokens,
    check_modalities,
    check_noise,
    check_speed,
    check_tool_choice,
    check_tools,
    check_transcription,
    check_voice,
    expect,
    ga_format,
    invalid_value,
    normalise_turn_detection,
)

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
SAMPLE_RATE = {"pcm16": 24000, "g711_ulaw": 8000, "g711_alaw": 8000}
BYTES_PER_MS = {"pcm16": 48, "g711_ulaw": 8, "g711_alaw": 8}


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


def merge_session_update(current: dict[str, Any], update: Any, dialect: Dialect) -> dict[str, Any]:
    """Return the session after `update`, or raise ClientError (leaving `current` untouched)."""
    expect("session", update, dict, "an object")
    merged = copy.deepcopy(current)
    if dialect == "ga":
        check_keys("session", update, _GA_SESSION_KEYS)
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
                expect(param, value, dict, "an object")
                check_keys(param, value, _GA_AUDIO_KEYS)
                _merge_ga_audio(merged["audio"], value)
                continue
            if key == "instructions":
                expect(param, value, str, "a string")
            elif key == "output_modalities":
                check_modalities(param, value)
                if len(value) != 1:
                    raise ClientError(
                        "Invalid 'session.output_modalities': expected ['audio'] or ['text'].", "invalid_value", param
                    )
            elif key == "model":
                expect(param, value, str, "a string")
            elif key == "tools":
                check_tools(param, value)
            elif key == "tool_choice":
                check_tool_choice(param, value, dialect)
            elif key == "max_output_tokens":
                check_max_tokens(param, value)
            elif key == "truncation" and isinstance(value, str) and value not in ("auto", "disabled"):
                raise invalid_value(param, value, ("auto", "disabled"))
            merged[key] = copy.deepcopy(value)
        return merged
    check_keys("session", update, _BETA_SESSION_KEYS)
    for key, value in update.items():
        param = f"session.{key}"
        if key in ("input_audio_format", "output_audio_format"):
            if value not in BETA_FORMATS:
                raise invalid_value(param, value, BETA_FORMATS)
        elif key == "instructions":
            expect(param, value, str, "a string")
        elif key == "modalities":
            check_modalities(param, value)
        elif key == "voice":
            check_voice(param, value, dialect)
        elif key == "speed":
            check_speed(param, value)
        elif key == "temperature":
            expect(param, value, (int, float), "a number")
            if not 0.6 <= value <= 1.2:
                raise ClientError(
                    "Invalid 'session.temperature': expected a number between 0.6 and 1.2.", "invalid_value", param
                )
        elif key == "turn_detection":
            value = normalise_turn_detection(param, value, dialect)
        elif key == "input_audio_transcription":
            value = check_transcription(param, value, _BETA_TRANSCRIPTION_KEYS)
        elif key == "input_audio_noise_reduction":
            value = check_noise(param, value, {"type"})
        elif key == "tools":
            check_tools(param, value)
        elif key == "tool_choice":
            check_tool_choice(param, value, dialect)
        elif key == "max_response_output_tokens":
            check_max_tokens(param, value)
        elif key == "model" and value not in BETA_MODELS:
            continue  # the beta session object only carries known model names
        merged[key] = copy.deepcopy(value)
    return merged


def _merge_ga_audio(audio: dict[str, Any], update: dict[str, Any]) -> None:
    if "input" in update:
        section = update["input"]
        expect("session.audio.input", section, dict, "an object")
        check_keys("session.audio.input", section, _GA_INPUT_KEYS)
        target = audio["input"]
        for key, value in section.items():
            param = f"session.audio.input.{key}"
            if key == "format":
                target[key] = ga_format(param, value)
            elif key == "turn_detection":
                target[key] = normalise_turn_detection(param, value, "ga")
            elif key == "transcription":
                target[key] = check_transcription(param, value, _GA_TRANSCRIPTION_KEYS)
            elif key == "noise_reduction":
                target[key] = check_noise(param, value, {"type", "strength"})
    if "output" in update:
        section = update["output"]
        expect("session.audio.output", section, dict, "an object")
        check_keys("session.audio.output", section, _GA_OUTPUT_KEYS)
        target = audio["output"]
        for key, value in section.items():
            param = f"session.audio.output.{key}"
            if key == "format":
                target[key] = ga_format(param, value)
            elif key == "voice":
                check_voice(param, value, "ga")
                target[key] = copy.deepcopy(value)
            elif key == "speed":
                check_speed(param, value)
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
    expect("response", params, dict, "an object")
    check_keys("response", params, _GA_RESPONSE_KEYS if dialect == "ga" else _BETA_RESPONSE_KEYS)
    for key, value in params.items():
        param = f"response.{key}"
        if key in ("output_modalities", "modalities"):
            check_modalities(param, value)
        elif key == "instructions":
            expect(param, value, str, "a string")
        elif key == "conversation":
            if value not in ("auto", "none"):
                raise invalid_value(param, value, ("auto", "none"))
        elif key == "metadata":
            expect(param, value, dict, "an object", nullable=True)
        elif key == "output_audio_format":
            if value not in BETA_FORMATS:
                raise invalid_value(param, value, BETA_FORMATS)
        elif key == "voice":
            check_voice(param, value, dialect)
        elif key == "audio":
            expect(param, value, dict, "an object")
            check_keys(param, value, {"output"})
            output = value.get("output") or {}
            expect(f"{param}.output", output, dict, "an object")
            check_keys(f"{param}.output", output, {"format", "voice"})
            if "format" in output:
                ga_format(f"{param}.output.format", output["format"])
            if "voice" in output:
                check_voice(f"{param}.output.voice", output["voice"], dialect)
        elif key == "tools":
            check_tools(param, value)
        elif key in ("max_output_tokens", "max_response_output_tokens"):
            check_max_tokens(param, value)
    return params
