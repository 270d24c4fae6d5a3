"""Every client event the bridge builds, in both dialects and both codecs, against the SDK's strict models."""

from __future__ import annotations

import base64
import copy
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.dialect import CODECS
from telephony_bridge.realtime.events import DIALECTS
from tests.conformance.oracle import ConformanceError, known_types, validate_client_event

BOTH = [(d, c) for d in DIALECTS for c in CODECS]
GA_FORMAT = {"pcm16": {"type": "audio/pcm", "rate": 24000}, "g711_ulaw": {"type": "audio/pcmu"}}

LOOKUP_TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Find an order by its number and say where it is.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "description": "digits only"}},
        "required": ["order_id"],
    },
}
TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.6,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}

# What a Voximplant scenario writes today.
RICH_BETA_SESSION = {
    "modalities": ["audio", "text"],
    "instructions": "You are the front desk of a small shop. Be brief.",
    "voice": "alloy",
    "input_audio_transcription": {"model": "whisper-1"},
    "turn_detection": TURN_DETECTION,
    "tools": [LOOKUP_TOOL],
    "tool_choice": "auto",
    "temperature": 0.8,
    "max_response_output_tokens": 4096,
    "speed": 1.1,
    "input_audio_noise_reduction": {"type": "near_field"},
}

# What someone who read the GA docs writes. Its formats (A-law!) must be overridden.
RICH_GA_SESSION = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "instructions": "You are the front desk of a small shop. Be brief.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcma"},
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "low", "interrupt_response": True},
            "noise_reduction": {"type": "far_field"},
        },
        "output": {"format": {"type": "audio/pcma"}, "voice": "marin", "speed": 0.9},
    },
    "tools": [LOOKUP_TOOL],
    "tool_choice": "required",
    "max_output_tokens": "inf",
    "tracing": "auto",
}


def audio_formats(session: dict, dialect: str) -> tuple:
    if dialect == "ga":
        return session["audio"]["input"]["format"], session["audio"]["output"]["format"]
    return session["input_audio_format"], session["output_audio_format"]


def expected_format(dialect: str, codec: str):
    return GA_FORMAT[codec] if dialect == "ga" else codec


# --------------------------------------------------------------------------- coverage of the client union


def test_a_builder_exists_for_every_client_event_the_sdk_knows():
    built = {
        wire.session_update({}, "ga", "pcm16")["type"],
        wire.input_audio_append("AAAA")["type"],
        wire.input_audio_commit()["type"],
        wire.input_audio_clear()["type"],
        wire.output_audio_buffer_clear()["type"],
        wire.conversation_item_create(None, {"type": "function_call_output", "call_id": "c", "output": "{}"}, "ga")["type"],
        wire.conversation_item_delete("i")["type"],
        wire.conversation_item_truncate("i", 0, 1)["type"],
        wire.conversation_item_retrieve("i")["type"],
        wire.response_create({}, "ga", "pcm16")["type"],
        wire.response_cancel()["type"],
    }
    # transcription_session.update (beta): the bridge never runs transcription-only sessions.
    for dialect in DIALECTS:
        assert known_types(dialect, "client") - built <= {"transcription_session.update"}


# --------------------------------------------------------------------------- session.update


