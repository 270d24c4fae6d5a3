"""GPT-Live on the wire: event names, the scenario-facing event enum, client-event builders and the
strict session config. Pure: no I/O, no clock.

GPT-Live (`wss://…/v1/live/sessions`) is not a Realtime variant: one `session.start`, continuous
paced output, no truncate, no speech_started, tools through delegation
(shared/reference/gpt-live.md). Its session config is strict (the server rejects unknown
fields), so everything a scenario passes goes through `live_session_config`, which keeps only the
fields the `openai.types.live.SessionConfig` declares and sets the audio format the bridge owns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal

log = logging.getLogger("telephony_bridge.realtime")

LiveCodec = Literal["g711_ulaw", "pcm16"]

OPENAI_LIVE_URL = "wss://api.openai.com/v1/live/sessions"
LIVE_PATH = "/v1/live/sessions"
DEFAULT_LIVE_MODEL = "gpt-live-1"

# The one `audio.format` of a session, both ways. μ-law 8 kHz is the phone's own: pass-through.
AUDIO_FORMATS: dict[LiveCodec, dict[str, Any]] = {
    "g711_ulaw": {"type": "audio/pcmu", "rate": 8000},
    "pcm16": {"type": "audio/pcm", "rate": 24000},
}

# What `openai.types.live.SessionConfig` declares (3.63), per level. Anything else is rejected by
# the server: the bridge drops it (and says so) rather than lose the session.
SESSION_FIELDS = frozenset(
    {"model", "audio", "client", "delegation", "input", "instructions", "safety_identifier", "store", "triggers"}
)
AUDIO_FIELDS = frozenset({"format", "output"})
AUDIO_OUTPUT_FIELDS = frozenset({"voice"})
UPDATE_FIELDS = frozenset({"delegation", "triggers"})  # all that session.update may carry after the start

# Realtime session fields a ported scenario may still pass: named in the warning, never sent.
REALTIME_ONLY_FIELDS = frozenset(
    {
        "type",
        "output_modalities",
        "modalities",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "max_response_output_tokens",
        "prompt",
        "truncation",
        "tracing",
        "include",
        "temperature",
        "turn_detection",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "speed",
    }
)

MAX_INPUT_MESSAGES = 128  # `session.start.session.input`


class LiveAPIEvents(str, Enum):
    """Voximplant's `OpenAI.LiveAPIEvents`: one member per Live server event of the primary union
    (openai.types.live.ServerEvent), plus what the bridge derives or reports itself."""

    Unknown = "OpenAI.LiveAPI.Unknown"
    SessionStarted = "OpenAI.LiveAPI.SessionStarted"
    SessionUpdated = "OpenAI.LiveAPI.SessionUpdated"
    SessionInputAudioMuted = "OpenAI.LiveAPI.SessionInputAudioMuted"
    SessionInputAudioUnmuted = "OpenAI.LiveAPI.SessionInputAudioUnmuted"
    SessionOutputAudioFixturePlaying = "OpenAI.LiveAPI.SessionOutputAudioFixturePlaying"
    SessionOutputAudioFixturePlayed = "OpenAI.LiveAPI.SessionOutputAudioFixturePlayed"
    SessionInstructionsAppended = "OpenAI.LiveAPI.SessionInstructionsAppended"
    SessionThinkingAppended = "OpenAI.LiveAPI.SessionThinkingAppended"
    SessionCommentaryAppended = "OpenAI.LiveAPI.SessionCommentaryAppended"
    SessionInputAudioAppend = "OpenAI.LiveAPI.SessionInputAudioAppend"
    SessionOutputAudioDelta = "OpenAI.LiveAPI.SessionOutputAudioDelta"
    SessionInputTranscriptDelta = "OpenAI.LiveAPI.SessionInputTranscriptDelta"
    SessionOutputTranscriptDelta = "OpenAI.LiveAPI.SessionOutputTranscriptDelta"
    SessionDelegationCreated = "OpenAI.LiveAPI.SessionDelegationCreated"
    DecisionEvent = "OpenAI.LiveAPI.DecisionEvent"
    DecisionItemCreated = "OpenAI.LiveAPI.DecisionItemCreated"
    DecisionItemDeleted = "OpenAI.LiveAPI.DecisionItemDeleted"
    ResponseEvent = "OpenAI.LiveAPI.ResponseEvent"
    SessionUsageUpdated = "OpenAI.LiveAPI.SessionUsageUpdated"
    SessionClosed = "OpenAI.LiveAPI.SessionClosed"
    Error = "OpenAI.LiveAPI.Error"
    Info = "OpenAI.LiveAPI.Info"
    TransportDtmfReceived = "OpenAI.LiveAPI.TransportDtmfReceived"
    TransportDtmfSend = "OpenAI.LiveAPI.TransportDtmfSend"
    TransportDtmfSent = "OpenAI.LiveAPI.TransportDtmfSent"
    TransportRinging = "OpenAI.LiveAPI.TransportRinging"
    TransportAnswered = "OpenAI.LiveAPI.TransportAnswered"
    TransportFailed = "OpenAI.LiveAPI.TransportFailed"
    # Derived by the bridge from the output audio (docs/live.md): speech entering the phone's
    # playout, and leaving it (silent output, a clear, or the end), with the heard position.
    AgentStartedSpeaking = "OpenAI.LiveAPI.AgentStartedSpeaking"
    AgentStoppedSpeaking = "OpenAI.LiveAPI.AgentStoppedSpeaking"
    # The connector's own, as on the GA client.
    ConnectorInformation = "OpenAI.LiveAPI.ConnectorInformation"
    WebSocketError = "OpenAI.LiveAPI.WebSocketError"
    HTTPResponse = "OpenAI.LiveAPI.HTTPResponse"


BRIDGE_EVENTS = frozenset(
    {
        LiveAPIEvents.Unknown,
        LiveAPIEvents.AgentStartedSpeaking,
        LiveAPIEvents.AgentStoppedSpeaking,
        LiveAPIEvents.ConnectorInformation,
        LiveAPIEvents.WebSocketError,
        LiveAPIEvents.HTTPResponse,
    }
)

# wire type -> member (error and info are single words).
SERVER_EVENT_TYPES: dict[str, LiveAPIEvents] = {
    "session.started": LiveAPIEvents.SessionStarted,
    "session.updated": LiveAPIEvents.SessionUpdated,
    "session.input_audio.muted": LiveAPIEvents.SessionInputAudioMuted,
    "session.input_audio.unmuted": LiveAPIEvents.SessionInputAudioUnmuted,
    "session.output_audio.fixture.playing": LiveAPIEvents.SessionOutputAudioFixturePlaying,
    "session.output_audio.fixture.played": LiveAPIEvents.SessionOutputAudioFixturePlayed,
    "session.instructions.appended": LiveAPIEvents.SessionInstructionsAppended,
    "session.thinking.appended": LiveAPIEvents.SessionThinkingAppended,
    "session.commentary.appended": LiveAPIEvents.SessionCommentaryAppended,
    "session.input_audio.append": LiveAPIEvents.SessionInputAudioAppend,
    "session.output_audio.delta": LiveAPIEvents.SessionOutputAudioDelta,
    "session.input_transcript.delta": LiveAPIEvents.SessionInputTranscriptDelta,
    "session.output_transcript.delta": LiveAPIEvents.SessionOutputTranscriptDelta,
    "session.delegation.created": LiveAPIEvents.SessionDelegationCreated,
    "decision.event": LiveAPIEvents.DecisionEvent,
    "decision.item.created": LiveAPIEvents.DecisionItemCreated,
    "decision.item.deleted": LiveAPIEvents.DecisionItemDeleted,
    "response.event": LiveAPIEvents.ResponseEvent,
    "session.usage.updated": LiveAPIEvents.SessionUsageUpdated,
    "session.closed": LiveAPIEvents.SessionClosed,
    "error": LiveAPIEvents.Error,
    "info": LiveAPIEvents.Info,
    "transport.dtmf.received": LiveAPIEvents.TransportDtmfReceived,
    "transport.dtmf.send": LiveAPIEvents.TransportDtmfSend,
    "transport.dtmf.sent": LiveAPIEvents.TransportDtmfSent,
    "transport.ringing": LiveAPIEvents.TransportRinging,
    "transport.answered": LiveAPIEvents.TransportAnswered,
    "transport.failed": LiveAPIEvents.TransportFailed,
}

CLIENT_EVENT_TYPES = frozenset(
    {
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
    }
)

OUTPUT_AUDIO_DELTA = "session.output_audio.delta"


def event_for_wire_type(kind: Any) -> LiveAPIEvents:
    return SERVER_EVENT_TYPES.get(kind, LiveAPIEvents.Unknown) if isinstance(kind, str) else LiveAPIEvents.Unknown


def normalize_event_name(event: Any) -> Any:
    """`LiveAPIEvents.X`, its value, or the bare name "X" all name the same listener slot."""
    if isinstance(event, LiveAPIEvents):
        return event
    if isinstance(event, str):
        for member in LiveAPIEvents:
            if event in (member.value, member.name):
                return member
    return event


# --- the session config ----------------------------------------------------------------------


def codec_of_format(audio_format: Any) -> LiveCodec:
    """The bridge's codec for a scenario's `audio.format` (only what a phone bridge can use)."""
    if isinstance(audio_format, Mapping):
        kind, rate = audio_format.get("type"), audio_format.get("rate")
        if kind == "audio/pcmu" and rate in (None, 8000):
            return "g711_ulaw"
        if kind == "audio/pcm" and rate in (None, 24000):
            return "pcm16"
    raise ValueError(
        f"unsupported Live audio.format {audio_format!r}: use "
        "{'type': 'audio/pcmu', 'rate': 8000} (phone pass-through) or {'type': 'audio/pcm', 'rate': 24000}"
    )


def _dropped(where: str, keys: list[str]) -> None:
    if keys:
        realtime = [k for k in keys if k in REALTIME_ONLY_FIELDS]
        why = " (Realtime-only: Live rejects them)" if realtime else " (unknown to GPT-Live)"
        log.warning(
            "Live session config: dropped %s%s%s",
            ", ".join(f"{where}{k}" for k in keys),
            why,
            "; tools go in delegation.responses.tools" if "tools" in keys else "",
        )


def live_session_config(
    session: Mapping[str, Any], codec: LiveCodec, model: str = DEFAULT_LIVE_MODEL
) -> dict[str, Any]:
    """`session.start.session` from what a scenario passed: only declared fields, the model set,
    and the bridge's audio format (the voice kept)."""
    out: dict[str, Any] = {k: v for k, v in session.items() if k in SESSION_FIELDS and k != "audio"}
    _dropped("session.", sorted(k for k in session if k not in SESSION_FIELDS))
    out.setdefault("model", model)
    audio = session.get("audio") if isinstance(session.get("audio"), Mapping) else {}
    assert isinstance(audio, Mapping)
    _dropped("session.audio.", sorted(k for k in audio if k not in AUDIO_FIELDS))
    clean: dict[str, Any] = {"format": dict(AUDIO_FORMATS[codec])}
    output = audio.get("output")
    if isinstance(output, Mapping):
        _dropped("session.audio.output.", sorted(k for k in output if k not in AUDIO_OUTPUT_FIELDS))
        if "voice" in output:
            clean["output"] = {"voice": output["voice"]}
    out["audio"] = clean
    return out


