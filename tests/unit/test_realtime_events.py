"""Server-event names: Voximplant's enum, the per-dialect wire maps, and what addEventListener accepts."""

from __future__ import annotations

import pytest

from telephony_bridge.realtime.events import (
    AUDIO_DELTA_TYPE,
    AUDIO_DONE_TYPE,
    DIALECTS,
    EVENT_BY_WIRE_TYPE,
    MediaEvents,
    RealtimeAPIEvents,
    event_for_wire_type,
    normalize_event_name,
    wire_type_for_event,
)
from tests.conformance.oracle import known_types

E = RealtimeAPIEvents

# Server events we leave Unknown on purpose. When the SDK adds an event, the coverage test below fails
# and someone decides: map it (new member) or list it here.
DELIBERATELY_UNKNOWN: dict[str, set[str]] = {
    # MCP events are mapped since Voximplant's GA enum names them (ResponseMCPCall*, MCPListTools*).
    "ga": set(),
    # Transcription-only sessions are not phone agents; the bridge never opens one.
    "beta": {"transcription_session.updated"},
}

# Server events of GA translation sessions (Voximplant 7.64.1), not in the realtime server union.
TRANSLATION_ONLY = {"session.closed", "session.input_transcript.delta", "session.output_transcript.delta"}
MCP = {"mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed", "response.mcp_call.in_progress",
       "response.mcp_call.completed", "response.mcp_call.failed", "response.mcp_call_arguments.delta",
       "response.mcp_call_arguments.done"}


def translation_server_types() -> set[str]:
    from typing import get_args

    from openai.types.realtime import (
        realtime_translation_session_closed_event as closed,
    )
    names = {get_args(closed.RealtimeTranslationSessionClosedEvent.model_fields["type"].annotation)[0]}
    import openai.types.realtime as types
    for name in dir(types):
        model = getattr(types, name)
        if name.startswith("RealtimeTranslation") and hasattr(model, "model_fields") and "type" in model.model_fields:
            names.update(t for t in get_args(model.model_fields["type"].annotation) if isinstance(t, str))
    return names


# GA-only types, spelled the same in both dialects, that the beta map carries anyway (see events.py).
GA_ONLY = {
    "conversation.item.added",
    "conversation.item.done",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
    "conversation.item.input_audio_transcription.segment",
}

# OpenAI.Beta.RealtimeAPIEvents as Voximplant publishes it, member -> beta wire type.
VOXIMPLANT_MEMBERS = {
    "Unknown": "unknown",
    "Error": "error",
    "SessionCreated": "session.created",
    "SessionUpdated": "session.updated",
    "ConversationCreated": "conversation.created",
    "ConversationItemCreated": "conversation.item.created",
    "ConversationItemRetrieved": "conversation.item.retrieved",
    "ConversationItemInputAudioTranscriptionCompleted": "conversation.item.input_audio_transcription.completed",
    "ConversationItemInputAudioTranscriptionDelta": "conversation.item.input_audio_transcription.delta",
    "ConversationItemInputAudioTranscriptionFailed": "conversation.item.input_audio_transcription.failed",
    "ConversationItemTruncated": "conversation.item.truncated",
    "ConversationItemDeleted": "conversation.item.deleted",
    "InputAudioBufferCommitted": "input_audio_buffer.committed",
    "InputAudioBufferCleared": "input_audio_buffer.cleared",
    "InputAudioBufferSpeechStarted": "input_audio_buffer.speech_started",
    "InputAudioBufferSpeechStopped": "input_audio_buffer.speech_stopped",
    "ResponseCreated": "response.created",
    "ResponseDone": "response.done",
    "ResponseOutputItemAdded": "response.output_item.added",
    "ResponseOutputItemDone": "response.output_item.done",
    "ResponseContentPartAdded": "response.content_part.added",
    "ResponseContentPartDone": "response.content_part.done",
    "ResponseTextDelta": "response.text.delta",
    "ResponseTextDone": "response.text.done",
    "ResponseAudioTranscriptDelta": "response.audio_transcript.delta",
    "ResponseAudioTranscriptDone": "response.audio_transcript.done",
    "ResponseAudioDone": "response.audio.done",
    "ResponseFunctionCallArgumentsDelta": "response.function_call_arguments.delta",
    "ResponseFunctionCallArgumentsDone": "response.function_call_arguments.done",
    "RateLimitsUpdated": "rate_limits.updated",
}