@pytest.mark.parametrize("dialect,codec", BOTH)
@pytest.mark.parametrize("event_id", [None, "evt_session_1"])
def test_session_update_minimal_is_valid_and_carries_the_formats(dialect, codec, event_id):
    event = wire.session_update({}, dialect, codec, event_id=event_id)
    validate_client_event(event, dialect)
    assert ("event_id" in event) == (event_id is not None)
    assert audio_formats(event["session"], dialect) == (expected_format(dialect, codec),) * 2
    if dialect == "ga":
        assert event["session"]["type"] == "realtime"


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_rich_beta_session_is_valid_and_keeps_every_setting(dialect, codec):
    event = wire.session_update(RICH_BETA_SESSION, dialect, codec, event_id="e1")
    validate_client_event(event, dialect)
    s = event["session"]
    assert s["instructions"] == RICH_BETA_SESSION["instructions"]
    assert s["tools"] == [LOOKUP_TOOL]
    assert s["tool_choice"] == "auto"
    assert audio_formats(s, dialect) == (expected_format(dialect, codec),) * 2
    if dialect == "ga":
        assert s["type"] == "realtime"
        assert s["output_modalities"] == ["audio"]
        assert s["max_output_tokens"] == 4096
        assert "temperature" not in s
        assert s["audio"]["output"]["voice"] == "alloy"
        assert s["audio"]["output"]["speed"] == 1.1
        assert s["audio"]["input"]["turn_detection"] == TURN_DETECTION
        assert s["audio"]["input"]["transcription"] == {"model": "whisper-1"}
        assert s["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
        flat_keys = {"modalities", "voice", "speed", "input_audio_transcription", "turn_detection",
                     "input_audio_noise_reduction", "max_response_output_tokens",
                     "input_audio_format", "output_audio_format"}
        assert not flat_keys & s.keys()
    else:
        expected = {**RICH_BETA_SESSION, "input_audio_format": codec, "output_audio_format": codec}
        assert s == expected


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_rich_ga_session_is_valid_and_keeps_every_setting(dialect, codec):
    event = wire.session_update(RICH_GA_SESSION, dialect, codec)
    validate_client_event(event, dialect)
    s = event["session"]
    assert audio_formats(s, dialect) == (expected_format(dialect, codec),) * 2
    assert s["tool_choice"] == "required"
    assert s["tracing"] == "auto"
    source_in, source_out = RICH_GA_SESSION["audio"]["input"], RICH_GA_SESSION["audio"]["output"]
    if dialect == "ga":
        assert s["output_modalities"] == ["audio"]
        assert s["max_output_tokens"] == "inf"
        assert {k: v for k, v in s["audio"]["input"].items() if k != "format"} == {
            k: v for k, v in source_in.items() if k != "format"}
        assert s["audio"]["output"] == {"format": GA_FORMAT[codec], "voice": "marin", "speed": 0.9}
    else:
        assert "type" not in s and "audio" not in s
        assert s["modalities"] == ["audio", "text"]
        assert s["max_response_output_tokens"] == "inf"
        assert s["voice"] == "marin"
        assert s["speed"] == 0.9
        assert s["turn_detection"] == source_in["turn_detection"]
        assert s["input_audio_transcription"] == source_in["transcription"]
        assert s["input_audio_noise_reduction"] == source_in["noise_reduction"]
        assert source_out["voice"] == "marin"


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_user_given_formats_are_overridden_in_either_shape(dialect, codec):
    other_beta = "g711_alaw"
    beta_shaped = {"input_audio_format": other_beta, "output_audio_format": other_beta, "voice": "ash"}
    ga_shaped = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcma"}},
                                                "output": {"format": {"type": "audio/pcma"}}}}
    for session in (beta_shaped, ga_shaped):
        event = wire.session_update(session, dialect, codec)
        validate_client_event(event, dialect)
        assert audio_formats(event["session"], dialect) == (expected_format(dialect, codec),) * 2


@pytest.mark.parametrize(
    "given,ga,beta",
    [
        (["audio", "text"], ["audio"], ["audio", "text"]),
        (["text", "audio"], ["audio"], ["audio", "text"]),
        (["audio"], ["audio"], ["audio", "text"]),
        (["text"], ["text"], ["text"]),
    ],
)
@pytest.mark.parametrize("key", ["modalities", "output_modalities"])
def test_modalities_follow_each_dialects_rules(given, ga, beta, key):
    # GA: "not possible to request both text and audio"; ["audio"] includes the transcript.
    # Beta: audio mode is ["audio", "text"]; ["audio"] alone is rejected by the beta server.
    ga_event = wire.session_update({key: given}, "ga", "pcm16")
    beta_event = wire.session_update({key: given}, "beta", "pcm16")
    validate_client_event(ga_event, "ga")
    validate_client_event(beta_event, "beta")
    assert ga_event["session"]["output_modalities"] == ga
    assert beta_event["session"]["modalities"] == beta


