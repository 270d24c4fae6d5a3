"""Asterisk AudioSocket: the frame reader, the codec, the carrier's allow-list and listener specs."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.carriers.audiosocket import (
    HANGUP_FRAME,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_UUID,
    MAX_PAYLOAD,
    AudioSocketCodec,
    FrameReader,
    frame,
)
from telephony_bridge.carriers.audiosocket_carrier import (
    PLAYOUT_LEAD_MS,
    AllowList,
    AudioSocketCarrier,
    Listener,
    parse_allow,
    parse_listen,
)
from telephony_bridge.carriers.base import AudioReceived, CallStarted, DtmfReceived, StreamEnded
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.registry import CARRIERS

CALL = uuid.UUID("0b5c1f3e-8d44-4a3e-9f7d-2f6a1c9e4b10")


def started_codec(number: str = "+15550100") -> AudioSocketCodec:
    codec = AudioSocketCodec(number=number)
    codec.parse(frame(KIND_UUID, CALL.bytes))
    return codec


def test_a_call_reads_as_start_audio_dtmf_and_hangup():
    codec = AudioSocketCodec(number="+15550100")
    assert not codec.started
    start = codec.parse(frame(KIND_UUID, CALL.bytes))
    assert start == CallStarted(call_id=str(CALL), stream_id=str(CALL), audio_format=L16_8K, number="+15550100")
    assert codec.started and start.token is None  # nothing in the stream binds it: the listener does
    audio = codec.parse(frame(KIND_AUDIO, b"\x01\x02" * 160))
    assert type(audio) is codec.audio_event and audio.payload == b"\x01\x02" * 160 and audio.timestamp_ms is None
    assert codec.parse(frame(KIND_DTMF, b"5")) == DtmfReceived("5")
    assert codec.parse(frame(KIND_DTMF, b"a")) == DtmfReceived("A")
    assert codec.parse(HANGUP_FRAME) == StreamEnded()
    ended = codec.parse(frame(KIND_ERROR, b"\x02"))
    assert isinstance(ended, StreamEnded) and "0x02 (frame forwarding failed)" in ended.reason


@pytest.mark.parametrize(("message", "problem"), [
    (frame(KIND_AUDIO, b"\x00" * 320), "before the UUID"),
    (frame(KIND_DTMF, b"1"), "before the UUID"),
    (frame(KIND_UUID, b"\x00" * 15), "16 are needed"),
    (b"\x10\x00", "no header"),
    (b"\x10\x00\x04\x00\x00", "declares 4 bytes and carries 2"),
])
def test_what_cannot_start_a_call_is_refused_and_changes_nothing(message, problem):
    codec = AudioSocketCodec()
    with pytest.raises(CarrierProtocolError, match=problem):
        codec.parse(message)
    assert not codec.started


@pytest.mark.parametrize(("message", "problem"), [
    (frame(KIND_UUID, CALL.bytes), "second UUID"),
    (frame(KIND_AUDIO, b"\x00" * 3), "even number"),
    (frame(KIND_AUDIO), "even number"),
    (frame(KIND_DTMF, b"12"), "one digit"),
    (frame(KIND_DTMF, b"x"), "one digit"),
    (frame(0x12, b"\x00" * 640), "unknown frame kind 0x12"),
    (bytes((KIND_AUDIO, 0xFF, 0xFF)), "over the 8192-byte limit"),
])
def test_bad_frames_of_a_started_call_are_refused(message, problem):
    codec = started_codec()
    with pytest.raises(CarrierProtocolError, match=problem):
        codec.parse(message)
    assert codec.parse(frame(KIND_AUDIO, b"\x00\x00")) == AudioReceived(b"\x00\x00")  # and it goes on


def test_audio_out_is_one_0x10_frame_per_payload_and_there_is_no_mark():
    codec = started_codec()
    assert codec.audio(b"\x07\x00" * 160) == b"\x10\x01\x40" + b"\x07\x00" * 160
    long = b"\x01\x00" * 40000  # split into frames of whole samples, each within the u16 length
    reader = FrameReader(max_payload=0xFFFF)
    frames = reader.feed(codec.audio(long))
    assert b"".join(f[3:] for f in frames) == long and all(len(f[3:]) % 2 == 0 for f in frames)
    assert codec.clear() == b""
    with pytest.raises(NotImplementedError):
        codec.mark("g1.1")


def test_frame_reader_joins_partial_frames_and_skips_oversized_ones_unbuffered():
    stream = frame(KIND_UUID, CALL.bytes) + frame(KIND_AUDIO, b"\x01\x00" * 160) + frame(KIND_DTMF, b"#")
    reader = FrameReader()
    out = []
    for byte in stream:
        out += reader.feed(bytes([byte]))
    assert out == [frame(KIND_UUID, CALL.bytes), frame(KIND_AUDIO, b"\x01\x00" * 160), frame(KIND_DTMF, b"#")]
    assert reader.pending == 0
    big = bytes((KIND_AUDIO, 0x40, 0x00))  # 16384 bytes declared, over MAX_PAYLOAD
    out = reader.feed(big + b"\x00" * 1000)
    assert out == [big] and reader.pending == 0  # the header alone, the payload dropped as it comes
    out = reader.feed(b"\x00" * (0x4000 - 1000) + HANGUP_FRAME)
    assert out == [HANGUP_FRAME]  # back in step after the skipped payload


frames_strategy = st.lists(st.one_of(
    st.builds(lambda p: frame(KIND_AUDIO, p), st.binary(max_size=700)),
    st.builds(lambda d: frame(KIND_DTMF, d), st.sampled_from([b"1", b"#", b"x", b"12"])),
    st.just(frame(KIND_UUID, CALL.bytes)),
    st.just(HANGUP_FRAME),
    st.builds(lambda k, p: frame(k, p), st.integers(0, 255), st.binary(max_size=40)),
    st.builds(lambda n: bytes((KIND_AUDIO, n >> 8, n & 0xFF)) + b"\x00" * n, st.integers(MAX_PAYLOAD + 1, 0xFFFF)),
), max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames_strategy, st.lists(st.integers(1, 5000), min_size=1, max_size=20))
def test_any_chunking_of_a_frame_stream_yields_the_same_frames(frames, cuts):
    stream = b"".join(frames)
    reader = FrameReader()
    out: list[bytes] = []
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        out += reader.feed(stream[position:position + size])
        position += size
        index += 1
        assert reader.pending <= 3 + MAX_PAYLOAD
    expected = [f if len(f) - 3 <= MAX_PAYLOAD else f[:3] for f in frames]
    assert out == expected and reader.pending == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_random_bytes_only_ever_give_events_or_protocol_errors(data, start_first):
    codec = AudioSocketCodec()
    reader = FrameReader()
    stream = (frame(KIND_UUID, CALL.bytes) if start_first else b"") + data
    reasons: list[str] = []
    for message in reader.feed(stream):
        try:
            event = codec.parse(message)
        except CarrierProtocolError as exc:
            reasons.append(exc.reason)
            continue
        assert isinstance(event, AudioReceived | CallStarted | DtmfReceived | StreamEnded)
        if isinstance(event, AudioReceived):
            assert codec.started and len(event.payload) % 2 == 0 and event.payload == message[3:]
        if isinstance(event, CallStarted):
            assert event.call_id == str(uuid.UUID(bytes=message[3:]))
    # a reason names the protocol and quotes nothing of the payload
    assert all(reason.startswith("audiosocket: ") and len(reason) < 200 for reason in reasons)


def test_listener_specs_and_the_allow_list():
    assert parse_listen("0.0.0.0:9092") == Listener("0.0.0.0", 9092, "")
    assert parse_listen("127.0.0.1:9093=+15550100") == Listener("127.0.0.1", 9093, "+15550100")
    assert parse_listen("[::1]:9094=15550200") == Listener("::1", 9094, "15550200")
    for bad in ("9092", "host:port", ":9092", "h:70000", "h:9092=sip:x"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    loopback_only = AllowList(parse_allow(""))
    assert not loopback_only.configured
    assert loopback_only.allows("127.0.0.1") and loopback_only.allows("::1") and loopback_only.allows("::ffff:127.0.0.1")
    assert not loopback_only.allows("10.0.0.5") and not loopback_only.allows(None) and not loopback_only.allows("x")
    lan = AllowList(parse_allow("10.0.0.0/8, 192.0.2.7"))
    assert lan.allows("10.1.2.3") and lan.allows("::ffff:192.0.2.7") and not lan.allows("192.0.2.8")
    assert not lan.allows("127.0.0.1")  # configured: exactly the list
    with pytest.raises(ValueError, match="AUDIOSOCKET_ALLOW"):
        parse_allow("10.0.0.0/33")


def test_the_carrier_is_registered_paced_by_clock_with_a_stated_lead():
    assert AudioSocketCarrier in CARRIERS and AudioSocketCarrier.prefixes == ()
    capabilities = AudioSocketCarrier.capabilities
    assert capabilities.audio_formats == (L16_8K,) and not capabilities.marks and not capabilities.clear
    assert capabilities.playout_lead_ms == PLAYOUT_LEAD_MS == 40.0
    carrier = AudioSocketCarrier({"AUDIOSOCKET_ALLOW": "10.0.0.0/8"}, Listener("0.0.0.0", 9092, "+15550200"))
    assert carrier.secured and not AudioSocketCarrier({}).secured
    assert carrier.new_codec().parse(frame(KIND_UUID, CALL.bytes)).number == "+15550200"
    assert bytes((KIND_HANGUP, 0, 0)) == HANGUP_FRAME


def test_settings_read_and_check_the_listeners_at_start_up():
    from telephony_bridge.cli import build_parser
    from telephony_bridge.server.settings import Settings

    settings = Settings.from_environ({"AUDIOSOCKET_LISTEN": "127.0.0.1:9092=+15550100, [::1]:9093",
                                      "AUDIOSOCKET_ALLOW": "10.0.0.0/8"})
    assert settings.audiosocket_listeners == [Listener("127.0.0.1", 9092, "+15550100"), Listener("::1", 9093, "")]
    assert Settings.from_environ({}).audiosocket_listen == ()
    with pytest.raises(ValueError, match="AUDIOSOCKET_LISTEN"):
        Settings.from_environ({"AUDIOSOCKET_LISTEN": "nowhere"})
    with pytest.raises(ValueError, match="AUDIOSOCKET_ALLOW"):
        Settings.from_environ({"AUDIOSOCKET_ALLOW": "not-a-network"})
    for argv in (["serve", "--port", "0", "--audiosocket", "bad"],  # said plainly, before binding anything
                 ["serve", "--port", "0", "--workers", "2", "--audiosocket", "127.0.0.1:0"]):
        args = build_parser().parse_args(argv)  # not main(): it would reconfigure the process's logging
        assert args.run(args) == 2
