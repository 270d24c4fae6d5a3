"""The Agents SDK's `OpenAIRealtimeWebRTC` transport over the bridge's engine.

The WebSocket twin (realtime_websocket_shape.py) with the engine on `transport: "webrtc"`: the
same surface, name for name with snake_case twins (connect, status, connectionState,
currentModel, muted, mute, interrupt, sendEvent, sendMessage, sendFunctionCallOutput,
updateSessionConfig, resetHistory, close, on / once / off / emit, and the same events), over a
peer connection: events on the `oai-events` data channel, audio on Opus tracks. What WebRTC
changes, as the SDK has it:

- `connectionState` is `{status, peerConnection, dataChannel}` (both None: the peer connection is
  the engine's, never the scenario's);
- `mute(bool)` works on and off a call (the SDK mutes its microphone track; here caller frames
  stop reaching the track, which then carries silence), and `muted` is always a bool;
- `interrupt()` off a call sends `response.cancel` (when an answer is going) and
  `output_audio_buffer.clear`, as the SDK does; on a call it is the bridge's barge-in, at what
  the caller heard (the engine's connection adds the `output_audio_buffer.clear`);
- no `audio` events (the SDK plays WebRTC audio itself; on a call the bridge plays it to the
  caller); `audio_start` comes with `output_audio_buffer.started`, when the model's audio starts
  on the track.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.voxengine.realtime_websocket_shape import OpenAIRealtimeWebSocket
from telephony_bridge.voxengine.shape_engine import EngineFactory
from telephony_bridge.voxengine.shape_events import Spawn, spawn_on_loop

__all__ = ["OpenAIRealtimeWebRTC"]


@with_snake_case_twins
class OpenAIRealtimeWebRTC(OpenAIRealtimeWebSocket):
    """The Agents SDK's WebRTC transport layer. In a scenario: `OpenAI.RealtimeWebRTC({...})`."""

    _engine_transport: Mapping[str, Any] = {"transport": "webrtc"}

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        engine_factory: EngineFactory | None = None,
        spawn: Spawn = spawn_on_loop,
        label: str = "OpenAIRealtimeWebRTC",
    ) -> None:
        super().__init__(options, engine_factory=engine_factory, spawn=spawn, label=label)

    @property
    def connectionState(self) -> dict[str, Any]:
        return {"status": self.status, "peerConnection": None, "dataChannel": None}

    @property
    def muted(self) -> bool:
        return self._muted

    def mute(self, muted: bool) -> None:
        self._muted = bool(muted)

    def interrupt(self, cancelOngoingResponse: bool = True) -> None:
        """Stop the answer being heard. On a call: the bridge's barge-in, at what the caller heard."""
        if self.plays_to_a_call:
            super().interrupt(cancelOngoingResponse)
            return
        if not self._open:
            return
        if cancelOngoingResponse and self._ongoing_response:
            self._send(wire.response_cancel())
        self._send({"type": "output_audio_buffer.clear"})
        self.emit("audio_interrupted")
        self._reset_interruption()

    def _server_event(self, event: dict[str, Any]) -> None:
        super()._server_event(event)
        if event.get("type") == "output_audio_buffer.started":
            self.emit("audio_start")

    def _audio_delta(self, event: dict[str, Any]) -> None:
        """Model audio comes on the track, not in events: nothing to emit or measure here."""