GA_RENAMES = {
    "response.output_audio.delta": E.ResponseAudioDelta,
    "response.output_audio.done": E.ResponseAudioDone,
    "response.output_audio_transcript.delta": E.ResponseAudioTranscriptDelta,
    "response.output_audio_transcript.done": E.ResponseAudioTranscriptDone,
    "response.output_text.delta": E.ResponseTextDelta,
    "response.output_text.done": E.ResponseTextDone,
}


# --------------------------------------------------------------------------- the enums


@pytest.mark.parametrize("name,wire", sorted(VOXIMPLANT_MEMBERS.items()))
def test_every_voximplant_member_exists_with_its_beta_wire_value(name, wire):
    assert E[name].value == wire


def test_extra_members_beyond_voximplant():
    assert E.ResponseAudioDelta.value == "response.audio.delta"
    assert E.OutputAudioBufferStarted.value == "output_audio_buffer.started"
    assert E.OutputAudioBufferStopped.value == "output_audio_buffer.stopped"
    assert E.OutputAudioBufferCleared.value == "output_audio_buffer.cleared"
    # GA only: value is the GA wire type.
    assert E.ConversationItemAdded.value == "conversation.item.added"
    assert E.ConversationItemDone.value == "conversation.item.done"
    assert E.InputAudioBufferTimeoutTriggered.value == "input_audio_buffer.timeout_triggered"
    assert E.InputAudioBufferDtmfEventReceived.value == "input_audio_buffer.dtmf_event_received"
    assert E.ConversationItemInputAudioTranscriptionSegment.value == (
        "conversation.item.input_audio_transcription.segment"
    )


def test_media_events_are_voximplant_beta_events():
    # Voximplant's two, then our reconnect events (documented in docs/reliability.md).
    assert [m.name for m in MediaEvents] == ["WebSocketMediaStarted", "WebSocketMediaEnded", "WebSocketReconnecting", "WebSocketReconnected"]
    assert isinstance(MediaEvents.WebSocketMediaStarted, str)


def test_enum_values_are_unique():
    # A duplicated value would make Enum silently alias two members.
    assert len({m.value for m in E}) == len(E.__members__)


# --------------------------------------------------------------------------- wire maps vs the SDK


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_sdk_server_event_maps_to_a_member_except_the_listed_ones(dialect):
    unmapped = {t for t in known_types(dialect, "server") if event_for_wire_type(t, dialect) is E.Unknown}
    assert unmapped == DELIBERATELY_UNKNOWN[dialect]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_map_names_only_types_the_sdk_knows(dialect):
    # Catches typos in the wire spellings: a member nobody could ever receive.
    extra = set(EVENT_BY_WIRE_TYPE[dialect]) - known_types(dialect, "server")
    assert extra == (TRANSLATION_ONLY if dialect == "ga" else GA_ONLY | MCP | TRANSLATION_ONLY)
    assert known_types("ga", "server") >= GA_ONLY | MCP
    assert translation_server_types() >= TRANSLATION_ONLY


def test_every_member_but_unknown_is_receivable_in_ga():
    for member in E:
        if member is not E.Unknown:
            assert wire_type_for_event(member, "ga") in known_types("ga", "server") | translation_server_types(), member


@pytest.mark.parametrize("wire,member", sorted(GA_RENAMES.items()))
def test_ga_renamed_types_map_to_the_voximplant_member(wire, member):
    assert event_for_wire_type(wire, "ga") is member
    assert wire_type_for_event(member, "ga") == wire
    # The same member in beta is its own value.
    assert event_for_wire_type(member.value, "beta") is member
    assert wire_type_for_event(member, "beta") == member.value


@pytest.mark.parametrize("wire,member", sorted(GA_RENAMES.items()))
def test_renamed_types_are_unknown_in_the_other_dialect(wire, member):
    # A GA server never sends the beta spelling (and vice versa): mapping it would hide a wrong dialect.
    assert event_for_wire_type(member.value, "ga") is E.Unknown
    assert event_for_wire_type(wire, "beta") is E.Unknown


