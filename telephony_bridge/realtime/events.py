"""Realtime API server-event names: the Voximplant enums and the wire-type maps of both dialects.

Sans-I/O and import-time only: the maps are built once here so the client's per-message dispatch is
one dict lookup. A member means the same thing in both dialects; only its wire spelling differs
(GA renamed `response.audio*` / `response.text*` to `response.output_audio*` / `response.output_text*`).

Because `RealtimeAPIEvents` is a `str` Enum whose values are the *beta* spellings, a member compares
equal to the beta wire string: never compare an incoming `type` with a member directly, go through
`event_for_wire_type` so GA traffic maps too.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "AUDIO_DELTA_TYPE",
    "AUDIO_DONE_TYPE",
    "DIALECTS",
    "EVENT_BY_WIRE_TYPE",
    "Dialect",
    "MediaEvents",
    "RealtimeAPIEvents",
    "event_for_wire_type",
    "normalize_event_name",
    "wire_type_for_event",
]

Dialect = Literal["ga", "beta"]
DIALECTS: Final[tuple[Dialect, ...]] = ("ga", "beta")


class RealtimeAPIEvents(str, Enum):
    """`OpenAI.Beta.RealtimeAPIEvents`, name for name, plus the server events Voximplant never listed.

    Value: the beta wire type where beta has the event, else the GA wire type.
    """

    Unknown = "unknown"
    Error = "error"
    SessionCreated = "session.created"
    SessionUpdated = "session.updated"
    ConversationCreated = "conversation.created"
    ConversationItemCreated = "conversation.item.created"
    ConversationItemRetrieved = "conversation.item.retrieved"
    ConversationItemInputAudioTranscriptionCompleted = "conversation.item.input_audio_transcription.completed"
    ConversationItemInputAudioTranscriptionDelta = "conversation.item.input_audio_transcription.delta"
    ConversationItemInputAudioTranscriptionFailed = "conversation.item.input_audio_transcription.failed"
    ConversationItemTruncated = "conversation.item.truncated"
    ConversationItemDeleted = "conversation.item.deleted"
    InputAudioBufferCommitted = "input_audio_buffer.committed"
    InputAudioBufferCleared = "input_audio_buffer.cleared"
    InputAudioBufferSpeechStarted = "input_audio_buffer.speech_started"
    InputAudioBufferSpeechStopped = "input_audio_buffer.speech_stopped"
    ResponseCreated = "response.created"
    ResponseDone = "response.done"
    ResponseOutputItemAdded = "response.output_item.added"
    ResponseOutputItemDone = "response.output_item.done"
    ResponseContentPartAdded = "response.content_part.added"
    ResponseContentPartDone = "response.content_part.done"
    ResponseTextDelta = "response.text.delta"
    ResponseTextDone = "response.text.done"
    ResponseAudioTranscriptDelta = "response.audio_transcript.delta"
    ResponseAudioTranscriptDone = "response.audio_transcript.done"
    ResponseAudioDone = "response.audio.done"
    ResponseFunctionCallArgumentsDelta = "response.function_call_arguments.delta"
    ResponseFunctionCallArgumentsDone = "response.function_call_arguments.done"
    RateLimitsUpdated = "rate_limits.updated"
    # Not in Voximplant's current list; kept for listeners that want the raw deltas (the audio is
    # routed to the media graph whether or not anyone listens).
    ResponseAudioDelta = "response.audio.delta"
    # Server events of both dialects that Voximplant's enum lacks.
    OutputAudioBufferStarted = "output_audio_buffer.started"
    OutputAudioBufferStopped = "output_audio_buffer.stopped"
    OutputAudioBufferCleared = "output_audio_buffer.cleared"
    # GA only: no beta spelling, so the value is the GA wire type.
    ConversationItemAdded = "conversation.item.added"
    ConversationItemDone = "conversation.item.done"
    InputAudioBufferTimeoutTriggered = "input_audio_buffer.timeout_triggered"
    InputAudioBufferDtmfEventReceived = "input_audio_buffer.dtmf_event_received"
    ConversationItemInputAudioTranscriptionSegment = "conversation.item.input_audio_transcription.segment"
    ResponseMCPCallArgumentsDelta = "response.mcp_call_arguments.delta"
    ResponseMCPCallArgumentsDone = "response.mcp_call_arguments.done"
    ResponseMCPCallInProgress = "response.mcp_call.in_progress"
    ResponseMCPCallCompleted = "response.mcp_call.completed"
    ResponseMCPCallFailed = "response.mcp_call.failed"
    MCPListToolsInProgress = "mcp_list_tools.in_progress"
    MCPListToolsCompleted = "mcp_list_tools.completed"
    MCPListToolsFailed = "mcp_list_tools.failed"
    # GA translation sessions (Voximplant 7.64.1).
    SessionClosed = "session.closed"
    SessionInputTranscriptDelta = "session.input_transcript.delta"
    SessionOutputTranscriptDelta = "session.output_transcript.delta"


class MediaEvents(str, Enum):
    """`OpenAI.Beta.Events`: media-graph events raised by the bridge, not by the model."""

    WebSocketMediaStarted = "WebSocketMediaStarted"
    WebSocketMediaEnded = "WebSocketMediaEnded"
    # Ours (Voximplant has no reconnect): the model WebSocket dropped and the client is reopening
    # it ({attempt, code, reason}); it is open again with the session and conversation replayed
    # ({attempt, downtimeMs, replayedItems, recycled}).
    WebSocketReconnecting = "WebSocketReconnecting"
    WebSocketReconnected = "WebSocketReconnected"


# The only spellings GA changed. Everything else is spelled the same in both dialects.
_GA_RENAMES: Final[Mapping[RealtimeAPIEvents, str]] = {
    RealtimeAPIEvents.ResponseAudioDelta: "response.output_audio.delta",
    RealtimeAPIEvents.ResponseAudioDone: "response.output_audio.done",
    RealtimeAPIEvents.ResponseAudioTranscriptDelta: "response.output_audio_transcript.delta",
    RealtimeAPIEvents.ResponseAudioTranscriptDone: "response.output_audio_transcript.done",
    RealtimeAPIEvents.ResponseTextDelta: "response.output_text.delta",
    RealtimeAPIEvents.ResponseTextDone: "response.output_text.done",
}


def _build_wire_types() -> dict[Dialect, dict[RealtimeAPIEvents, str]]:
    by_dialect: dict[Dialect, dict[RealtimeAPIEvents, str]] = {"ga": {}, "beta": {}}
    for member in RealtimeAPIEvents:
        if member is RealtimeAPIEvents.Unknown:
            continue
        by_dialect["beta"][member] = member.value
        by_dialect["ga"][member] = _GA_RENAMES.get(member, member.value)
    return by_dialect


_WIRE_TYPE: Final = _build_wire_types()

# Plain dicts (not MappingProxyType) behind the function: `dict.get` is the cheapest lookup Python has,
# and this runs once per server message. Renamed types are deliberately absent from the other dialect:
# a GA server never sends `response.audio.delta`, and treating it as audio would hide a misconfigured
# dialect. GA-only types (e.g. `conversation.item.added`) are spelled the same everywhere, so the beta
# map carries them too: harmless, and servers that mix them into beta traffic still dispatch.
_EVENT_BY_WIRE: Final[dict[Dialect, dict[str, RealtimeAPIEvents]]] = {
    dialect: {wire: member for member, wire in wires.items()} for dialect, wires in _WIRE_TYPE.items()
}

EVENT_BY_WIRE_TYPE: Final[Mapping[Dialect, Mapping[str, RealtimeAPIEvents]]] = MappingProxyType(
    {dialect: MappingProxyType(table) for dialect, table in _EVENT_BY_WIRE.items()}
)
"""Read-only view of the per-dialect wire type -> member tables."""

# Hot-path constants: the client compares the incoming `type` with these before any other dispatch.
AUDIO_DELTA_TYPE: Final[Mapping[Dialect, str]] = MappingProxyType(
    {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
)
AUDIO_DONE_TYPE: Final[Mapping[Dialect, str]] = MappingProxyType(
    {"ga": "response.output_audio.done", "beta": "response.audio.done"}
)


def event_for_wire_type(wire_type: str, dialect: Dialect) -> RealtimeAPIEvents:
    """The member for a server event's `type` in `dialect`; `Unknown` when unmapped."""
    return _EVENT_BY_WIRE[dialect].get(wire_type, RealtimeAPIEvents.Unknown)


