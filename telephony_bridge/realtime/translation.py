"""OpenAI Realtime translation sessions on the wire. Pure: dicts in, dicts out.

A translation session is not a realtime session with other settings: it is a protocol of its own
(the `openai` SDK's `realtime_translation_*` types are the reference, and the oracle of the tests).

- Endpoint: `/v1/realtime/translations?model=gpt-realtime-translate` (never `intent=`).
- Client events, three: `session.update` (only `audio.output.language`, `audio.input.transcription`
  and `audio.input.noise_reduction`; `type` and `model` are fixed at creation),
  `session.input_audio_buffer.append` (base64 PCM16 24 kHz mono, nothing else: there is no format
  to choose), `session.close` (flush the input, emit the rest of the output, then `session.closed`).
- Server events: `session.created`, `session.updated`, `session.input_transcript.delta`,
  `session.output_transcript.delta`, `session.output_audio.delta` (PCM16; no response or item id:
  the translation is one continuous stream), `session.closed`, `error`.
- No conversation, no response: nothing to create, cancel or truncate.
- Keep appending audio, silence included, while the session is active: the model's clock is the
  audio, so a gap would be heard as contiguous speech.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "AUDIO_DELTA_TYPE",
    "DEFAULT_MODEL",
    "SESSION_FIELDS",
    "encode_audio_append",
    "merge_session",
    "session_close",
    "session_for_wire",
    "session_update",
    "translation_url",
]

DEFAULT_MODEL: Final = "gpt-realtime-translate"  # Voximplant's default for TRANSLATION (and OpenAI's model)
AUDIO_DELTA_TYPE: Final = "session.output_audio.delta"
APPEND_TYPE: Final = "session.input_audio_buffer.append"
PATH_SUFFIX: Final = "/translations"

# What a translation session.update may carry, as nested keys; a leaf's value is the set of keys
# its object may hold (None: any value).
SESSION_FIELDS: Final[Mapping[str, Any]] = {
    "audio": {
        "input": {"transcription": {"model"}, "noise_reduction": {"type", "strength"}},
        "output": {"language": None},
    },
}
# The bridge's, never the scenario's: dropped without a word, as on every other session type.
_BRIDGE_OWNED: Final = ("input_audio_format", "output_audio_format")
# Beta's flat spellings of the two input settings, nested on the way out.
_FLAT: Final = {"input_audio_transcription": "transcription", "input_audio_noise_reduction": "noise_reduction"}


def translation_url(url: str) -> str:
    """The Realtime WebSocket URL (`…/v1/realtime`, any query) as the translations endpoint.

    A URL already naming `…/realtime/translations` is kept; a `model` or `intent` in the query is
    dropped (the client puts its model there; translation takes no intent)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime" + PATH_SUFFIX):
        path += PATH_SUFFIX
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("model", "intent")]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def session_for_wire(session: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """The `session` of a translation `session.update`: only the fields a translation session may
    change. `type: "translation"`, the session's own `model`, and the audio formats (the protocol's
    PCM16 24 kHz, owned by the bridge) are dropped; anything else is a ValueError naming it, since
    sending it would only earn an error from the server and the scenario's intent would be lost."""
    if not isinstance(session, Mapping):
        raise TypeError(f"session must be a mapping, not {type(session).__name__}")
    rest = dict(session)
    kind = rest.pop("type", "translation")
    if kind != "translation":
        raise ValueError(f"a translation client's session type is 'translation', not {kind!r}")
    given_model = rest.pop("model", None)
    if given_model is not None and model is not None and given_model != model:
        raise ValueError(
            f"a translation session's model is set at creation ({model!r}); "
            f"session.update cannot change it to {given_model!r}"
        )
    for key in _BRIDGE_OWNED:
        rest.pop(key, None)
    audio = dict(rest.pop("audio", None) or {})
    audio_input = dict(audio.pop("input", None) or {})
    audio_output = dict(audio.pop("output", None) or {})
    for flat, nested in _FLAT.items():
        if flat in rest:
            value = rest.pop(flat)
            if nested in audio_input and audio_input[nested] != value:
                raise ValueError(f"session sets {flat!r} and 'audio.input.{nested}' to different values; give one")
            audio_input[nested] = value
    audio_input.pop("format", None)
    audio_output.pop("format", None)
    unknown = [*rest, *(f"audio.{k}" for k in audio)]
    unknown += [f"audio.input.{k}" for k in audio_input if k not in SESSION_FIELDS["audio"]["input"]]
    unknown += [f"audio.output.{k}" for k in audio_output if k not in SESSION_FIELDS["audio"]["output"]]
    for name, allowed in SESSION_FIELDS["audio"]["input"].items():
        value = audio_input.get(name)
        if isinstance(value, Mapping):
            unknown += [f"audio.input.{name}.{k}" for k in value if k not in allowed]
        elif value is not None and name in audio_input:
            raise TypeError(f"audio.input.{name} must be an object or null, not {type(value).__name__}")
    if unknown:
        raise ValueError(
            f"a translation session cannot take {', '.join(repr(k) for k in unknown)}: it may change only "
            "audio.output.language, audio.input.transcription ({model}) and audio.input.noise_reduction "
            "({type, strength}); there are no instructions, voice, tools or turn detection"
        )
    out: dict[str, Any] = {}
    if audio_input or audio_output:
        out["audio"] = {}
        if audio_input:
            out["audio"]["input"] = audio_input
        if audio_output:
            out["audio"]["output"] = audio_output
    return out


def merge_session(config: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` (a wire session) over `config`, nested: what a reconnect replays. A later update of
    `audio.output` must not wipe an earlier `audio.input`."""
    merged = dict(config)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_session(merged[key], value)
        else:
            merged[key] = value
    return merged


def session_update(session: Mapping[str, Any], event_id: str | None = None, model: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "session.update", "session": session_for_wire(session, model)}
    if event_id is not None:
        event["event_id"] = event_id
    return event


def session_close(event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "session.close"}
    if event_id is not None:
        event["event_id"] = event_id
    return event


_APPEND_PREFIX: Final = b'{"type":"' + APPEND_TYPE.encode() + b'","audio":"'
_APPEND_SUFFIX: Final = b'"}'


def encode_audio_append(audio_b64: str | bytes) -> bytes:
    """`session.input_audio_buffer.append` as JSON bytes: the per-frame hot path (see
    dialect.encode_input_audio_append for why concatenation, and its precondition)."""
    if isinstance(audio_b64, str):
        audio_b64 = audio_b64.encode("ascii")
    return _APPEND_PREFIX + audio_b64 + _APPEND_SUFFIX