def live_session_update(session: Mapping[str, Any]) -> dict[str, Any]:
    """`session.update.session`: only delegation and triggers may change after the start."""
    _dropped("session.", sorted(k for k in session if k not in UPDATE_FIELDS))
    return {k: v for k, v in session.items() if k in UPDATE_FIELDS}


def seed_input(transcript: list[tuple[str, str]], limit: int = MAX_INPUT_MESSAGES) -> list[dict[str, Any]]:
    """`session.input` for a new session seeded with the conversation so far: (role, text) turns,
    the newest `limit` (consecutive turns of one speaker merged, one text part each)."""
    merged: list[tuple[str, str]] = []
    for role, text in transcript:
        text = text.strip()
        if not text:
            continue
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]} {text}")
        else:
            merged.append((role, text))
    items = []
    for role, text in merged[-limit:]:
        part_type = "output_text" if role == "assistant" else "input_text"
        items.append({"type": "message", "role": role, "content": [{"type": part_type, "text": text}]})
    return items


# --- client events ---------------------------------------------------------------------------


def _with_id(event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    if event_id is not None:
        event["event_id"] = event_id
    return event


def session_start(session: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.start", "session": session}, event_id)


def session_update(session: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.update", "session": session}, event_id)


def encode_input_audio_append(audio_b64: str | bytes) -> bytes:
    """`session.input_audio.append` as ready-to-send JSON bytes (the hot path; base64 needs no escaping)."""
    audio = audio_b64.encode() if isinstance(audio_b64, str) else audio_b64
    return b'{"type":"session.input_audio.append","audio":"' + audio + b'"}'


def input_audio_append(audio_b64: str, event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.input_audio.append", "audio": audio_b64}, event_id)


def input_audio_mute(event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.input_audio.mute"}, event_id)


def input_audio_unmute(event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.input_audio.unmute"}, event_id)


def output_audio_fixture_play(audio_b64: str, event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.output_audio.fixture.play", "audio": audio_b64}, event_id)


def _append(kind: str, content: str, delegation_id: str | None, event_id: str | None) -> dict[str, Any]:
    if not isinstance(content, str) or not content:
        raise ValueError(f"session.{kind}.append needs non-empty text content")
    # delegation_id is required as a key (null for no delegation): the server rejects it missing.
    return _with_id({"type": f"session.{kind}.append", "content": content, "delegation_id": delegation_id}, event_id)


def instructions_append(content: str, delegation_id: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    return _append("instructions", content, delegation_id, event_id)


def thinking_append(content: str, delegation_id: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    return _append("thinking", content, delegation_id, event_id)


def commentary_append(content: str, delegation_id: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    return _append("commentary", content, delegation_id, event_id)


def decision_create(event_id: str) -> dict[str, Any]:
    return {"type": "decision.create", "event_id": event_id}


def decision_item_create(item: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "decision.item.create", "item": dict(item)}, event_id)


def decision_item_delete(item_id: str, event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "decision.item.delete", "item_id": item_id}, event_id)


def response_item_create(item: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "response.item.create", "item": dict(item)}, event_id)


def response_create(event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "response.create"}, event_id)


def session_close(event_id: str | None = None) -> dict[str, Any]:
    return _with_id({"type": "session.close"}, event_id)


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    """The Responses input item answering a delegated function call."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def unheard_note(heard_ms: float, sent_ms: float, heard_text: str | None) -> str:
    """What `session.instructions.append` tells the model after the bridge cleared its audio:
    `heard_ms` of the reply reached the caller (the playback ledger), of `sent_ms` the bridge had
    written to the phone; the rest of the reply, and all that follows until it stops, is unheard."""
    text = f"The caller's playback of your current reply was stopped after {heard_ms / 1000:.1f} s"
    if heard_text is not None:
        text += f'; they heard up to: "{heard_text}"' if heard_text else "; they heard none of its words"
    dropped_ms = sent_ms - heard_ms
    if dropped_ms >= 100:
        text += f" ({dropped_ms / 1000:.1f} s more was on its way and never played)"
    return text + ". Nothing after that reached them: stop speaking and let them talk."