def wire_type_for_event(event: RealtimeAPIEvents, dialect: Dialect) -> str:
    """The wire `type` a `dialect` server sends for `event` (the local engine's direction).

    Raises KeyError for `Unknown`, which has no wire type of its own.
    """
    return _WIRE_TYPE[dialect][event]


# Every spelling normalize_event_name accepts, built once. Names and wire types never collide
# (CamelCase vs dotted lower case), and the GA and beta maps agree on every shared spelling.
_BY_NAME: Final[dict[str, RealtimeAPIEvents | MediaEvents]] = {
    **{member.name: member for member in RealtimeAPIEvents},
    **{member.name: member for member in MediaEvents},
    RealtimeAPIEvents.Unknown.value: RealtimeAPIEvents.Unknown,
    **_EVENT_BY_WIRE["beta"],
    **_EVENT_BY_WIRE["ga"],
}


def normalize_event_name(name: RealtimeAPIEvents | MediaEvents | str) -> RealtimeAPIEvents | MediaEvents:
    """Resolve what a scenario passes to addEventListener to one member.

    Accepts a member, a member's name (`"ResponseDone"`), or a server wire type of either dialect
    (`"response.output_audio_transcript.delta"`). Anything else is a ValueError naming close matches,
    because a misspelt event name would otherwise be a handler that silently never fires.
    """
    if isinstance(name, (RealtimeAPIEvents, MediaEvents)):
        return name
    if not isinstance(name, str):
        raise TypeError(f"event name must be a str or an event enum member, not {type(name).__name__}")
    found = _BY_NAME.get(name)
    if found is not None:
        return found
    raise ValueError(_unknown_name_message(name))


def _unknown_name_message(name: str) -> str:
    # Match case-insensitively ("responsedone" should still suggest "ResponseDone"), report the real spelling.
    by_lower = {candidate.lower(): candidate for candidate in _BY_NAME}
    close = difflib.get_close_matches(name.lower(), by_lower, n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(by_lower[c] for c in close)}?" if close else ""
    return (
        f"unknown event name {name!r}{hint} "
        "(use a RealtimeAPIEvents/MediaEvents member, its name, or a Realtime API server event type)"
    )
