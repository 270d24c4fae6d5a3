"""Twilio Media Streams codec: every event, every malformed frame, serializer shapes."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.twilio import (
    MAX_MESSAGE_SIZE,
    DtmfReceived,
    MarkReceived,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    TwilioStreamParser,
    TwilioStreamSerializer,
)

ACCOUNT_SID = "AC3f9a2c0e5b7d41e8a6c2f0b9d1e4a7c3"
CALL_SID = "CA8e1d4b6f2a9c03e7b5d8f1a2c4e6b9d0"
STREAM_SID = "MZ1c7e9a3b5d2f4068a1c3e5b7d9f2a4c6"
OTHER_STREAM_SID = "MZ00000000000000000000000000000000"
FRAME = bytes(range(96, 256))  # 160 bytes of μ-law, 20 ms


def connected_msg() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start_msg(**media_format: Any) -> dict[str, Any]:
    fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **media_format}
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": fmt,
            "customParameters": {"scenario": "support", "caller": "+14155550123"},
        },
        "streamSid": STREAM_SID,
    }


def media_msg(
    payload: bytes = FRAME, seq: Any = "3", chunk: Any = "2", timestamp: Any = "40"
) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": seq,
        "media": {
            "track": "inbound",
            "chunk": chunk,
            "timestamp": timestamp,
            "payload": base64.b64encode(payload).decode(),
        },
        "streamSid": STREAM_SID,
    }


def dtmf_msg(digit: Any = "5") -> dict[str, Any]:
    return {
        "event": "dtmf",
        "streamSid": STREAM_SID,
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def mark_msg(name: Any = "g0.0") -> dict[str, Any]:
    return {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM_SID, "mark": {"name": name}}


def stop_msg() -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": "6",
        "streamSid": STREAM_SID,
        "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
    }


def dumps(msg: Any) -> str:
    return json.dumps(msg)  # the stdlib, with spaces: the parser must not depend on orjson's layout


def started_parser() -> TwilioStreamParser:
    parser = TwilioStreamParser()
    parser.parse(dumps(connected_msg()))
    parser.parse(dumps(start_msg()))
    return parser


def reason_of(parser: TwilioStreamParser, message: Any) -> str:
    with pytest.raises(CarrierProtocolError) as info:
        parser.parse(message)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.reason
    return info.value.reason


# -- every event -------------------------------------------------------------------------------


def test_connected() -> None:
    event = TwilioStreamParser().parse(dumps(connected_msg()))
    assert event == StreamConnected(protocol="Call", version="1.0.0")


def test_start() -> None:
    parser = TwilioStreamParser()
    assert parser.stream_sid is None and not parser.started
    event = parser.parse(dumps(start_msg()))
    assert event == StreamStarted(
        stream_sid=STREAM_SID,
        call_sid=CALL_SID,
        account_sid=ACCOUNT_SID,
        tracks=("inbound",),
        encoding="audio/x-mulaw",
        sample_rate=8000,
        channels=1,
        custom_parameters={"scenario": "support", "caller": "+14155550123"},
    )
    assert parser.stream_sid == STREAM_SID and parser.started
    hash(event)  # frozen events stay hashable despite the parameters dict


def test_start_without_custom_parameters() -> None:
    msg = start_msg()
    del msg["start"]["customParameters"]
    event = TwilioStreamParser().parse(dumps(msg))
    assert isinstance(event, StreamStarted) and event.custom_parameters == {}


def test_media() -> None:
    event = started_parser().parse(dumps(media_msg()))
    assert event == MediaReceived(
        sequence_number=3, chunk=2, timestamp_ms=40, payload=FRAME, track="inbound"
    )


def test_media_accepts_integers_for_numeric_fields() -> None:
    event = started_parser().parse(dumps(media_msg(seq=7, chunk=6, timestamp=120)))
    assert isinstance(event, MediaReceived)
    assert (event.sequence_number, event.chunk, event.timestamp_ms) == (7, 6, 120)


@pytest.mark.parametrize("size", [0, 1, 3, 160, 320, 8000])
def test_media_payload_of_any_length(size: int) -> None:
    payload = bytes(i % 256 for i in range(size))
    event = started_parser().parse(dumps(media_msg(payload)))
    assert isinstance(event, MediaReceived) and event.payload == payload


def test_dtmf() -> None:
    assert started_parser().parse(dumps(dtmf_msg("#"))) == DtmfReceived("#")


def test_mark() -> None:
    assert started_parser().parse(dumps(mark_msg("g2.17"))) == MarkReceived("g2.17")


def test_stop() -> None:
    parser = started_parser()
    assert parser.parse(dumps(stop_msg())) == StreamStopped(call_sid=CALL_SID)
    assert parser.stopped


def test_bytes_input_is_accepted() -> None:
    parser = TwilioStreamParser()
    assert isinstance(parser.parse(dumps(start_msg()).encode()), StreamStarted)
    assert isinstance(parser.parse(orjson.dumps(media_msg())), MediaReceived)


def test_whole_stream_in_order() -> None:
    parser = TwilioStreamParser()
    frames = [connected_msg(), start_msg(), media_msg(), dtmf_msg(), media_msg(seq="5"), mark_msg(), stop_msg()]
    kinds = [type(parser.parse(orjson.dumps(f))) for f in frames]
    assert kinds == [
        StreamConnected, StreamStarted, MediaReceived, DtmfReceived, MediaReceived, MarkReceived, StreamStopped
    ]


def test_stop_before_start_is_accepted() -> None:
    assert TwilioStreamParser().parse(dumps(stop_msg())) == StreamStopped(CALL_SID)


# -- malformed frames --------------------------------------------------------------------------


def test_oversized_message_is_refused_before_parsing() -> None:
    not_json = "x" * (MAX_MESSAGE_SIZE + 1)
    assert "exceeds" in reason_of(started_parser(), not_json)
    assert "exceeds" in reason_of(started_parser(), not_json.encode())


def test_oversized_by_utf8_size_is_refused() -> None:
    # Fewer characters than the limit, more bytes once encoded.
    message = '{"event":"mark","x":"' + "é" * (MAX_MESSAGE_SIZE // 2) + '"}'
    assert len(message) < MAX_MESSAGE_SIZE
    assert "exceeds" in reason_of(started_parser(), message)


def test_message_of_exactly_the_limit_is_parsed() -> None:
    text = dumps(mark_msg())
    padded = text + " " * (MAX_MESSAGE_SIZE - len(text))
    assert len(padded) == MAX_MESSAGE_SIZE
    assert started_parser().parse(padded) == MarkReceived("g0.0")


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("media", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"media"', "must be a JSON object"),
        ("42", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("{}", "no 'event' field"),
        ('{"event": "bogus"}', "unknown event 'bogus'"),
        ('{"event": 7}', "unknown event 7"),
        ('{"event": ["media"]}', "unknown event"),
    ],
)
def test_not_a_twilio_message(message: str | bytes, fragment: str) -> None:
    assert fragment in reason_of(started_parser(), message)


def test_message_of_wrong_python_type() -> None:
    assert "text or bytes" in reason_of(TwilioStreamParser(), 42)


@pytest.mark.parametrize("msg", [media_msg(), dtmf_msg(), mark_msg()], ids=["media", "dtmf", "mark"])
def test_before_start(msg: dict[str, Any]) -> None:
    parser = TwilioStreamParser()
    parser.parse(dumps(connected_msg()))
    assert "before start" in reason_of(parser, dumps(msg))


def test_second_start() -> None:
    assert "second start" in reason_of(started_parser(), dumps(start_msg()))


@pytest.mark.parametrize(
    "msg", [media_msg(), dtmf_msg(), mark_msg(), stop_msg()], ids=["media", "dtmf", "mark", "stop"]
)
def test_wrong_stream_sid(msg: dict[str, Any]) -> None:
    parser = started_parser()
    reason = reason_of(parser, dumps({**msg, "streamSid": OTHER_STREAM_SID}))
    assert "does not match" in reason and STREAM_SID in reason
    without = dict(msg)
    del without["streamSid"]
    assert "missing field 'streamSid'" in reason_of(parser, dumps(without))


def _media_with(**media_fields: Any) -> dict[str, Any]:
    msg = media_msg()
    msg["media"] = {**msg["media"], **media_fields}
    return {**msg, "media": {k: v for k, v in msg["media"].items() if v is not _DROP}}


_DROP = object()


@pytest.mark.parametrize(
    ("msg", "fragment"),
    [
        (_media_with(payload="AAA"), "not valid base64"),
        (_media_with(payload="AA==AA=="), "not valid base64"),
        (_media_with(payload="AAAA\n"), "not valid base64"),
        (_media_with(payload="AA AA"), "not valid base64"),
        (_media_with(payload="ÿÿÿÿ"), "not valid base64"),
        (_media_with(payload="A==="), "not valid base64"),
        (_media_with(payload=_DROP), "missing field 'media.payload'"),
        (_media_with(payload=None), "'media.payload' must be a string"),
        (_media_with(payload=1234), "'media.payload' must be a string"),
        (_media_with(chunk=_DROP), "missing field 'media.chunk'"),
        (_media_with(chunk="two"), "'media.chunk' must be a non-negative integer"),
        (_media_with(timestamp=_DROP), "missing field 'media.timestamp'"),
        (_media_with(timestamp="-20"), "'media.timestamp' must be a non-negative integer"),
        (_media_with(timestamp=-20), "'media.timestamp' must be a non-negative integer"),
        (_media_with(timestamp="1.5"), "'media.timestamp' must be a non-negative integer"),
        (_media_with(timestamp=1.5), "'media.timestamp' must be a non-negative integer"),
        (_media_with(timestamp="²"), "'media.timestamp' must be a non-negative integer"),
        (_media_with(timestamp=True), "'media.timestamp' must be a non-negative integer"),
        (_media_with(timestamp="9" * 5000), "'media.timestamp' must be a non-negative integer"),
        (_media_with(track=_DROP), "missing field 'media.track'"),
        (media_msg(seq=""), "'sequenceNumber' must be a non-negative integer"),
        ({**media_msg(), "media": "payload"}, "field 'media' must be an object"),
        ({k: v for k, v in media_msg().items() if k != "media"}, "missing field 'media'"),
        ({k: v for k, v in media_msg().items() if k != "sequenceNumber"}, "missing field 'sequenceNumber'"),
    ],
)
def test_bad_media(msg: dict[str, Any], fragment: str) -> None:
    reason = reason_of(started_parser(), dumps(msg))
    assert reason.startswith("twilio media:")
    assert fragment in reason


@pytest.mark.parametrize(
    ("fmt", "fragment"),
    [
        ({"encoding": "audio/x-alaw"}, "unsupported media format 'audio/x-alaw'"),
        ({"sampleRate": 16000}, "16000 Hz"),
        ({"channels": 2}, "x2"),
        ({"sampleRate": "8000"}, "must be integers"),
        ({"encoding": 1}, "'start.mediaFormat.encoding' must be a string"),
    ],
)
def test_unsupported_media_format(fmt: dict[str, Any], fragment: str) -> None:
    parser = TwilioStreamParser()
    assert fragment in reason_of(parser, dumps(start_msg(**fmt)))
    assert parser.stream_sid is None  # a refused start leaves the parser unstarted


def _start_with(**fields: Any) -> dict[str, Any]:
    msg = start_msg()
    msg["start"] = {k: v for k, v in {**msg["start"], **fields}.items() if v is not _DROP}
    return msg


@pytest.mark.parametrize(
    ("msg", "fragment"),
    [
        (_start_with(callSid=_DROP), "missing field 'start.callSid'"),
        (_start_with(accountSid=42), "'start.accountSid' must be a string"),
        (_start_with(callSid=""), "'start.callSid' must not be empty"),
        (_start_with(tracks="inbound"), "'start.tracks' must be a non-empty list"),
        (_start_with(tracks=[]), "'start.tracks' must be a non-empty list"),
        (_start_with(tracks=[1]), "'start.tracks' must be a non-empty list"),
        (_start_with(mediaFormat=_DROP), "missing field 'start.mediaFormat'"),
        (_start_with(customParameters={"n": 1}), "'start.customParameters' must map names to strings"),
        (_start_with(customParameters=["n"]), "'start.customParameters' must map names to strings"),
        (_start_with(streamSid=OTHER_STREAM_SID), "differs from streamSid"),
        ({**start_msg(), "start": None}, "field 'start' must be an object"),
        ({k: v for k, v in start_msg().items() if k != "streamSid"}, "missing field 'streamSid'"),
    ],
)
def test_bad_start(msg: dict[str, Any], fragment: str) -> None:
    parser = TwilioStreamParser()
    reason = reason_of(parser, dumps(msg))
    assert reason.startswith("twilio start:") and fragment in reason
    assert parser.stream_sid is None


@pytest.mark.parametrize("digit", ["", "55", "x", 5, None, "١"])
def test_bad_dtmf_digit(digit: Any) -> None:
    assert "dtmf.digit" in reason_of(started_parser(), dumps(dtmf_msg(digit)))


def test_bad_mark_and_stop_bodies() -> None:
    parser = started_parser()
    assert "'mark.name' must be a string" in reason_of(parser, dumps(mark_msg(None)))
    assert "missing field 'mark'" in reason_of(parser, dumps({"event": "mark", "streamSid": STREAM_SID}))
    bad_stop = {**stop_msg(), "stop": {"accountSid": ACCOUNT_SID}}
    assert "missing field 'stop.callSid'" in reason_of(parser, dumps(bad_stop))
    assert "'protocol' must be a string" in reason_of(
        parser, dumps({"event": "connected", "protocol": 1, "version": "1.0.0"})
    )


def test_message_after_stop() -> None:
    parser = started_parser()
    parser.parse(dumps(stop_msg()))
    assert "after stop" in reason_of(parser, dumps(media_msg()))


def test_errors_leave_the_stream_usable() -> None:
    parser = started_parser()
    reason_of(parser, dumps(_media_with(payload="AAA")))
    reason_of(parser, "garbage")
    assert isinstance(parser.parse(dumps(media_msg())), MediaReceived)


def test_reason_never_carries_a_whole_payload() -> None:
    huge = "Q" * 40_000 + "!"  # not base64 because of the '!'
    reason = reason_of(started_parser(), dumps(_media_with(payload=huge)))
    assert len(reason) < 300
    long_event = reason_of(started_parser(), dumps({"event": "z" * 50_000}))
    assert len(long_event) < 300
    bad_digit = reason_of(started_parser(), dumps(dtmf_msg("9" * 30_000)))
    assert len(bad_digit) < 300


# -- serializer --------------------------------------------------------------------------------


def test_serializer_shapes_match_carriers_md() -> None:
    out = TwilioStreamSerializer(STREAM_SID)
    assert out.media(FRAME) == orjson.dumps(
        {"event": "media", "streamSid": STREAM_SID, "media": {"payload": base64.b64encode(FRAME).decode()}}
    ).decode()
    assert json.loads(out.mark("g1.4")) == {"event": "mark", "streamSid": STREAM_SID, "mark": {"name": "g1.4"}}
    assert json.loads(out.clear()) == {"event": "clear", "streamSid": STREAM_SID}
    assert json.loads(out.media(b"")) == {"event": "media", "streamSid": STREAM_SID, "media": {"payload": ""}}


def test_serializer_escapes_odd_stream_sids() -> None:
    odd = 'MZ"\\\n'
    out = TwilioStreamSerializer(odd)
    assert json.loads(out.media(b"\xff"))["streamSid"] == odd
    assert json.loads(out.mark('a"b'))["mark"]["name"] == 'a"b'
    assert json.loads(out.clear())["streamSid"] == odd


def test_serializer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TwilioStreamSerializer("")
    with pytest.raises(TypeError):
        TwilioStreamSerializer(STREAM_SID).mark(7)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["g0.1", "", 'a"b', "back\\slash", "new\nline", "é ☎ \U0001f4de", "\x00\x1f"])
def test_mark_template_is_exactly_the_json_of_the_message(name: str) -> None:
    # mark() is built from a template around the escaped name (one per model delta); it must be
    # what serializing the whole message would give, byte for byte, for any name.
    for sid in (STREAM_SID, 'MZ"\\\n'):
        message = {"event": "mark", "streamSid": sid, "mark": {"name": name}}
        assert TwilioStreamSerializer(sid).mark(name) == orjson.dumps(message).decode()


def test_mark_round_trips_through_the_parser() -> None:
    """A mark the bridge sends comes back from Twilio in the same shape (plus sequenceNumber)."""
    sent = json.loads(TwilioStreamSerializer(STREAM_SID).mark("g3.9"))
    echoed = {**sent, "sequenceNumber": "12"}
    assert started_parser().parse(dumps(echoed)) == MarkReceived("g3.9")


# Deterministic runs (the brief: no flaky CI) and no example database written into the tree.
_deterministic = settings(derandomize=True, database=None, deadline=None)


@_deterministic
@given(st.binary(max_size=2000))
def test_media_round_trips_any_audio(ulaw: bytes) -> None:
    sent = json.loads(TwilioStreamSerializer(STREAM_SID).media(ulaw))
    assert base64.b64decode(sent["media"]["payload"], validate=True) == ulaw
    # The same payload arriving inbound parses back to the same bytes.
    inbound = media_msg()
    inbound["media"]["payload"] = sent["media"]["payload"]
    event = started_parser().parse(orjson.dumps(inbound))
    assert isinstance(event, MediaReceived) and event.payload == ulaw


# -- fuzzing: nothing but CarrierProtocolError ever escapes -------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["event", "streamSid", "media", "payload", "start", "mark", "name", "dtmf", "digit",
             "stop", "callSid", "accountSid", "tracks", "mediaFormat", "encoding", "sampleRate",
             "channels", "customParameters", "chunk", "timestamp", "track", "sequenceNumber"]
        )
        | st.text(max_size=8),
        inner,
        max_size=6,
    ),
    max_leaves=20,
)
_events = st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "clear", ""])


def _parse_or_protocol_error(parser: TwilioStreamParser, message: Any) -> None:
    try:
        parser.parse(message)
    except CarrierProtocolError as exc:
        assert exc.reason and len(exc.reason) < 1000


_fuzz = settings(
    _deterministic, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)


@_deterministic
@given(
    st.integers(0, 10**12), st.integers(0, 10**6), st.integers(0, 10**9), st.binary(max_size=400),
    st.booleans(),
)
def test_fast_path_agrees_with_the_checked_path(
    seq: int, chunk: int, timestamp: int, payload: bytes, as_strings: bool
) -> None:
    wrap = str if as_strings else int
    msg = media_msg(payload, seq=wrap(seq), chunk=wrap(chunk), timestamp=wrap(timestamp))
    parser = started_parser()
    fast = parser.parse(orjson.dumps(msg))
    assert fast == parser._media_checked(msg)
    assert fast == MediaReceived(seq, chunk, timestamp, payload, "inbound")


@_fuzz
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    _parse_or_protocol_error(TwilioStreamParser(), text)
    _parse_or_protocol_error(started_parser(), text)


@_fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    _parse_or_protocol_error(TwilioStreamParser(), data)
    _parse_or_protocol_error(started_parser(), data)


@_fuzz
@given(_events, _json_values, st.dictionaries(st.sampled_from(["media", "start", "mark", "dtmf", "stop"]), _json_values))
def test_arbitrary_twilio_shaped_json_never_raises_anything_else(
    event: str, extra: Any, bodies: dict[str, Any]
) -> None:
    message = {"event": event, "streamSid": STREAM_SID, "sequenceNumber": "1", **bodies}
    if isinstance(extra, dict):
        message.update(extra)
    text = json.dumps(message)
    _parse_or_protocol_error(TwilioStreamParser(), text)
    _parse_or_protocol_error(started_parser(), text)


@_fuzz
@given(st.text(alphabet="\ud800\udfff\x00é{}[]\":,", max_size=50))
def test_surrogates_and_control_characters(text: str) -> None:
    _parse_or_protocol_error(started_parser(), text)
