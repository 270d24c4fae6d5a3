"""OpenAI.RealtimeWebRTC (the Agents SDK's OpenAIRealtimeWebRTC shape): the WebSocket twin on the
engine's WebRTC transport, with what WebRTC changes (connectionState, mute off a call, interrupt's
output_audio_buffer.clear, audio_start from the track), its snake_case twins, and every client
event it sends valid against the openai SDK's types. Over a stand-in engine; the real one is
driven end to end in tests/integration/test_webrtc_model_leg.py."""

from __future__ import annotations

from telephony_bridge.naming import snake_case
from telephony_bridge.voxengine.realtime_webrtc_shape import OpenAIRealtimeWebRTC
from tests.conformance.oracle import validate_client_event
from tests.unit.shape_fakes import FakeChannel, factory


async def connected():
    engines = []
    transport = OpenAIRealtimeWebRTC({}, engine_factory=factory(engines))
    await transport.connect({"apiKey": "k", "model": "gpt-realtime-2.1", "webrtcUrl": "http://127.0.0.1:1/v1/realtime/calls"})
    return transport, engines[0]


async def test_connect_opens_the_engine_on_the_webrtc_transport():
    transport, engine = await connected()
    assert engine.parameters["transport"] == "webrtc"
    assert engine.parameters["webrtcUrl"] == "http://127.0.0.1:1/v1/realtime/calls"
    assert transport.connectionState == {"status": "connected", "peerConnection": None, "dataChannel": None}
    assert transport.connection_state == transport.connectionState


async def test_mute_works_off_a_call_and_muted_is_always_a_bool():
    transport, _engine = await connected()
    assert transport.muted is False
    transport.mute(True)  # the WebSocket twin raises here: WebRTC mutes its own track
    assert transport.muted is True
    assert transport.accept_caller_audio.__name__ == "_dropped"  # caller frames stop reaching the track
    transport.mute(False)
    assert transport.muted is False


async def test_interrupt_off_a_call_cancels_and_clears_the_output_buffer_as_the_sdk_does():
    transport, engine = await connected()
    interrupted = []
    transport.on("audio_interrupted", lambda: interrupted.append(True))
    engine.server({"type": "response.created", "response": {"id": "resp_1"}})
    transport.interrupt()
    assert engine.types()[-2:] == ["response.cancel", "output_audio_buffer.clear"]
    assert interrupted == [True]
    for event in engine.sent:
        validate_client_event(event, "ga")
    engine.server({"type": "response.done", "response": {"id": "resp_1", "output": []}})
    transport.interrupt()  # nothing going: no cancel, the clear alone
    assert engine.types()[-1] == "output_audio_buffer.clear" and engine.types().count("response.cancel") == 1


async def test_interrupt_on_a_call_is_the_bridges_barge_in():
    transport, engine = await connected()
    channel = FakeChannel(playing=True)
    engine._channels[1] = channel
    transport.interrupt()
    assert channel.interrupts == [True]  # truncated at what the caller heard, by the engine
    assert "output_audio_buffer.clear" not in engine.types()  # the engine's connection sends that


async def test_audio_start_comes_with_the_track_and_no_audio_events_are_made_up():
    transport, engine = await connected()
    seen = []
    for name in ("audio_start", "audio", "audio_done"):
        transport.on(name, lambda *args, name=name: seen.append(name))
    engine.server({"type": "output_audio_buffer.started", "response_id": "resp_1"})
    engine.server({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1", "content_index": 0})
    engine.server({"type": "response.output_audio.done", "response_id": "resp_1", "item_id": "item_1"})
    assert seen == ["audio_start", "audio_done"]


def test_every_camel_case_method_has_its_snake_case_twin():
    for name in ("sendEvent", "sendMessage", "sendFunctionCallOutput", "updateSessionConfig", "resetHistory", "sendAudio"):
        assert getattr(OpenAIRealtimeWebRTC, snake_case(name)) is getattr(OpenAIRealtimeWebRTC, name)