@pytest.mark.parametrize("dialect", DIALECTS)
def test_shared_spellings_map_identically_in_both_dialects(dialect):
    for wire in known_types("ga", "server") & known_types("beta", "server"):
        assert event_for_wire_type(wire, dialect) is event_for_wire_type(wire, "beta")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_member_round_trips_through_its_wire_type(dialect):
    for member in E:
        if member is E.Unknown:
            with pytest.raises(KeyError):
                wire_type_for_event(member, dialect)
        else:
            assert event_for_wire_type(wire_type_for_event(member, dialect), dialect) is member


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unmapped_and_odd_types_are_unknown(dialect):
    for wire in ("", "unknown", "response.audio.bogus", "Response.Done", "ResponseDone"):
        assert event_for_wire_type(wire, dialect) is E.Unknown


def test_audio_constants_match_the_maps_and_the_sdk():
    for dialect in DIALECTS:
        assert AUDIO_DELTA_TYPE[dialect] == wire_type_for_event(E.ResponseAudioDelta, dialect)
        assert AUDIO_DONE_TYPE[dialect] == wire_type_for_event(E.ResponseAudioDone, dialect)
        assert AUDIO_DELTA_TYPE[dialect] in known_types(dialect, "server")
    assert AUDIO_DELTA_TYPE == {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}


def test_public_maps_are_read_only():
    with pytest.raises(TypeError):
        EVENT_BY_WIRE_TYPE["ga"]["x"] = E.Error  # type: ignore[index]
    with pytest.raises(TypeError):
        AUDIO_DELTA_TYPE["ga"] = "x"  # type: ignore[index]


# --------------------------------------------------------------------------- normalize_event_name


@pytest.mark.parametrize(
    "given,expected",
    [
        (E.ResponseDone, E.ResponseDone),
        (MediaEvents.WebSocketMediaEnded, MediaEvents.WebSocketMediaEnded),
        ("ResponseDone", E.ResponseDone),
        ("Unknown", E.Unknown),
        ("unknown", E.Unknown),
        ("WebSocketMediaStarted", MediaEvents.WebSocketMediaStarted),
        ("response.done", E.ResponseDone),
        ("response.audio_transcript.delta", E.ResponseAudioTranscriptDelta),
        ("response.output_audio_transcript.delta", E.ResponseAudioTranscriptDelta),
        ("response.output_audio.delta", E.ResponseAudioDelta),
        ("response.audio.delta", E.ResponseAudioDelta),
        ("response.output_text.done", E.ResponseTextDone),
        ("conversation.item.added", E.ConversationItemAdded),
        ("InputAudioBufferSpeechStarted", E.InputAudioBufferSpeechStarted),
        ("input_audio_buffer.speech_started", E.InputAudioBufferSpeechStarted),
    ],
)
def test_normalize_accepts_members_names_and_wire_types_of_both_dialects(given, expected):
    assert normalize_event_name(given) is expected


def test_normalize_accepts_every_member_name_and_every_known_server_type():
    for member in [*E, *MediaEvents]:
        assert normalize_event_name(member.name) is member
    for dialect in DIALECTS:
        for wire in known_types(dialect, "server") - DELIBERATELY_UNKNOWN[dialect]:
            assert normalize_event_name(wire) is event_for_wire_type(wire, dialect)


@pytest.mark.parametrize(
    "given,suggestion",
    [
        ("ResponseDon", "ResponseDone"),
        ("responsedone", "ResponseDone"),
        ("response.audio_transcript.delt", "response.audio_transcript.delta"),
        ("InputAudioBufferSpeechStart", "InputAudioBufferSpeechStarted"),
        ("WebSocketMediaStart", "WebSocketMediaStarted"),
    ],
)
def test_normalize_rejects_misspellings_naming_close_matches(given, suggestion):
    with pytest.raises(ValueError) as raised:
        normalize_event_name(given)
    text = str(raised.value)
    assert repr(given) in text
    assert "did you mean" in text
    assert suggestion in text


@pytest.mark.parametrize("given", ["", "xyzzy", "mcp_list_tools", "transcription_session.updated"])
def test_normalize_rejects_names_without_a_member(given):
    with pytest.raises(ValueError, match="unknown event name"):
        normalize_event_name(given)


def test_normalize_without_close_matches_has_no_suggestion():
    with pytest.raises(ValueError) as raised:
        normalize_event_name("xyzzy")
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize("given", [None, 3, b"response.done", object()])
def test_normalize_rejects_non_strings_with_type_error(given):
    with pytest.raises(TypeError):
        normalize_event_name(given)  # type: ignore[arg-type]
