"""Every client event the GA `OpenAI.RealtimeAPIClient` can send, for each of its methods, both
codecs and both session types it opens, validated strictly against the `openai` SDK's GA models.
No socket: the client is built and its connection's send is captured. Both transports: a WebRTC
client's events go on the oai-events data channel through the same send (and
tests/integration/test_webrtc_model_leg.py validates the ones that really crossed it)."""

from __future__ import annotations

import pytest

from telephony_bridge.realtime.dialect import CODECS
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_ga import (
    GA_METHODS,
    GARealtimeAPIClient,
    RealtimeAPIClientType,
)
from tests.conformance.oracle import validate_client_event

TOOL = {"type": "function", "name": "check_availability", "description": "Whether a room is free.",
        "parameters": {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]}}
USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}

# method -> bodies a scenario may pass (GA-shaped as Voximplant documents, and Beta-shaped leftovers).
REALTIME_CALLS = {
    "sessionUpdate": [
        {"session": {"type": "realtime", "instructions": "Be brief.", "tools": [TOOL], "tool_choice": "auto",
                     "audio": {"input": {"format": {"type": "audio/pcma"}, "turn_detection": {"type": "semantic_vad"},
                                         "transcription": {"model": "gpt-4o-mini-transcribe"}},
                               "output": {"voice": "marin", "speed": 1.1}}, "output_modalities": ["audio"]}},
        {"session": {"instructions": "Beta-shaped", "voice": "alloy", "turn_detection": {"silence_duration_ms": 400},
                     "input_audio_format": "g711_alaw", "modalities": ["audio", "text"], "temperature": 0.7}},
        {"session": {}, "event_id": "evt_1"},
    ],
    "inputAudioBufferCommit": [{}, None, {"event_id": "evt_2"}],
    "inputAudioBufferClear": [{}, None],
    "conversationItemCreate": [{"item": USER}, {"previous_item_id": "item_1", "item": USER},
                               {"item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"}},
                               {"item": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}}],
    "conversationItemRetrieve": [{"item_id": "item_1"}],
    "conversationItemTruncate": [{"item_id": "item_1", "content_index": 0, "audio_end_ms": 1234.9}],
    "conversationItemDelete": [{"item_id": "item_1"}],
    "responseCreate": [{}, None, {"response": {"instructions": "Greet.", "tool_choice": "check_availability"}},
                       {"response": {"modalities": ["text"], "max_response_output_tokens": 200}}],
    "responseCancel": [{}, None, {"response_id": "resp_1"}],
}
TRANSCRIPTION_CALLS = {
    "sessionUpdate": [
        {"session": {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-live-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad"}, "noise_reduction": {"type": "near_field"}}}}},
        {"session": {"input_audio_transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": None}},
    ],
    "inputAudioBufferCommit": [{}],
    "inputAudioBufferClear": [{}],
}


def captured_client(client_type: RealtimeAPIClientType, codec: str, transport: str = "websocket") -> tuple[GARealtimeAPIClient, list[dict]]:
    client = GARealtimeAPIClient(client_type=client_type, url="ws://127.0.0.1:1/v1/realtime", api_key=None,
                                 model="gpt-live-transcribe" if client_type is RealtimeAPIClientType.TRANSCRIPTION else "gpt-realtime-2.1",
                                 dialect="ga", codec=codec, tasks=TaskOwner("conformance"), transport=transport)
    sent: list[dict] = []
    client._connection.send = sent.append  # type: ignore[method-assign]
    client._send(client._connection.session_update_for({}), own=True)  # what connect() sends first
    return client, sent


def test_every_method_that_sends_is_covered():
    assert set(REALTIME_CALLS) == set(GA_METHODS) - {"sessionClose"}  # sessionClose sends nothing: it closes


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client_type, calls, transport", [(RealtimeAPIClientType.REALTIME, REALTIME_CALLS, "websocket"),
                                                           (RealtimeAPIClientType.REALTIME, REALTIME_CALLS, "webrtc"),
                                                           (RealtimeAPIClientType.TRANSCRIPTION, TRANSCRIPTION_CALLS, "websocket")])
def test_every_ga_client_event_validates_against_the_sdk(client_type, calls, transport, codec):
    client, sent = captured_client(client_type, codec, transport)
    assert client.transport == transport
    for method, bodies in calls.items():
        for body in bodies:
            getattr(client, method)(body)
    assert len(sent) == 1 + sum(len(bodies) for bodies in calls.values())
    for event in sent:
        validate_client_event(event, "ga")
    assert {e["type"] for e in sent} == {GA_METHODS[m] for m in calls}
    for event in sent:
        if event["type"] == "session.update":
            assert event["session"]["type"] == client_type.value
