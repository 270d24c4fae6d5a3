"""Vonage, Plivo and Exotel: codecs (unit and fuzzed), answer documents, signatures (valid,
tampered, missing; fail closed), and round trips between each simulator profile and the bridge's codec."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
import uuid
import xml.etree.ElementTree as ET

import jwt
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

from telephony_bridge.audio.formats import L16_8K, L16_16K, ULAW_8K
from telephony_bridge.carriers.base import (
    AnswerRefused,
    CallStarted,
    DtmfReceived,
    HttpRequest,
    MarkEchoed,
    StreamEnded,
)
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.exotel import ExotelCodec
from telephony_bridge.carriers.exotel_carrier import ExotelCarrier
from telephony_bridge.carriers.plivo import PlivoCodec
from telephony_bridge.carriers.plivo_carrier import PlivoCarrier
from telephony_bridge.carriers.vonage import VonageCodec
from telephony_bridge.carriers.vonage_carrier import VonageCarrier
from telephony_bridge.testing.carrier_profile import BridgeAudio, BridgeClear, BridgeMark, StreamTarget
from telephony_bridge.testing.profiles import PROFILES

CALL = str(uuid.uuid4())
TOKEN = "v1.token.mac"
URL = "https://bridge.example.com/plivo/incoming-call"


# --- codecs through their profiles: the profile's messages parse into the expected events -----------

def _started(carrier: str) -> tuple[object, object, CallStarted]:
    profile = PROFILES[carrier]()
    codec = {"vonage": VonageCodec, "plivo": PlivoCodec, "exotel": ExotelCodec}[carrier]()
    target = StreamTarget("wss://h/x", {"bridge_token": TOKEN, "call_uuid": CALL} if carrier == "vonage"
                          else {"bridge_token": TOKEN})
    events = [codec.parse(message) for message in profile.start_messages(CALL, "stream-0001", target)]
    started = [event for event in events if event is not None]
    assert len(started) == 1 and isinstance(started[0], CallStarted)
    return profile, codec, started[0]


@pytest.mark.parametrize("carrier,audio_format", [("vonage", L16_16K), ("plivo", ULAW_8K), ("exotel", L16_8K)])
def test_profile_messages_parse_into_the_expected_events(carrier, audio_format):
    profile, codec, start = _started(carrier)
    # Plivo's token rides in the stream URL, which the session reads; the others' in the start.
    assert start.call_id == CALL and start.audio_format == audio_format
    assert start.token == (None if carrier == "plivo" else TOKEN)
    assert codec.started
    frame = (bytes(range(256)) * 3)[: audio_format.bytes_per_ms * 20]
    audio = codec.parse(profile.audio_message(frame, 2, 20))
    assert type(audio) is codec.audio_event and audio.payload == frame
    assert codec.parse(profile.dtmf_message("5", 3)) == DtmfReceived("5")
    assert codec.parse(profile.mark_echo("g0.1", 4)) == MarkEchoed("g0.1")
    stop = profile.stop_message(5)
    if stop is not None:
        assert isinstance(codec.parse(stop), StreamEnded)


@pytest.mark.parametrize("carrier", ["vonage", "plivo", "exotel"])
def test_codec_output_parses_with_the_profile(carrier):
    profile, codec, start = _started(carrier)
    frame_bytes = start.audio_format.bytes_per_ms * 20
    out = codec.audio(b"\x01\x02" * frame_bytes)  # two frames' worth
    event = profile.parse(out)
    assert isinstance(event, BridgeAudio) and len(event.payload) % frame_bytes == 0 and event.payload
    assert profile.parse(codec.mark("g3.7")) == BridgeMark("g3.7")
    assert isinstance(profile.parse(codec.clear()), BridgeClear)


def test_vonage_and_exotel_send_whole_frames_and_carry_the_rest():
    _, vonage, _ = _started("vonage")
    assert vonage.audio(b"\x01" * 600) == b""  # under a frame: nothing yet
    assert vonage.audio(b"\x02" * 640) == b"\x01" * 600 + b"\x02" * 40  # the carried 600 go first
    vonage.clear()
    assert vonage.audio(b"\x03" * 640) == b"\x03" * 640  # a clear drops what was carried
    _, exotel, _ = _started("exotel")

    def media(payload: bytes) -> bytes:
        return base64.b64decode(json.loads(exotel.audio(payload))["media"]["payload"])

    assert media(b"\x01" * 700) == b"\x01" * 640  # 60 bytes (under half a chunk) wait
    assert media(b"\x02" * 260) == b"\x01" * 60 + b"\x02" * 260  # and go first
    assert media(b"\x03" * 500) == b"\x03" * 500 + bytes(140)  # 180 over a chunk: padded, nothing waits
    assert media(b"\x04" * 100) == b"\x04" * 100 + bytes(220)  # never an empty message


def test_plivo_play_audio_is_what_plivo_documents():
    _, codec, _ = _started("plivo")
    message = json.loads(codec.audio(b"\xff" * 160))
    assert message == {"event": "playAudio", "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000,
                                                        "payload": base64.b64encode(b"\xff" * 160).decode()}}
    assert json.loads(codec.clear()) == {"event": "clearAudio", "streamId": "stream-0001"}
    assert json.loads(codec.mark("g0.0")) == {"event": "checkpoint", "streamId": "stream-0001", "name": "g0.0"}
    assert codec.parse('{"event":"clearedAudio","streamId":"stream-0001","sequenceNumber":9}') is None


@pytest.mark.parametrize("carrier", ["vonage", "plivo", "exotel"])
def test_messages_before_the_start_are_refused(carrier):
    profile = PROFILES[carrier]()
    codec = {"vonage": VonageCodec, "plivo": PlivoCodec, "exotel": ExotelCodec}[carrier]()
    with pytest.raises(CarrierProtocolError):
        codec.parse(profile.audio_message(bytes(320), 1, 0) if carrier != "vonage" else bytes(640))
    with pytest.raises(CarrierProtocolError):
        codec.parse(profile.mark_echo("g0.0", 1))
    assert not codec.started
    with pytest.raises(RuntimeError):
        codec.audio(b"\x00\x00")


# --- fuzz: bad input is CarrierProtocolError and changes no state --------------------------------

def _state(codec: object) -> object:
    return copy.deepcopy({slot: getattr(codec, slot) for slot in type(codec).__slots__})


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                            max_leaves=8)
_CODECS = {"vonage": VonageCodec, "plivo": PlivoCodec, "exotel": ExotelCodec}


def _valid_messages(carrier: str) -> list[str | bytes]:
    """What the carrier really sends, in order: the fuzzer starts from these and breaks them."""
    profile = PROFILES[carrier]()
    target = StreamTarget("wss://h/x", {"bridge_token": TOKEN, "call_uuid": CALL})
    frame = bytes(range(160)) if carrier == "plivo" else bytes(range(256)) + bytes(64)
    messages = [*profile.start_messages(CALL, "stream-0001", target), profile.audio_message(frame, 2, 20),
                profile.dtmf_message("7", 3), profile.mark_echo("g0.0", 4)]
    stop = profile.stop_message(5)
    return [m for m in (*messages, stop) if m is not None]


def _mutate(message: str | bytes, path_key: str, value: object, drop: bool) -> str | bytes:
    if isinstance(message, bytes):
        return message[: len(message) // 2 + 1]  # an odd or short frame
    document = json.loads(message)
    target = document
    for key in ("start", "media", "dtmf", "mark", "payload"):
        if isinstance(target.get(key), dict):
            target = target[key]
            break
    keys = sorted(target) or [path_key]
    key = keys[len(path_key) % len(keys)]
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    return json.dumps(document)


@st.composite
def _message_lists(draw: st.DrawFn, carrier: str) -> list[str | bytes]:
    valid = _valid_messages(carrier)
    out: list[str | bytes] = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["valid", "mutated", "mutated", "garbage"]))
        base = draw(st.sampled_from(valid))
        if kind == "valid":
            out.append(base)
        elif kind == "mutated":
            out.append(_mutate(base, draw(st.text(max_size=6)), draw(_json_values), draw(st.booleans())))
        else:
            out.append(draw(st.one_of(st.binary(max_size=40), st.text(max_size=40),
                                      st.builds(json.dumps, st.dictionaries(st.text(max_size=8), _json_values, max_size=4)))))
    return out


def _state(codec: object) -> object:
    return copy.deepcopy({slot: getattr(codec, slot) for slot in type(codec).__slots__})


@pytest.mark.parametrize("carrier", ["vonage", "plivo", "exotel"])
@settings(derandomize=True, database=None, max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_bad_input_is_a_protocol_error_and_changes_nothing(carrier, data):
    codec = _CODECS[carrier]()
    events = (CallStarted, DtmfReceived, MarkEchoed, StreamEnded, codec.audio_event, type(None))
    for message in data.draw(_message_lists(carrier)):
        before, started = _state(codec), codec.started
        try:
            event = codec.parse(message)
        except CarrierProtocolError as exc:
            reason = exc.reason
            assert reason and len(reason) < 300  # short: never a whole payload in a log line
            assert _state(codec) == before, "a refused message changed the codec"
            continue
        assert isinstance(event, events), event
        if isinstance(event, CallStarted):
            assert not started and codec.started and isinstance(event.call_id, str) and event.call_id
        elif event is not None:
            assert codec.started, "only a started stream carries events"


# --- answer documents and signatures --------------------------------------------------------------

def _vonage_jwt(secret: str, body: bytes = b"", **claims: object) -> str:
    payload: dict[str, object] = {"iat": int(time.time()), "jti": str(uuid.uuid4()), "iss": "Vonage", **claims}
    if body:
        payload["payload_hash"] = hashlib.sha256(body).hexdigest()
    return "Bearer " + jwt.encode(payload, secret, algorithm="HS256")


def _vonage_request(body: bytes, authorization: str | None) -> HttpRequest:
    fields = json.loads(body)
    headers = {"authorization": authorization} if authorization else {}
    return HttpRequest("POST", "https://bridge.example.com/vonage/incoming-call", headers, form=fields,
                       form_lists={k: [v] for k, v in fields.items()}, body=body)


def test_vonage_answers_an_ncco_connecting_the_websocket_with_the_token_in_its_headers():
    carrier = VonageCarrier({"VONAGE_SIGNATURE_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret-32"})
    body = json.dumps({"uuid": CALL, "conversation_uuid": "CON-1", "from": "15550199", "to": "15550100"}).encode()
    call = carrier.read_answer(_vonage_request(body, _vonage_jwt("s3cret-s3cret-s3cret-s3cret-s3cret-32", body)))
    assert (call.call_id, call.caller, call.number) == (CALL, "+15550199", "+15550100")
    document = carrier.answer_document("wss://bridge.example.com/vonage/media-stream", TOKEN)
    assert document.media_type == "application/json"
    [connect] = json.loads(document.body)
    [endpoint] = connect["endpoint"]
    assert connect["action"] == "connect" and endpoint["type"] == "websocket"
    assert endpoint["uri"] == "wss://bridge.example.com/vonage/media-stream"
    assert endpoint["content-type"] == "audio/l16;rate=16000"
    assert endpoint["headers"] == {"bridge_token": TOKEN, "call_uuid": CALL}
    assert json.loads(carrier.reject_document().body) == []


@pytest.mark.parametrize("case", ["missing", "wrong secret", "tampered body", "not bearer", "garbage"])
def test_vonage_refuses_unsigned_or_tampered_webhooks(case):
    secret = "s3cret-s3cret-s3cret-s3cret-s3cret-32"
    carrier = VonageCarrier({"VONAGE_SIGNATURE_SECRET": secret})
    body = json.dumps({"uuid": CALL, "from": "15550199", "to": "15550100"}).encode()
    authorization = {
        "missing": None, "wrong secret": _vonage_jwt("another-secret-entirely-another-32b", body),
        "tampered body": _vonage_jwt(secret, body.replace(b"15550100", b"15550999")),
        "not bearer": _vonage_jwt(secret, body).replace("Bearer", "Basic"), "garbage": "Bearer x.y.z",
    }[case]
    with pytest.raises(AnswerRefused) as refused:
        carrier.read_answer(_vonage_request(body, authorization))
    assert refused.value.forbidden and refused.value.status == 403


def test_vonage_stale_signature_is_refused():
    secret = "s3cret-s3cret-s3cret-s3cret-s3cret-32"
    carrier = VonageCarrier({"VONAGE_SIGNATURE_SECRET": secret})
    body = json.dumps({"uuid": CALL, "to": "15550100"}).encode()
    stale = "Bearer " + jwt.encode({"iat": int(time.time()) - 3600, "payload_hash": hashlib.sha256(body).hexdigest()},
                                   secret, algorithm="HS256")
    with pytest.raises(AnswerRefused):
        carrier.read_answer(_vonage_request(body, stale))


def _plivo_request(form: dict[str, str], token: str, nonce: str = "12345678901234567890") -> HttpRequest:
    signature = get_signature_v3(token.encode(), construct_post_url(URL, dict(form)), nonce.encode()).decode()
    headers = {"x-plivo-signature-v3": signature, "x-plivo-signature-v3-nonce": nonce}
    return HttpRequest("POST", URL, headers, form=form, form_lists={k: [v] for k, v in form.items()})


def test_plivo_answers_a_bidirectional_stream_and_checks_the_v3_signature():
    carrier = PlivoCarrier({"PLIVO_AUTH_TOKEN": "plivo-token"})
    form = {"CallUUID": CALL, "From": "15550199", "To": "15550100", "Direction": "inbound"}
    call = carrier.read_answer(_plivo_request(form, "plivo-token"))
    assert (call.call_id, call.number) == (CALL, "+15550100")
    root = ET.fromstring(carrier.answer_document("wss://bridge.example.com/plivo/media-stream", TOKEN).body)
    stream = root.find("Stream")
    assert stream is not None and stream.get("bidirectional") == "true" and stream.get("keepCallAlive") == "true"
    assert stream.get("contentType") == "audio/x-mulaw;rate=8000"
    assert stream.text == f"wss://bridge.example.com/plivo/media-stream?bridge_token={TOKEN}"
    assert ET.fromstring(carrier.reject_document().body).find("Hangup") is not None


@pytest.mark.parametrize("case", ["missing", "tampered", "wrong token", "no nonce"])
def test_plivo_refuses_unsigned_or_tampered_requests(case):
    carrier = PlivoCarrier({"PLIVO_AUTH_TOKEN": "plivo-token"})
    form = {"CallUUID": CALL, "From": "15550199", "To": "15550100"}
    request = _plivo_request(form, "another-token" if case == "wrong token" else "plivo-token")
    headers = dict(request.headers)
    if case == "missing":
        headers = {}
    elif case == "no nonce":
        del headers["x-plivo-signature-v3-nonce"]
    fields = dict(form, To="15550999") if case == "tampered" else form
    request = HttpRequest("POST", URL, headers, form=fields, form_lists={k: [v] for k, v in fields.items()})
    with pytest.raises(AnswerRefused) as refused:
        carrier.read_answer(request)
    assert refused.value.forbidden
    assert not carrier.stream_allowed("wss://bridge.example.com/plivo/media-stream",
                                      {"x-plivo-signature-v3": "bad", "x-plivo-signature-v3-nonce": "1"})


def test_exotel_answers_the_stream_url_and_fails_closed_on_basic_auth_and_the_allow_list():
    carrier = ExotelCarrier({"EXOTEL_STREAM_AUTH": "exo:pa ss", "EXOTEL_ALLOW": "10.0.0.0/8"})
    assert carrier.secured
    form = {"CallSid": uuid.uuid4().hex, "CallFrom": "09876543210", "CallTo": "15550100"}
    good = "Basic " + base64.b64encode(b"exo:pa ss").decode()

    def request(authorization: str | None, host: str) -> HttpRequest:
        return HttpRequest("GET", "https://b/exotel/incoming-call", {"authorization": authorization} if authorization else {},
                           form=form, client_host=host)

    call = carrier.read_answer(request(good, "10.1.2.3"))
    assert (call.caller, call.number) == ("+919876543210", "+15550100")
    for authorization, host in [(None, "10.1.2.3"), ("Basic " + base64.b64encode(b"exo:wrong").decode(), "10.1.2.3"),
                                (good, "192.0.2.1"), (good, "not-an-ip")]:
        with pytest.raises(AnswerRefused) as refused:
            carrier.read_answer(request(authorization, host))
        assert refused.value.forbidden
    url = json.loads(carrier.answer_document("wss://bridge.example.com/exotel/media-stream", TOKEN).body)["url"]
    assert url == f"wss://exo:pa%20ss@bridge.example.com/exotel/media-stream?bridge_token={TOKEN}"
    assert carrier.stream_allowed(url, {"authorization": good})
    assert not carrier.stream_allowed(url, {})
    assert not ExotelCarrier({}).secured and not ExotelCarrier({}).stream_allowed(url, {})
    with pytest.raises(ValueError):
        ExotelCarrier({"EXOTEL_ALLOW": "not-a-network"})


# --- signed profiles: what the simulator sends when it has the carrier's secret, the carrier accepts --

def _as_request(spec, base_url: str, client_host: str = "127.0.0.1") -> HttpRequest:
    body = orjson.dumps(spec.json) if spec.json is not None else b""
    form = dict(spec.json) if spec.json is not None else dict(spec.form)
    return HttpRequest(spec.method, base_url + spec.path, {k.lower(): v for k, v in spec.headers.items()},
                       form=form, form_lists={k: [v] for k, v in form.items()}, client_host=client_host, body=body)


def test_signed_profiles_are_accepted_and_their_tampered_requests_refused():
    base = "https://bridge.example.com"
    secret = "vonage-signature-secret-of-32-bytes!"
    cases = [
        (VonageCarrier({"VONAGE_SIGNATURE_SECRET": secret}), PROFILES["vonage"](secret=secret), "to"),
        (PlivoCarrier({"PLIVO_AUTH_TOKEN": "plivo-token"}), PROFILES["plivo"](secret="plivo-token", base_url=base), "To"),
        (ExotelCarrier({"EXOTEL_STREAM_AUTH": "exo:secret"}), PROFILES["exotel"](secret="exo:secret"), None),
    ]
    for carrier, profile, number_field in cases:
        call_id = uuid.uuid4().hex if carrier.name == "exotel" else CALL
        request = _as_request(profile.answer_request(call_id, "+15550199", "+15550100"), base)
        assert carrier.read_answer(request).number == "+15550100", carrier.name
        if number_field is not None:  # Basic auth covers no field: Exotel's numbers are only as good as its network
            form = dict(request.form, **{number_field: "15550999"})
            body = orjson.dumps(form) if request.body else b""
            tampered = HttpRequest(request.method, request.url, request.headers, form=form,
                                   form_lists={k: [v] for k, v in form.items()}, body=body)
            with pytest.raises(AnswerRefused):
                carrier.read_answer(tampered)


class _FakeVoice:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def hangup(self, uuid: str) -> None:
        self.calls.append(("hangup", uuid))

    def transfer_call_ncco(self, uuid: str, ncco: list) -> None:
        self.calls.append(("transfer", [action.model_dump(by_alias=True, exclude_none=True, mode="json") for action in ncco]))


class _FakePlivoCalls:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, call_uuid: str) -> None:
        self.deleted.append(call_uuid)


async def test_call_control_goes_through_the_sdks():
    from telephony_bridge.carriers.plivo_carrier import PlivoCallControl
    from telephony_bridge.carriers.vonage_carrier import VonageCallControl

    voice = _FakeVoice()
    control = VonageCallControl(voice)
    await control.hangup(CALL)
    await control.transfer(CALL, "+14155550100", "+14155550101")
    assert voice.calls == [("hangup", CALL), ("transfer", [{"action": "connect", "from": "14155550101", "endpoint": [
        {"type": "phone", "number": "14155550100"}]}])]
    calls = _FakePlivoCalls()
    plivo_control = PlivoCallControl(type("Client", (), {"calls": calls})())
    await plivo_control.hangup(CALL)
    assert calls.deleted == [CALL]
    with pytest.raises(NotImplementedError):
        await plivo_control.transfer(CALL, "+14155550100", None)
    assert VonageCarrier({}).call_control() is None and PlivoCarrier({"PLIVO_AUTH_TOKEN": "t"}).call_control() is None
    assert ExotelCarrier({}).call_control() is None