def test_turn_detection_null_is_kept_because_it_turns_vad_off():
    for session in ({"turn_detection": None}, {"audio": {"input": {"turn_detection": None}}}):
        ga = wire.session_update(session, "ga", "pcm16")
        beta = wire.session_update(session, "beta", "pcm16")
        validate_client_event(ga, "ga")
        validate_client_event(beta, "beta")
        assert ga["session"]["audio"]["input"]["turn_detection"] is None
        assert beta["session"]["turn_detection"] is None


def test_beta_turn_detection_without_type_is_server_vad_on_ga():
    session = {"turn_detection": {"silence_duration_ms": 700}}
    ga = wire.session_update(session, "ga", "pcm16")
    validate_client_event(ga, "ga")
    assert ga["session"]["audio"]["input"]["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 700}
    beta = wire.session_update(session, "beta", "pcm16")
    assert beta["session"]["turn_detection"] == {"silence_duration_ms": 700}


def test_tool_choice_forcing_a_function_translates_both_ways():
    beta_shaped = {"tools": [LOOKUP_TOOL], "tool_choice": "lookup_order"}
    ga = wire.session_update(beta_shaped, "ga", "pcm16")
    validate_client_event(ga, "ga")
    assert ga["session"]["tool_choice"] == {"type": "function", "name": "lookup_order"}
    back = wire.session_update(ga["session"], "beta", "pcm16")
    validate_client_event(back, "beta")
    assert back["session"]["tool_choice"] == "lookup_order"
    for mode in ("auto", "none", "required"):
        assert wire.session_for_wire({"tool_choice": mode}, "ga", "pcm16")["tool_choice"] == mode
        assert wire.session_for_wire({"tool_choice": mode}, "beta", "pcm16")["tool_choice"] == mode


def test_temperature_is_dropped_on_ga_because_the_sdk_rejects_it():
    with pytest.raises(ConformanceError, match="temperature"):
        validate_client_event({"type": "session.update", "session": {"type": "realtime", "temperature": 0.8}}, "ga")
    assert "temperature" not in wire.session_for_wire({"temperature": 0.8}, "ga", "pcm16")
    assert wire.session_for_wire({"temperature": 0.8}, "beta", "pcm16")["temperature"] == 0.8


def test_the_same_setting_in_both_shapes_must_agree():
    with pytest.raises(ValueError, match=r"'voice' and 'audio\.output\.voice'"):
        wire.session_for_wire({"voice": "alloy", "audio": {"output": {"voice": "marin"}}}, "ga", "pcm16")
    with pytest.raises(ValueError, match="max_response_output_tokens"):
        wire.session_for_wire({"max_response_output_tokens": 10, "max_output_tokens": 20}, "beta", "pcm16")
    # Equal after translation is fine: beta ["audio","text"] and GA ["audio"] say the same thing.
    same = wire.session_for_wire(
        {"voice": "alloy", "audio": {"output": {"voice": "alloy"}},
         "modalities": ["audio", "text"], "output_modalities": ["audio"]}, "ga", "pcm16")
    assert same["audio"]["output"]["voice"] == "alloy"
    assert same["output_modalities"] == ["audio"]


def test_unknown_keys_pass_through_unchanged():
    future = {"x_future_knob": {"a": 1}}
    for dialect in DIALECTS:
        out = wire.session_for_wire({**future, "voice": "ash"}, dialect, "pcm16")
        assert out["x_future_knob"] == {"a": 1}
    ga = wire.session_for_wire({"audio": {"input": {"x_in": 1}, "output": {"x_out": 2}, "x_audio": 3}}, "ga", "pcm16")
    assert ga["audio"]["input"]["x_in"] == 1 and ga["audio"]["output"]["x_out"] == 2 and ga["audio"]["x_audio"] == 3
    # Beta has no nested audio; unknown nested keys are kept (so the server names them), formats are not.
    beta = wire.session_for_wire(
        {"audio": {"input": {"x_in": 1, "format": {"type": "audio/pcma"}}, "output": {"voice": "ash"}}}, "beta", "pcm16")
    assert beta["audio"] == {"input": {"x_in": 1}}
    assert beta["voice"] == "ash"


def test_transcription_sessions_are_refused():
    with pytest.raises(ValueError, match="transcription"):
        wire.session_for_wire({"type": "transcription"}, "ga", "pcm16")


def test_bad_dialect_codec_or_session_type_are_errors():
    with pytest.raises(ValueError, match="dialect"):
        wire.session_for_wire({}, "v2", "pcm16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="codec"):
        wire.session_for_wire({}, "ga", "g711_alaw")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wire.session_for_wire(None, "ga", "pcm16")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wire.session_for_wire({"audio": "loud"}, "ga", "pcm16")


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_inputs_are_never_mutated(dialect, codec):
    for session in (RICH_BETA_SESSION, RICH_GA_SESSION, {"turn_detection": {"threshold": 0.4}}):
        before = copy.deepcopy(session)
        wire.session_update(session, dialect, codec)
        assert session == before
    response = {"voice": "ash", "input": [{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]}
    before = copy.deepcopy(response)
    wire.response_create(response, dialect, codec)
    assert response == before


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("source", [RICH_BETA_SESSION, RICH_GA_SESSION], ids=["beta-shaped", "ga-shaped"])
def test_translation_round_trips(source, codec):
    # Through the other dialect and back loses only what the other dialect cannot say (GA: temperature).
    beta_direct = wire.session_for_wire(source, "beta", codec)
    ga_direct = wire.session_for_wire(source, "ga", codec)
    assert wire.session_for_wire(ga_direct, "ga", codec) == ga_direct
    assert wire.session_for_wire(beta_direct, "beta", codec) == beta_direct
    assert wire.session_for_wire(beta_direct, "ga", codec) == ga_direct
    via_ga = wire.session_for_wire(ga_direct, "beta", codec)
    assert via_ga == {k: v for k, v in beta_direct.items() if k != "temperature"}


# Random subsets of realistic settings, in either shape: always valid, always the bridge's formats.
_beta_settings = st.fixed_dictionaries(
    {},
    optional={
        "modalities": st.sampled_from([["audio", "text"], ["text"], ["audio"]]),
        "instructions": st.text(max_size=30),
        "voice": st.sampled_from(["alloy", "ash", "verse"]),
        "input_audio_format": st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"]),
        "output_audio_format": st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"]),
        "input_audio_transcription": st.one_of(st.none(), st.just({"model": "whisper-1"})),
        "turn_detection": st.one_of(
            st.none(), st.just(TURN_DETECTION), st.just({"type": "semantic_vad", "eagerness": "high"}),
            st.builds(lambda ms: {"silence_duration_ms": ms}, st.integers(100, 2000))),
        "tools": st.just([LOOKUP_TOOL]),
        "tool_choice": st.sampled_from(["auto", "none", "required", "lookup_order"]),
        "temperature": st.floats(0.6, 1.2),
        "max_response_output_tokens": st.one_of(st.integers(1, 4096), st.just("inf")),
        "speed": st.floats(0.25, 1.5),
        "input_audio_noise_reduction": st.one_of(st.none(), st.just({"type": "near_field"})),
    },
)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=_beta_settings, codec=st.sampled_from(CODECS))
def test_any_beta_shaped_session_is_valid_in_both_dialects_and_round_trips(session, codec):
    for dialect in DIALECTS:
        event = wire.session_update(session, dialect, codec)
        validate_client_event(event, dialect)
        assert audio_formats(event["session"], dialect) == (expected_format(dialect, codec),) * 2
    ga = wire.session_for_wire(session, "ga", codec)
    beta = wire.session_for_wire(session, "beta", codec)
    expected = {k: v for k, v in beta.items() if k != "temperature"}
    if isinstance(expected.get("turn_detection"), dict) and "type" not in expected["turn_detection"]:
        # GA made beta's implicit default explicit; same meaning.
        expected["turn_detection"] = {"type": "server_vad", **expected["turn_detection"]}
    assert wire.session_for_wire(ga, "beta", codec) == expected
    validate_client_event(wire.session_update(ga, "ga", codec), "ga")


# --------------------------------------------------------------------------- response.create


RICH_BETA_RESPONSE = {
    "modalities": ["audio", "text"],
    "instructions": "Greet the caller by name.",
    "voice": "alloy",
    "output_audio_format": "pcm16",
    "temperature": 0.7,
    "max_response_output_tokens": 512,
    "tool_choice": "none",
    "tools": [LOOKUP_TOOL],
    "conversation": "auto",
    "metadata": {"purpose": "greeting"},
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi, it's Ann."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
    ],
}


@pytest.mark.parametrize("dialect,codec", BOTH)
@pytest.mark.parametrize("event_id", [None, "evt_r"])
def test_response_create_empty_and_none(dialect, codec, event_id):
    empty = wire.response_create({}, dialect, codec, event_id=event_id)
    validate_client_event(empty, dialect)
    assert empty["response"] == {}
    assert ("event_id" in empty) == (event_id is not None)
    bare = wire.response_create(None, dialect, codec)
    validate_client_event(bare, dialect)
    assert bare == {"type": "response.create"}


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_rich_response_create_is_valid_and_keeps_every_setting(dialect, codec):
    event = wire.response_create(RICH_BETA_RESPONSE, dialect, codec, event_id="r1")
    validate_client_event(event, dialect)
    r = event["response"]
    assert r["instructions"] == RICH_BETA_RESPONSE["instructions"]
    assert r["metadata"] == {"purpose": "greeting"}
    assert r["tool_choice"] == "none"
    assert r["input"][0] == RICH_BETA_RESPONSE["input"][0]
    if dialect == "ga":
        assert r["output_modalities"] == ["audio"]
        assert r["max_output_tokens"] == 512
        assert r["audio"] == {"output": {"format": GA_FORMAT[codec], "voice": "alloy"}}
        assert "temperature" not in r
        assert r["input"][1]["content"] == [{"type": "output_text", "text": "Hello!"}]
    else:
        assert r["modalities"] == ["audio", "text"]
        assert r["voice"] == "alloy"
        assert r["temperature"] == 0.7
        assert r["output_audio_format"] == codec
        assert r["input"][1] == RICH_BETA_RESPONSE["input"][1]


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_ga_shaped_response_create(dialect, codec):
    response = {"output_modalities": ["text"], "audio": {"output": {"voice": "cedar"}}, "max_output_tokens": "inf",
                "conversation": "none", "tool_choice": {"type": "function", "name": "lookup_order"}}
    event = wire.response_create(response, dialect, codec)
    validate_client_event(event, dialect)
    r = event["response"]
    if dialect == "ga":
        # No format given: none is sent (the session's applies).
        assert r["audio"] == {"output": {"voice": "cedar"}}
        assert r["tool_choice"] == {"type": "function", "name": "lookup_order"}
    else:
        assert r["voice"] == "cedar" and "output_audio_format" not in r and "audio" not in r
        assert r["modalities"] == ["text"]
        assert r["tool_choice"] == "lookup_order"


@pytest.mark.parametrize("dialect,codec", BOTH)
def test_response_output_format_is_forced_to_the_codec(dialect, codec):
    for response in ({"output_audio_format": "g711_alaw"}, {"audio": {"output": {"format": {"type": "audio/pcma"}}}}):
        event = wire.response_create(response, dialect, codec)
        validate_client_event(event, dialect)
        r = event["response"]
        if dialect == "ga":
            assert r == {"audio": {"output": {"format": GA_FORMAT[codec]}}}
        else:
            assert r == {"output_audio_format": codec}


# --------------------------------------------------------------------------- conversation items


FUNCTION_OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": '{"status": "shipped"}'}
ITEMS = {
    "user_text": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where is 42?"}]},
    "user_audio": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "AAAA"}]},
    "system": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be kind."}]},
    "assistant_beta": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "On its way."}]},
    "assistant_ga": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "On its way."}]},
    "function_call": {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": '{"order_id": "42"}'},
    "function_output": FUNCTION_OUTPUT,
    "role_only": {"role": "user", "content": [{"type": "input_text", "text": "typeless, as beta allows"}]},
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(ITEMS))
@pytest.mark.parametrize("previous_item_id,event_id", [(None, None), ("item_prev", "evt_c")])
def test_conversation_item_create_is_valid(dialect, name, previous_item_id, event_id):
    event = wire.conversation_item_create(previous_item_id, ITEMS[name], dialect, event_id=event_id)
    validate_client_event(event, dialect)
    assert ("previous_item_id" in event) == (previous_item_id is not None)
    assert ("event_id" in event) == (event_id is not None)


