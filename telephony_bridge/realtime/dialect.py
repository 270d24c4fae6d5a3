"""Realtime API client events and the GA/beta translation of what goes in them. Pure: dicts in, dicts out.

Scenario authors write Voximplant's beta-shaped objects (flat session: `voice`, `turn_detection`, ...)
or GA-shaped ones (nested `audio.input` / `audio.output`); each client speaks one wire dialect. Every
function here accepts either shape and returns the shape of the requested dialect, so the runtime
never has to know which one the scenario used.

Rules (each one is a test in tests/conformance/test_client_events.py):

- The bridge owns the audio formats. Input and output formats are forced to the bridge's codec on
  every `session.update` (a session update that silently reset the format to PCM16 made phones hear
  noise in other bridges), whatever format the user gave.
- Modalities. GA `output_modalities` cannot hold both "audio" and "text" (SDK docstring: "It is not
  possible to request both"), and GA `["audio"]` already streams the transcript. Beta rejects
  `["audio"]` alone; its audio mode is `["audio", "text"]`. So anything with "audio" becomes GA
  `["audio"]` / beta `["audio", "text"]`, text-only stays `["text"]`, anything else passes unchanged.
- GA has no `temperature`: dropped there, kept for beta.
- `tool_choice`: beta is a string ("auto" | "none" | "required" | a function name); GA forces a
  function with `{"type": "function", "name": ...}`. Translated both ways; other shapes pass unchanged.
- Beta `turn_detection` without `type` means server VAD; GA requires the `type`, so it is filled in.
- If the user gives the same setting in both shapes (`voice` and `audio.output.voice`) with different
  values, that is a ValueError: silently picking one would hide a scenario bug.
- Keys this module does not know pass through unchanged (forward compatibility with new API fields);
  GA-only keys sent to beta (e.g. `reasoning`) pass through too and the server decides. Unknown keys
  nested under a GA `audio` object are kept under `audio` in the beta output for the same reason.

Outputs may share unmodified nested values with the inputs; inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from telephony_bridge.realtime.events import Dialect

__all__ = [
    "CODECS",
    "GA_FORMAT",
    "Codec",
    "conversation_item_create",
    "conversation_item_delete",
    "conversation_item_retrieve",
    "conversation_item_truncate",
    "encode_input_audio_append",
    "input_audio_append",
    "input_audio_clear",
    "input_audio_commit",
    "item_for_wire",
    "output_audio_buffer_clear",
    "response_cancel",
    "response_create",
    "response_for_wire",
    "session_for_wire",
    "session_update",
]

Codec = Literal["pcm16", "g711_ulaw"]
CODECS: Final[tuple[Codec, ...]] = ("pcm16", "g711_ulaw")

_DIALECTS: Final = ("ga", "beta")

# PCM16 is 24 kHz only in GA ("Only a 24kHz sample rate is supported"), and beta's "pcm16" means the same.
_GA_FORMAT: Final[Mapping[str, Mapping[str, Any]]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
}
_BETA_FORMAT: Final[Mapping[str, str]] = {"pcm16": "pcm16", "g711_ulaw": "g711_ulaw"}
GA_FORMAT: Final = _GA_FORMAT  # the GA audio format object of each codec (GA transcription sessions use it too)

_TOOL_CHOICE_MODES: Final = frozenset({"auto", "none", "required"})

# Assistant content part types; user/system parts ("input_text", "input_audio") are spelled the same.
_ASSISTANT_PART_TO_GA: Final = {"text": "output_text", "audio": "output_audio"}
_ASSISTANT_PART_TO_BETA: Final = {"output_text": "text", "output_audio": "audio"}


class _Missing:
    """Absent key, as opposed to an explicit None (`turn_detection: null` turns VAD off)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


# --------------------------------------------------------------------------- argument checks


def _check(dialect: str, codec: str | None = None) -> None:
    # Cheap, and not on the audio hot path: a typo here would otherwise produce a plausible but wrong dict.
    if dialect not in _DIALECTS:
        raise ValueError(f"unknown Realtime API dialect {dialect!r}; expected 'ga' or 'beta'")
    if codec is not None and codec not in _GA_FORMAT:
        raise ValueError(f"unknown codec {codec!r}; expected one of {', '.join(CODECS)}")


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    return dict(value)


