"""Every client event a TRANSLATION client can send, validated strictly against the `openai` SDK's
translation client-event union (extra fields forbidden), and what it refuses to send; the server
events it is built to read, parsed with the SDK's translation server-event union. No socket: the
client is built and its connection's send is captured."""

from __future__ import annotations

import base64
import binascii

import orjson
import pytest

from telephony_bridge.realtime import translation as wire
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_ga import GA_METHODS
from telephony_bridge.voxengine.realtime_translation import TRANSLATION_METHODS, TranslationRealtimeAPIClient
from tests.conformance.oracle import ConformanceError, validate_client_event, validate_server_event

UPDATES = [
    {"session": {"audio": {"output": {"language": "es"}}}},
    {"session": {"type": "translation", "model": "gpt-realtime-translate", "audio": {
        "input": {"transcription": {"model": "gpt-live-transcribe"}, "noise_reduction": {"type": "near_field", "strength": 0.5},
                  "format": {"type": "audio/pcmu"}},
        "output": {"language": "de", "format": {"type": "audio/pcm", "rate": 24000}}}}},
    {"session": {"input_audio_transcription": {"model": "gpt-live-transcribe"}, "input_audio_noise_reduction": None,
                 "input_audio_format": "g711_ulaw"}, "event_id": "evt_1"},
    {"session": {"audio": {"input": {"transcription": None}}}},
    {"session": {}},
]
REFUSED = [
    {"session": {"instructions": "Translate to Spanish."}},
    {"session": {"audio": {"output": {"language": "es", "voice": "marin"}}}},
    {"session": {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}},
    {"session": {"audio": {"input": {"transcription": {"model": "gpt-live-transcribe", "language": "en"}}}}},
    {"session": {"type": "realtime", "audio": {"output": {"language": "es"}}}},
    {"session": {"model": "gpt-realtime-2.1"}},
    {"session": {"tools": [], "output_modalities": ["audio"]}},
]


def captured_client() -> tuple[TranslationRealtimeAPIClient, list[dict]]:
    client = TranslationRealtimeAPIClient(url="ws://127.0.0.1:1/v1/realtime/translations", api_key=None,
                                          model="gpt-realtime-translate", dialect="ga", codec="pcm16",
                                          tasks=TaskOwner("conformance"))
    sent: list[dict] = []
    client._connection.send = sent.append  # type: ignore[method-assign]
    return client, sent


def test_every_session_update_and_the_close_validate_against_the_translation_union():
    client, sent = captured_client()
    for body in UPDATES:
        client.sessionUpdate(body)
    client.sessionClose()
    client.session_close({"event_id": "evt_again"})  # a second close sends nothing (the SDK's rule too)
    assert len(sent) == len(UPDATES) + 1
    for event in sent:
        validate_client_event(event, "translation")
    assert sent[0]["session"] == {"audio": {"output": {"language": "es"}}}
    assert sent[1]["session"] == {"audio": {"input": {"transcription": {"model": "gpt-live-transcribe"},
                                                      "noise_reduction": {"type": "near_field", "strength": 0.5}},
                                            "output": {"language": "de"}}}
    assert sent[2]["event_id"] == "evt_1"
    assert sent[2]["session"] == {"audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}, "noise_reduction": None}}}
    assert sent[-1] == {"type": "session.close"}
    # What a reconnect replays: every update merged, nested, and itself a valid event.
    replay = client._connection.session_update_for(client._connection.session_config, "evt_r")
    validate_client_event(replay, "translation")
    assert replay["session"]["audio"]["output"] == {"language": "de"}
    assert replay["session"]["audio"]["input"]["transcription"] is None
    assert client._connection.input_closed


@pytest.mark.parametrize("body", REFUSED)
def test_realtime_only_fields_are_refused_before_anything_is_sent(body):
    client, sent = captured_client()
    with pytest.raises(ValueError):
        client.sessionUpdate(body)
    assert sent == []


def test_the_oracle_itself_forbids_what_the_client_refuses():
    with pytest.raises(ConformanceError):
        validate_client_event({"type": "session.update", "session": {"audio": {"output": {"language": "es", "voice": "x"}}}}, "translation")
    with pytest.raises(ConformanceError):
        validate_client_event({"type": "input_audio_buffer.append", "audio": "AAAA"}, "translation")


@pytest.mark.parametrize("method", sorted(set(GA_METHODS) - TRANSLATION_METHODS))
def test_conversation_and_response_methods_raise_and_send_nothing(method):
    client, sent = captured_client()
    with pytest.raises(ValueError, match="translation session"):
        getattr(client, method)({})
    assert sent == []


def test_the_caller_audio_frame_is_the_translation_append():
    client, _ = captured_client()
    pcm = b"\x01\x00" * 480  # 20 ms of PCM16 24 kHz
    frame = client._connection.uplink.encode(binascii.b2a_base64(pcm, newline=False))
    event = orjson.loads(frame)
    validate_client_event(event, "translation")
    assert event["type"] == "session.input_audio_buffer.append"
    assert base64.b64decode(event["audio"]) == pcm
    assert frame == wire.encode_audio_append(base64.b64encode(pcm).decode())
    assert client._connection.uplink.model_format.rate == 24000


def test_a_translation_client_takes_only_pcm16():
    with pytest.raises(ValueError, match="PCM16 24 kHz"):
        TranslationRealtimeAPIClient(url="ws://127.0.0.1:1/v1/realtime/translations", api_key=None,
                                     model="gpt-realtime-translate", dialect="ga", codec="g711_ulaw", tasks=TaskOwner("t"))


SERVER_EVENTS = [
    {"type": "session.created", "event_id": "ev_1", "session": {
        "id": "sess_1", "type": "translation", "model": "gpt-realtime-translate", "expires_at": 1800000000,
        "audio": {"input": {"transcription": None, "noise_reduction": None}, "output": {"language": "es"}}}},
    {"type": "session.updated", "event_id": "ev_2", "session": {
        "id": "sess_1", "type": "translation", "model": "gpt-realtime-translate", "expires_at": 1800000000,
        "audio": {"output": {"language": "de"}}}},
    {"type": "session.input_transcript.delta", "event_id": "ev_3", "delta": "Good ", "elapsed_ms": 200},
    {"type": "session.output_transcript.delta", "event_id": "ev_4", "delta": "Buenos ", "elapsed_ms": 400},
    {"type": "session.output_audio.delta", "event_id": "ev_5", "delta": "AAAA", "format": "pcm16",
     "sample_rate": 24000, "channels": 1, "elapsed_ms": 400},
    {"type": "session.closed", "event_id": "ev_6"},
    {"type": "error", "event_id": "ev_7", "error": {"type": "invalid_request_error", "message": "no"}},
]


@pytest.mark.parametrize("event", SERVER_EVENTS, ids=lambda e: e["type"])
def test_server_events_the_client_reads_parse_with_the_sdk(event):
    validate_server_event(event, "translation")


def test_the_client_reads_the_sdks_audio_delta_type():
    client, _ = captured_client()
    assert client._connection.audio_delta_type == "session.output_audio.delta"


def test_translation_url():
    assert wire.translation_url("wss://api.openai.com/v1/realtime") == "wss://api.openai.com/v1/realtime/translations"
    assert wire.translation_url("ws://h:1/v1/realtime/?model=x&intent=transcription&k=v") == "ws://h:1/v1/realtime/translations?k=v"
    assert wire.translation_url("ws://h:1/v1/realtime/translations") == "ws://h:1/v1/realtime/translations"
