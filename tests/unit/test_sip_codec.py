"""SipCodec: the RTP stream's messages to and from the session, sans-I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_bridge.audio.formats import ALAW_8K, L16_8K, ULAW_8K
from telephony_bridge.carriers.base import AudioReceived, CallStarted, DtmfReceived, MarkEchoed
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.sip.codec import SIP_CAPABILITIES, SipCodec, audio_format_for, start_message


def test_the_start_round_trips_and_audio_marks_and_digits_parse():
    start = CallStarted("c1", "c1", ALAW_8K, {"X-Account": "42"}, caller="+1555", number="+1666")
    codec = SipCodec()
    with pytest.raises(CarrierProtocolError, match="before the start"):
        codec.parse(b"\xd5" * 160)
    assert not codec.started
    assert codec.parse(start_message(start)) == start and codec.started
    assert codec.parse(b"\xd5" * 160) == AudioReceived(b"\xd5" * 160)
    assert codec.parse("dtmf #") == DtmfReceived("#")
    assert codec.parse("dtmf a") == DtmfReceived("A")
    assert codec.parse("mark g1.2") == MarkEchoed("g1.2")
    with pytest.raises(CarrierProtocolError, match="second start"):
        codec.parse(start_message(start))
    for bad in ("dtmf 55", "dtmf x", "hello", ""):
        with pytest.raises(CarrierProtocolError):
            codec.parse(bad)
    with pytest.raises(CarrierProtocolError):
        codec.parse(b"")


def test_what_the_session_writes_passes_through_as_the_stream_takes_it():
    codec = SipCodec()
    payload = b"\x01" * 321
    assert codec.audio(payload) is payload  # no copy on the hot path
    assert (codec.mark("g0.0"), codec.clear(), codec.dtmf("12#")) == ("mark g0.0", "clear", "dtmf 12#")
    with pytest.raises(ValueError):
        codec.dtmf("1x")
    with pytest.raises(ValueError):
        start_message(CallStarted("c", "c", L16_8K))


def test_payload_types_and_capabilities():
    assert audio_format_for(0) == ULAW_8K and audio_format_for(8) == ALAW_8K
    with pytest.raises(ValueError):
        audio_format_for(9)
    caps = SIP_CAPABILITIES
    assert caps.marks and caps.clear and caps.dtmf_out and caps.audio_formats == (ULAW_8K, ALAW_8K)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=50), st.text(max_size=80), st.text(max_size=80).map(lambda t: "start " + t)))
def test_fuzzed_messages_raise_only_carrier_protocol_error(message):
    codec = SipCodec()
    for _ in range(2):  # before and (when a start got through) after the start
        try:
            codec.parse(message)
        except CarrierProtocolError:
            pass