def test_assistant_content_parts_are_renamed_by_role():
    ga = wire.item_for_wire(
        {"type": "message", "role": "assistant",
         "content": [{"type": "text", "text": "a"}, {"type": "audio", "transcript": "b"}]}, "ga")
    assert [p["type"] for p in ga["content"]] == ["output_text", "output_audio"]
    beta = wire.item_for_wire(ga, "beta")
    assert [p["type"] for p in beta["content"]] == ["text", "audio"]
    assert wire.item_for_wire(beta, "ga") == ga
    # A user's parts are the same in both dialects.
    for dialect in DIALECTS:
        assert wire.item_for_wire(ITEMS["user_text"], dialect) == ITEMS["user_text"]
        assert wire.item_for_wire(ITEMS["user_audio"], dialect) == ITEMS["user_audio"]
        assert wire.item_for_wire(FUNCTION_OUTPUT, dialect) == FUNCTION_OUTPUT


def test_a_role_only_item_gets_its_type_on_ga():
    assert wire.item_for_wire(ITEMS["role_only"], "ga")["type"] == "message"
    assert "type" not in wire.item_for_wire(ITEMS["role_only"], "beta")


# --------------------------------------------------------------------------- the small events


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("event_id", [None, "evt_x"])
def test_item_delete_truncate_retrieve_cancel(dialect, event_id):
    events = [
        wire.conversation_item_delete("item_1", event_id=event_id),
        wire.conversation_item_truncate("item_1", 0, 1500, event_id=event_id),
        wire.conversation_item_retrieve("item_1", event_id=event_id),
        wire.response_cancel(event_id=event_id),
        wire.response_cancel(event_id, response_id="resp_1"),
        wire.input_audio_commit(event_id),
        wire.input_audio_clear(event_id),
        wire.output_audio_buffer_clear(event_id),
    ]
    for event in events:
        validate_client_event(event, dialect)
        assert ("event_id" in event) == (event_id is not None)
    assert events[0] == {"type": "conversation.item.delete", "item_id": "item_1", **({"event_id": event_id} if event_id else {})}
    assert events[4]["response_id"] == "resp_1"
    assert "response_id" not in events[3]


def test_truncate_floors_ledger_milliseconds_and_refuses_negatives():
    # Flooring keeps audio_end_ms within what the server sent (it rejects "already shorter than").
    event = wire.conversation_item_truncate("item_1", 0, 1234.99)
    assert event["audio_end_ms"] == 1234 and isinstance(event["audio_end_ms"], int)
    validate_client_event(event, "ga")
    with pytest.raises(ValueError):
        wire.conversation_item_truncate("item_1", 0, -1)
    with pytest.raises(ValueError):
        wire.conversation_item_truncate("item_1", -1, 10)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_input_audio_append_and_its_hot_path_encoding(dialect):
    pcm = bytes(range(256)) * 4  # every byte value, so every base64 character appears
    b64 = base64.b64encode(pcm)
    event = wire.input_audio_append(b64.decode())
    validate_client_event(event, dialect)
    for audio in (b64, b64.decode()):
        encoded = wire.encode_input_audio_append(audio)
        assert isinstance(encoded, bytes)
        assert encoded == orjson.dumps(event)
        assert json.loads(encoded) == event
        validate_client_event(orjson.loads(encoded), dialect)
    assert wire.encode_input_audio_append("") == b'{"type":"input_audio_buffer.append","audio":""}'