def _nested(container: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    """Pop `key` as a dict copy; absent or None gives {}."""
    value = container.pop(key, None)
    return {} if value is None else _as_dict(value, what)


# --------------------------------------------------------------------------- value translations


def _modalities_for(dialect: Dialect) -> Callable[[Any], Any]:
    def convert(modalities: Any) -> Any:
        if not isinstance(modalities, (list, tuple)):
            return modalities
        if "audio" in modalities:
            return ["audio"] if dialect == "ga" else ["audio", "text"]
        if "text" in modalities:
            return ["text"]
        return list(modalities)

    return convert


def _tool_choice_for(dialect: Dialect) -> Callable[[Any], Any]:
    def convert(choice: Any) -> Any:
        if dialect == "ga":
            if isinstance(choice, str) and choice not in _TOOL_CHOICE_MODES:
                return {"type": "function", "name": choice}
            return choice
        if isinstance(choice, Mapping) and choice.get("type") == "function" and "name" in choice:
            return choice["name"]
        return choice

    return convert


def _turn_detection_for(dialect: Dialect) -> Callable[[Any], Any]:
    def convert(turn_detection: Any) -> Any:
        if dialect == "ga" and isinstance(turn_detection, Mapping) and "type" not in turn_detection:
            return {"type": "server_vad", **turn_detection}
        return turn_detection

    return convert


def _same(value: Any) -> Any:
    return value


def _pick(what: str, candidates: list[tuple[str, Any]], convert: Callable[[Any], Any] = _same) -> Any:
    """One setting given under its beta and/or GA key: the converted value, or _MISSING.

    Both present and different after conversion is a ValueError (which one would the author mean?).
    Values are not echoed: instructions may be long and tool schemas large; the key names suffice.
    """
    present = [(key, convert(value)) for key, value in candidates if value is not _MISSING]
    if not present:
        return _MISSING
    first_key, first = present[0]
    for key, value in present[1:]:
        if value != first:
            raise ValueError(f"{what} sets {first_key!r} and {key!r} to different values; give one of them")
    return first


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not _MISSING:
        target[key] = value


# --------------------------------------------------------------------------- session


def session_for_wire(session: Mapping[str, Any], dialect: Dialect, codec: Codec) -> dict[str, Any]:
    """The `session` object of a `session.update` for `dialect`, from a beta- or GA-shaped session.

    Input and output audio formats are always present and always the bridge's `codec`.
    """
    _check(dialect, codec)
    rest = _as_dict(session, "session")

    session_type = rest.pop("type", "realtime")
    if session_type != "realtime":
        # Transcription-only sessions have a different shape and no output audio: not a phone agent.
        raise ValueError(f"session type {session_type!r} is not supported; only 'realtime' sessions")

    # Formats are the bridge's, whatever the user wrote.
    rest.pop("input_audio_format", None)
    rest.pop("output_audio_format", None)

    audio = _nested(rest, "audio", "session.audio")
    audio_input = _nested(audio, "input", "session.audio.input")
    audio_output = _nested(audio, "output", "session.audio.output")
    audio_input.pop("format", None)
    audio_output.pop("format", None)

    modalities = _pick(
        "session",
        [
            ("modalities", rest.pop("modalities", _MISSING)),
            ("output_modalities", rest.pop("output_modalities", _MISSING)),
        ],
        _modalities_for(dialect),
    )
    max_tokens = _pick(
        "session",
        [
            ("max_response_output_tokens", rest.pop("max_response_output_tokens", _MISSING)),
            ("max_output_tokens", rest.pop("max_output_tokens", _MISSING)),
        ],
    )
    voice = _pick(
        "session", [("voice", rest.pop("voice", _MISSING)), ("audio.output.voice", audio_output.pop("voice", _MISSING))]
    )
    speed = _pick(
        "session", [("speed", rest.pop("speed", _MISSING)), ("audio.output.speed", audio_output.pop("speed", _MISSING))]
    )
    transcription = _pick(
        "session",
        [
            ("input_audio_transcription", rest.pop("input_audio_transcription", _MISSING)),
            ("audio.input.transcription", audio_input.pop("transcription", _MISSING)),
        ],
    )
    turn_detection = _pick(
        "session",
        [
            ("turn_detection", rest.pop("turn_detection", _MISSING)),
            ("audio.input.turn_detection", audio_input.pop("turn_detection", _MISSING)),
        ],
        _turn_detection_for(dialect),
    )
    noise_reduction = _pick(
        "session",
        [
            ("input_audio_noise_reduction", rest.pop("input_audio_noise_reduction", _MISSING)),
            ("audio.input.noise_reduction", audio_input.pop("noise_reduction", _MISSING)),
        ],
    )
    temperature = rest.pop("temperature", _MISSING)
    if "tool_choice" in rest:
        rest["tool_choice"] = _tool_choice_for(dialect)(rest["tool_choice"])

    if dialect == "ga":
        wire_input: dict[str, Any] = {"format": dict(_GA_FORMAT[codec])}
        _put(wire_input, "transcription", transcription)
        _put(wire_input, "turn_detection", turn_detection)
        _put(wire_input, "noise_reduction", noise_reduction)
        wire_output: dict[str, Any] = {"format": dict(_GA_FORMAT[codec])}
        _put(wire_output, "voice", voice)
        _put(wire_output, "speed", speed)
        out: dict[str, Any] = {"type": "realtime", **rest}
        _put(out, "output_modalities", modalities)
        _put(out, "max_output_tokens", max_tokens)
        # temperature: GA has none; dropping it is the documented translation, not an error.
        out["audio"] = {**audio, "input": {**audio_input, **wire_input}, "output": {**audio_output, **wire_output}}
        return out

    out = dict(rest)
    _put(out, "modalities", modalities)
    _put(out, "voice", voice)
    _put(out, "speed", speed)
    _put(out, "temperature", temperature)
    _put(out, "max_response_output_tokens", max_tokens)
    _put(out, "input_audio_transcription", transcription)
    _put(out, "turn_detection", turn_detection)
    _put(out, "input_audio_noise_reduction", noise_reduction)
    out["input_audio_format"] = _BETA_FORMAT[codec]
    out["output_audio_format"] = _BETA_FORMAT[codec]
    leftovers = _leftover_audio(audio, audio_input, audio_output)
    if leftovers:
        out["audio"] = leftovers
    return out


def _leftover_audio(audio: dict[str, Any], audio_input: dict[str, Any], audio_output: dict[str, Any]) -> dict[str, Any]:
    """GA `audio` keys beta has no flat spelling for: kept (not dropped) so the server can reject them by name."""
    leftovers = dict(audio)
    if audio_input:
        leftovers["input"] = audio_input
    if audio_output:
        leftovers["output"] = audio_output
    return leftovers


# --------------------------------------------------------------------------- response and items


def response_for_wire(response: Mapping[str, Any], dialect: Dialect, codec: Codec) -> dict[str, Any]:
    """The `response` object of a `response.create` for `dialect`, from a beta- or GA-shaped one.

    An output format is only sent when the user named one (then it is forced to `codec`): the session
    already carries the bridge's format, and `response.create {}` should stay `{}`.
    """
    _check(dialect, codec)
    rest = _as_dict(response, "response")

    audio = _nested(rest, "audio", "response.audio")
    audio_output = _nested(audio, "output", "response.audio.output")
    format_given = "output_audio_format" in rest or "format" in audio_output
    rest.pop("output_audio_format", None)
    audio_output.pop("format", None)

    modalities = _pick(
        "response",
        [
            ("modalities", rest.pop("modalities", _MISSING)),
            ("output_modalities", rest.pop("output_modalities", _MISSING)),
        ],
        _modalities_for(dialect),
    )
    max_tokens = _pick(
        "response",
        [
            ("max_response_output_tokens", rest.pop("max_response_output_tokens", _MISSING)),
            ("max_output_tokens", rest.pop("max_output_tokens", _MISSING)),
        ],
    )
    voice = _pick(
        "response",
        [("voice", rest.pop("voice", _MISSING)), ("audio.output.voice", audio_output.pop("voice", _MISSING))],
    )
    temperature = rest.pop("temperature", _MISSING)
    if "tool_choice" in rest:
        rest["tool_choice"] = _tool_choice_for(dialect)(rest["tool_choice"])
    if isinstance(rest.get("input"), (list, tuple)):
        rest["input"] = [item_for_wire(item, dialect) if isinstance(item, Mapping) else item for item in rest["input"]]

    if dialect == "ga":
        out: dict[str, Any] = dict(rest)
        _put(out, "output_modalities", modalities)
        _put(out, "max_output_tokens", max_tokens)
        wire_output = dict(audio_output)
        if format_given:
            wire_output["format"] = dict(_GA_FORMAT[codec])
        _put(wire_output, "voice", voice)
        if wire_output or audio:
            out["audio"] = {**audio, "output": wire_output} if wire_output else dict(audio)
        return out

    out = dict(rest)
    _put(out, "modalities", modalities)
    _put(out, "voice", voice)
    _put(out, "temperature", temperature)
    _put(out, "max_response_output_tokens", max_tokens)
    if format_given:
        out["output_audio_format"] = _BETA_FORMAT[codec]
    leftovers = _leftover_audio(audio, {}, audio_output)
    if leftovers:
        out["audio"] = leftovers
    return out


def item_for_wire(item: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """A conversation item for `dialect`: assistant content parts renamed, a role-only item typed.

    Only assistant parts differ ("text"/"audio" beta, "output_text"/"output_audio" GA); the role
    decides, since a user's "input_text" is the same in both dialects.
    """
    _check(dialect)
    out = _as_dict(item, "item")
    if dialect == "ga" and "type" not in out and "role" in out:
        # Beta lets `type` default to "message"; GA's item union is discriminated on it.
        out["type"] = "message"
    content = out.get("content")
    if out.get("role") == "assistant" and isinstance(content, (list, tuple)):
        renames = _ASSISTANT_PART_TO_GA if dialect == "ga" else _ASSISTANT_PART_TO_BETA
        out["content"] = [_renamed_part(part, renames) for part in content]
    return out


def _renamed_part(part: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(part, Mapping) and part.get("type") in renames:
        return {**part, "type": renames[part["type"]]}
    return part


# --------------------------------------------------------------------------- client event builders


def _with_event_id(event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    if event_id is not None:
        event["event_id"] = event_id
    return event


def session_update(
    session: Mapping[str, Any], dialect: Dialect, codec: Codec, event_id: str | None = None
) -> dict[str, Any]:
    return _with_event_id({"type": "session.update", "session": session_for_wire(session, dialect, codec)}, event_id)


def input_audio_append(audio_b64: str) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": audio_b64}


_APPEND_PREFIX: Final = b'{"type":"input_audio_buffer.append","audio":"'
_APPEND_SUFFIX: Final = b'"}'


def encode_input_audio_append(audio_b64: str | bytes) -> bytes:
    """`input_audio_buffer.append` as ready-to-send JSON (UTF-8) bytes: the per-frame hot path.

    Base64's alphabet (A-Z a-z 0-9 + / =) needs no JSON escaping, so concatenation is exact JSON.
    Measured (CPython 3.11, 20 ms of 24 kHz PCM16 = 1280 base64 chars): bytes concatenation 120 ns,
    str input 173 ns, orjson.dumps of the dict 195 ns, json.dumps 3.5 us. Pass the bytes straight from
    base64.b64encode to skip a decode/encode. Precondition, not checked (checking would cost more than
    the encoding): the argument is base64 the bridge produced, never untrusted text.
    Send it as a *text* frame (websockets: `send(data, text=True)`); the API rejects binary frames.
    """
    if isinstance(audio_b64, str):
        audio_b64 = audio_b64.encode("ascii")
    return _APPEND_PREFIX + audio_b64 + _APPEND_SUFFIX


def input_audio_commit(event_id: str | None = None) -> dict[str, Any]:
    return _with_event_id({"type": "input_audio_buffer.commit"}, event_id)


def input_audio_clear(event_id: str | None = None) -> dict[str, Any]:
    return _with_event_id({"type": "input_audio_buffer.clear"}, event_id)


def output_audio_buffer_clear(event_id: str | None = None) -> dict[str, Any]:
    return _with_event_id({"type": "output_audio_buffer.clear"}, event_id)


def conversation_item_create(
    previous_item_id: str | None, item: Mapping[str, Any], dialect: Dialect, event_id: str | None = None
) -> dict[str, Any]:
    """`previous_item_id=None` appends (the key is omitted, as Voximplant's `null` means)."""
    event: dict[str, Any] = {"type": "conversation.item.create"}
    if previous_item_id is not None:
        event["previous_item_id"] = previous_item_id
    event["item"] = item_for_wire(item, dialect)
    return _with_event_id(event, event_id)


def conversation_item_delete(item_id: str, event_id: str | None = None) -> dict[str, Any]:
    return _with_event_id({"type": "conversation.item.delete", "item_id": item_id}, event_id)


def conversation_item_truncate(
    item_id: str, content_index: int, audio_end_ms: float, event_id: str | None = None
) -> dict[str, Any]:
    """`audio_end_ms` may be a float (the playback ledger's ms): it is floored to the integer the API
    requires. Flooring, not rounding, so it never exceeds the audio the server sent, which the API rejects.
    """
    if content_index < 0 or audio_end_ms < 0:
        raise ValueError(f"content_index and audio_end_ms must be >= 0, got {content_index}, {audio_end_ms}")
    return _with_event_id(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": int(content_index),
            "audio_end_ms": int(audio_end_ms),
        },
        event_id,
    )


def conversation_item_retrieve(item_id: str, event_id: str | None = None) -> dict[str, Any]:
    return _with_event_id({"type": "conversation.item.retrieve", "item_id": item_id}, event_id)


def response_create(
    response: Mapping[str, Any] | None, dialect: Dialect, codec: Codec, event_id: str | None = None
) -> dict[str, Any]:
    """`response=None` sends no `response` object (server defaults); `{}` sends an empty one."""
    event: dict[str, Any] = {"type": "response.create"}
    if response is not None:
        event["response"] = response_for_wire(response, dialect, codec)
    return _with_event_id(event, event_id)


def response_cancel(event_id: str | None = None, *, response_id: str | None = None) -> dict[str, Any]:
    """Without `response_id` the server cancels the in-progress response, if any."""
    event: dict[str, Any] = {"type": "response.cancel"}
    if response_id is not None:
        event["response_id"] = response_id
    return _with_event_id(event, event_id)
