"""Every GPT-Live server event of the SDK's primary union, valid by the oracle, reaches the scenario
as its `LiveAPIEvents` member (payload: the wire event), through the Live connection's dispatch."""

from __future__ import annotations

import base64

import pytest

from telephony_bridge.realtime.live_wire import SERVER_EVENT_TYPES, LiveAPIEvents
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.live_client import LiveAPIClient
from tests.conformance.live_oracle import known_types, validate_live

SESSION = {"id": "live_1", "expires_at": 1796540000, "model": "gpt-live-1", "status": "active",
           "audio": {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}}}
RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-5.6-terra",
            "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}

SAMPLES: dict[str, dict] = {
    "session.started": {"session": SESSION},
    "session.updated": {"session": SESSION},
    "session.input_audio.muted": {}, "session.input_audio.unmuted": {},
    "session.output_audio.fixture.playing": {}, "session.output_audio.fixture.played": {},
    "session.instructions.appended": {"start_ms": 10, "end_ms": 20},
    "session.thinking.appended": {"start_ms": 10, "end_ms": 20},
    "session.commentary.appended": {"start_ms": 10, "end_ms": 20},
    "session.input_audio.append": {"audio": base64.b64encode(b"\xff" * 80).decode()},
    "session.output_audio.delta": {"delta": base64.b64encode(b"\xff" * 800).decode()},
    "session.input_transcript.delta": {"delta": "Hi", "start_ms": 0, "end_ms": 200},
    "session.output_transcript.delta": {"delta": " Hello", "start_ms": 0, "end_ms": 200},
    "session.delegation.created": {"offset_ms": 1200, "delegation": {"id": "deleg_1", "type": "delegation", "target": "responses",
                                                                    "response_id": "resp_1"}},
    "decision.event": {"event": {"type": "decision.completed", "decision": {
        "answers": [], "model": "gpt-5.6-luna", "usage": {
            "input_tokens": 10, "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0},
            "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12}}},
        "delegation_id": "deleg_1"},
    "decision.item.created": {"item": {"id": "item_1", "type": "message", "role": "user",
                                       "content": [{"type": "input_text", "text": "hi"}]}},
    "decision.item.deleted": {"item_id": "item_1"},
    "response.event": {"event": {"type": "response.created", "response": RESPONSE, "sequence_number": 0}, "delegation_id": "deleg_1"},
    "session.usage.updated": {"usage": {"seconds": 15.0}, "context_window": {"usage_ratio": 0.01}},
    "session.closed": {"reason": "close_requested", "session": SESSION, "usage": {"seconds": 30.0}},
    "error": {"error": {"code": "unknown_parameter", "message": "Unknown parameter: 'session.tools'.",
                        "type": "invalid_request_error", "param": "session.tools"}},
    "info": {"code": "data_channel_permissions", "message": "blocked"},
    "transport.dtmf.received": {"event": "5"}, "transport.dtmf.send": {"event": "5"}, "transport.dtmf.sent": {"event": "5"},
    "transport.ringing": {"session_id": "live_1"}, "transport.answered": {"session_id": "live_1"},
    "transport.failed": {"session_id": "live_1", "error": {"code": "busy", "message": "busy", "type": "call_error"}},
}
AUDIO_EVENTS = {"session.output_audio.delta", "session.input_audio.append"}


def sample(kind: str) -> dict:
    event = {"type": kind, **SAMPLES[kind]}
    if kind not in AUDIO_EVENTS:
        event["event_id"] = f"event_{kind}"
    return event


def test_the_samples_cover_the_union_and_are_valid():
    assert set(SAMPLES) == known_types("server") == set(SERVER_EVENT_TYPES)
    for kind in SAMPLES:
        validate_live(sample(kind), "server")


@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_each_server_event_reaches_its_member(kind):
    tasks = TaskOwner("call CA-live-events")
    client = LiveAPIClient(url="ws://127.0.0.1:9/v1/live/sessions", api_key=None, tasks=tasks)
    member = SERVER_EVENT_TYPES[kind]
    got = []
    client.addEventListener(member, lambda e: got.append(e.data))
    event = sample(kind)
    await client._connection.dispatch(event)
    await tasks.aclose()
    assert got == [{"customEvent": member.name, "payload": event}]
    assert client.stats.malformed_events == 0
    if kind == "session.output_audio.delta":
        assert client._connection.output_ms == 100.0


async def test_an_unknown_server_event_is_unknown():
    tasks = TaskOwner("call CA-live-events")
    client = LiveAPIClient(url="ws://127.0.0.1:9/v1/live/sessions", api_key=None, tasks=tasks)
    got = []
    client.addEventListener(LiveAPIEvents.Unknown, lambda e: got.append(e.data["payload"]["type"]))
    await client._connection.dispatch({"type": "input_audio_buffer.speech_started", "event_id": "e"})
    await tasks.aclose()
    assert got == ["input_audio_buffer.speech_started"]
