"""Telnyx and SignalWire carriers: codecs, answer documents, signatures, and fuzzed bad input (a
clear CarrierProtocolError and unchanged state, derandomized like tests/unit/test_fuzz_codecs.py)."""

from __future__ import annotations

import base64
import copy
import time
import urllib.parse

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.carriers.base import STREAM_TOKEN_PARAMETER, AnswerRefused, CallStarted, HttpRequest, MarkEchoed
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.registry import CARRIERS
from telephony_bridge.carriers.signalwire_carrier import SignalWireCarrier, SignalWireCodec
from telephony_bridge.carriers.telnyx import TelnyxCodec, call_control_id_of, call_id_of
from telephony_bridge.carriers.telnyx_carrier import TelnyxCarrier, connect_stream_texml, signature_is_valid
from telephony_bridge.testing.carrier_profile import BridgeAudio, BridgeClear, BridgeMark
from telephony_bridge.testing.profiles import PROFILES
from telephony_bridge.testing.profiles.signalwire import SignalWireProfile
from telephony_bridge.testing.profiles.telnyx import TelnyxProfile

FUZZ = settings(derandomize=True, database=None, max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
CCID = "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ"
STREAM = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"


def telnyx_start(**start: object) -> str:
    body = {"call_control_id": CCID, "from": "+15550199", "to": "+15550100",
            "custom_parameters": {STREAM_TOKEN_PARAMETER: "tok", "x": "1"},
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}} | start
    return orjson.dumps({"event": "start", "sequence_number": "1", "stream_id": STREAM, "start": body}).decode()


def telnyx_media(payload: bytes = b"\xff" * 160, ts: str = "20", stream: str = STREAM) -> str:
    return orjson.dumps({"event": "media", "sequence_number": "2", "stream_id": stream,
                         "media": {"track": "inbound", "chunk": "1", "timestamp": ts,
                                   "payload": base64.b64encode(payload).decode()}}).decode()


def test_carriers_and_profiles_are_registered_once_each():
    names = [c.name for c in CARRIERS]
    assert {"twilio", "telnyx", "signalwire"} <= set(names) and len(names) == len(set(names))
    assert {"twilio", "telnyx", "signalwire"} <= set(PROFILES)


def test_telnyx_codec_reads_a_call_and_writes_media_mark_clear():
    codec = TelnyxCodec()
    assert codec.parse('{"event":"connected","version":"1.0.0"}') is None
    started = codec.parse(telnyx_start())
    assert isinstance(started, CallStarted) and started.token == "tok" and started.custom_parameters == {"x": "1"}
    assert started.call_id == call_id_of(CCID) and call_control_id_of(started.call_id) == CCID
    assert started.audio_format == ULAW_8K and codec.started
    frame = codec.parse(telnyx_media(ts="40"))
    assert frame.payload == b"\xff" * 160 and frame.timestamp_ms == 40
    assert codec.parse(telnyx_media(ts="20")).timestamp_ms is None  # a late frame: no jump back in time
    dtmf = '{"event":"dtmf","sequence_number":"7","stream_id":"%s","dtmf":{"digit":"5"}}' % STREAM
    assert codec.parse(dtmf).digit == "5" and codec.parse(dtmf) is None  # the same press twice: once
    assert codec.parse('{"event":"mark","stream_id":"%s","mark":{"name":"m1"}}' % STREAM) == MarkEchoed("m1")
    assert orjson.loads(codec.audio(b"\x01\x02")) == {"event": "media", "media": {"payload": "AQI="}}
    assert orjson.loads(codec.mark("g1")) == {"event": "mark", "mark": {"name": "g1"}}
    assert orjson.loads(codec.clear()) == {"event": "clear"}
    assert codec.parse('{"event":"stop","stream_id":"%s","stop":{}}' % STREAM).reason == "caller hung up"
    with pytest.raises(CarrierProtocolError, match="after stop"):
        codec.parse(telnyx_media())


@pytest.mark.parametrize("bad, reason", [
    (telnyx_start(call_control_id="../etc"), "call control id"),
    (telnyx_start(media_format={"encoding": "OPUS", "sample_rate": 16000, "channels": 1}), "unsupported media format"),
    (telnyx_start(custom_parameters={"a": 1}), "custom_parameters"),
    (telnyx_media(), "before start"),
    ("[]", "JSON object"),
    ('{"event":"error","payload":{"code":100002,"title":"Unknown error"}}', "Telnyx reported"),
])
def test_telnyx_codec_refuses_bad_frames_plainly(bad, reason):
    with pytest.raises(CarrierProtocolError, match=reason):
        TelnyxCodec().parse(bad)


def _frames() -> st.SearchStrategy[str | bytes]:
    good = st.sampled_from([telnyx_start(), telnyx_media(), telnyx_media(stream="other"),
                            '{"event":"mark","stream_id":"%s","mark":{"name":"m"}}' % STREAM,
                            '{"event":"dtmf","stream_id":"%s","dtmf":{"digit":"x"}}' % STREAM])
    mutated = st.tuples(good, st.integers(0, 400), st.text(max_size=3)).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:])
    return st.one_of(good, mutated, st.text(max_size=50), st.binary(max_size=20),
                     st.dictionaries(st.text(max_size=8), st.none() | st.integers(-2**62, 2**62) | st.text(max_size=8)).map(
                         lambda d: orjson.dumps(d).decode()))


@FUZZ
@given(st.lists(_frames(), max_size=12))
def test_telnyx_codec_fuzz_refuses_with_a_reason_and_keeps_its_state(frames):
    codec = TelnyxCodec()
    for frame in frames:
        before = (codec._stream_id, codec._stopped, codec._last_ts, set(codec._dtmf_seen))
        try:
            codec.parse(frame)
        except CarrierProtocolError as exc:
            assert exc.reason.startswith("telnyx") and len(exc.reason) < 400
            assert (codec._stream_id, codec._stopped, codec._last_ts, set(codec._dtmf_seen)) == before


@FUZZ
@given(st.lists(_frames(), max_size=12))
def test_signalwire_codec_fuzz_refuses_with_a_reason_and_keeps_its_state(frames):
    codec = SignalWireCodec()
    for frame in frames:
        before = (codec._parser.stream_sid, codec._parser.stopped)
        try:
            codec.parse(frame)
        except CarrierProtocolError as exc:
            assert exc.reason.startswith("twilio") and (codec._parser.stream_sid, codec._parser.stopped) == before


def test_signalwire_codec_takes_uuids_where_twilio_takes_sids():
    profile = SignalWireProfile()
    call_id, stream_id = profile.new_call_id(), profile.new_stream_id()
    codec = SignalWireCodec()
    for message in profile.start_messages(call_id, stream_id, _target({STREAM_TOKEN_PARAMETER: "t"})):
        event = codec.parse(message)
    assert isinstance(event, CallStarted) and event.call_id == call_id and event.token == "t"
    assert codec.parse(profile.audio_message(b"\x7f" * 160, 2, 0)).payload == b"\x7f" * 160
    assert profile.parse(codec.mark("m")) == BridgeMark("m") and profile.parse(codec.clear()) == BridgeClear()
    with pytest.raises(CarrierProtocolError, match="call id"):
        SignalWireCodec().parse(profile.start_messages("CA" + "0" * 32, stream_id, _target({}))[1])


def _target(params):
    from telephony_bridge.testing.carrier_profile import StreamTarget
    return StreamTarget("wss://h/x", params)


def test_telnyx_profile_and_codec_agree_both_ways():
    profile, codec = TelnyxProfile(), TelnyxCodec()
    call_id = profile.new_call_id()
    for message in profile.start_messages(call_id, profile.new_stream_id(), _target({STREAM_TOKEN_PARAMETER: "t"})):
        event = codec.parse(message)
    assert event.call_id == call_id and event.token == "t"
    assert profile.parse(codec.audio(b"ab")) == BridgeAudio(b"ab")
    assert codec.parse(profile.mark_echo("m", 5)) == MarkEchoed("m")


# -- answers and signatures -----------------------------------------------------------------------

def _request(form, headers=None, body=None, url="https://bridge.example.com/telnyx/incoming-call"):
    encoded = urllib.parse.urlencode(form).encode() if body is None else body
    return HttpRequest("POST", url, headers or {}, form=form, form_lists={k: [v] for k, v in form.items()},
                       body=encoded)


def test_telnyx_signature_ed25519_fails_closed():
    key = SigningKey.generate()
    public = base64.b64encode(bytes(key.verify_key)).decode()
    body, ts = b"CallSid=x&To=%2B1", str(int(time.time()))
    sig = base64.b64encode(key.sign(ts.encode() + b"|" + body).signature).decode()
    assert signature_is_valid(public, body, ts, sig)
    assert not signature_is_valid(public, body + b"&x=1", ts, sig)  # body altered
    assert not signature_is_valid(public, body, str(int(ts) - 301), sig)  # too old (and re-signed? no)
    assert not signature_is_valid(public, body, ts, None) and not signature_is_valid("not-a-key", body, ts, sig)
    assert not signature_is_valid(public, body, "12a", sig)

    seed = base64.b64encode(bytes(key)).decode()
    carrier = TelnyxCarrier({"TELNYX_PUBLIC_KEY": public})
    profile = TelnyxProfile(secret=seed)
    spec = profile.answer_request(profile.new_call_id(), "+15550199", "+15550100")
    answer = carrier.read_answer(_request(dict(spec.form), dict(spec.headers)))
    assert answer.number == "+15550100" and ":" not in answer.call_id
    with pytest.raises(AnswerRefused) as refused:
        carrier.read_answer(_request(dict(spec.form)))
    assert refused.value.forbidden
    broken = TelnyxCarrier({"TELNYX_PUBLIC_KEY": "garbage"})  # a bad key refuses everything
    assert broken.secured
    with pytest.raises(AnswerRefused):
        broken.read_answer(_request(dict(spec.form), dict(spec.headers)))


def test_telnyx_texml_carries_the_token_and_reads_back():
    texml = connect_stream_texml("wss://bridge.example.com/telnyx/media-stream", "T0K")
    target = TelnyxProfile().read_answer(200, "text/xml", texml, "")
    assert target.url == "wss://bridge.example.com/telnyx/media-stream?bridge_token=T0K"
    assert target.parameters == {STREAM_TOKEN_PARAMETER: "T0K"} and 'bidirectionalMode="rtp"' in texml
    with pytest.raises(ValueError):
        connect_stream_texml("https://x/y?q=1", "t")
    with pytest.raises(AnswerRefused):
        TelnyxCarrier({}).read_answer(_request({"CallSid": "CA123", "To": "+1"}))


def test_signalwire_signature_uses_its_own_header_and_signing_key():
    carrier = SignalWireCarrier({"SIGNALWIRE_SIGNING_KEY": "PSK_secret"})
    url = "https://bridge.example.com/signalwire/incoming-call"
    profile = SignalWireProfile(base_url="https://bridge.example.com", secret="PSK_secret")
    spec = profile.answer_request(profile.new_call_id(), "+15550199", "+15550100")
    assert "X-SignalWire-Signature" in spec.headers
    headers = {k.lower(): v for k, v in spec.headers.items()}
    assert carrier.read_answer(_request(dict(spec.form), headers, url=url)).number == "+15550100"
    twilio_header_only = {"x-twilio-signature": headers["x-signalwire-signature"]}
    for bad in ({}, twilio_header_only, {"x-signalwire-signature": "AAAA"}):
        with pytest.raises(AnswerRefused):
            carrier.read_answer(_request(dict(spec.form), bad, url=url))
    tampered = copy.deepcopy(dict(spec.form)) | {"To": "+19990000"}
    with pytest.raises(AnswerRefused):
        carrier.read_answer(_request(tampered, headers, url=url))
