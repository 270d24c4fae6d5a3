"""The Agents SDK's `OpenAIRealtimeWebSocket` transport over the bridge's engine.

Name for name (with snake_case twins): connect({apiKey, model, url, initialSessionConfig}),
status, connectionState, currentModel, muted, sendAudio(audio, {commit}), interrupt(),
sendFunctionCallOutput, sendMessage, addImage, updateSessionConfig, resetHistory, sendEvent, mute,
close, on / once / off / emit, and the transport's events: `audio`, `audio_start`, `audio_done`,
`audio_interrupted`, `turn_started`, `turn_done`, `function_call`, `item_update`, `item_deleted`,
`transcript_delta` (the SDK names it `audio_transcript_delta`: both fire), `usage_update`, `error`,
`connection_change`, every server event under its own type, and `*` for each raw server event.

On a phone call (`VoxEngine.sendMediaBetween(call, transport)`), the audio goes both ways through the
engine (shape_engine.py), and `interrupt()` — called by the transport itself when the caller starts
speaking, as the SDK does — is the bridge's barge-in: it truncates at what the caller heard rather
than at the wall-clock time since the first delta. Off a call it is the SDK's own arithmetic.

Where the phone changes the SDK's behaviour, on purpose:
- `mute(True)` works on a call (the bridge carries the input audio; caller frames stop reaching
  the model) and `muted` is then a bool; off a call, as in the SDK, `muted` is None and `mute` raises.
- On a call, `interrupt(False)` still cancels the answer it cut: the bridge names the answer it
  stopped (a late cancel never hits a newer one), and a cancel the server already did is benign.
"""

from __future__ import annotations

import binascii
import inspect
import re
import time
from collections.abc import Mapping
from typing import Any

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.voxengine.realtime_client import DEFAULT_MODEL
from telephony_bridge.voxengine.shape_engine import EngineFactory, EngineFront, standalone_factory
from telephony_bridge.voxengine.shape_events import Spawn, TransportEmitter, spawn_on_loop

_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_AUDIO_DONES = ("response.output_audio.done", "response.audio.done")
_TRANSCRIPT_DELTAS = ("response.output_audio_transcript.delta", "response.audio_transcript.delta")
_PART_NAMES = {"text": "output_text", "audio": "output_audio"}  # beta assistant parts, as the SDK names them
_RAW_CONFIG_KEYS = ("tools", "providerData", "provider_data", "prompt")  # values kept as written


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def session_config_for_wire(config: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK's camelCase `RealtimeSessionConfig` as a Realtime session object (either dialect's shape:
    the engine translates). `providerData` is merged in as written; tool definitions pass unchanged."""

    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {_snake(k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("providerData", "provider_data"):
            continue
        out[_snake(key)] = value if key in _RAW_CONFIG_KEYS else convert(value)
    out.pop("model", None)  # chosen at connect; "cannot be changed mid conversation"
    out.update(config.get("providerData") or config.get("provider_data") or {})
    return out


def _realtime_item(item: Mapping[str, Any], previous_item_id: str | None = None) -> dict[str, Any]:
    """A wire item as the SDK's `RealtimeItem` (camelCase, GA part names, no audio bytes)."""
    kind = item.get("type")
    out: dict[str, Any] = {"itemId": item.get("id"), "previousItemId": previous_item_id, "type": kind}
    if kind == "message":
        content = []
        for part in item.get("content") or []:
            part_type = _PART_NAMES.get(part.get("type"), part.get("type"))
            shown: dict[str, Any] = {"type": part_type}
            if "text" in part:
                shown["text"] = part["text"]
            if part_type in ("input_audio", "output_audio"):
                shown["audio"] = None
                shown["transcript"] = part.get("transcript")
            content.append(shown)
        out.update(role=item.get("role"), status=item.get("status", "completed"), content=content)
    elif kind == "function_call":
        out.update(
            callId=item.get("call_id"),
            name=item.get("name"),
            arguments=item.get("arguments") or "",
            status=item.get("status", "in_progress"),
            output=None,
        )
    elif kind == "function_call_output":
        out.update(callId=item.get("call_id"), output=item.get("output"))
    return out


def _wire_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK's `RealtimeItem` back to a wire item (for resetHistory)."""
    kind = item.get("type")
    if kind == "function_call":
        return {
            "type": "function_call",
            "call_id": item.get("callId"),
            "name": item.get("name"),
            "arguments": item.get("arguments") or "{}",
        }
    if kind == "function_call_output":
        return {"type": "function_call_output", "call_id": item.get("callId"), "output": item.get("output") or ""}
    role = item.get("role", "user")
    parts = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("text") is not None else part.get("transcript")
        if text is None:
            continue
        parts.append({"type": "output_text" if role == "assistant" else "input_text", "text": text})
    return {"type": "message", "role": role, "content": parts}


def _usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "requests": 1,
        "inputTokens": usage.get("input_tokens", 0),
        "outputTokens": usage.get("output_tokens", 0),
        "totalTokens": usage.get("total_tokens", 0),
        "inputTokensDetails": usage.get("input_token_details") or {},
        "outputTokensDetails": usage.get("output_token_details") or {},
    }


@with_snake_case_twins
class OpenAIRealtimeWebSocket(EngineFront, TransportEmitter):
    """The Agents SDK's WebSocket transport layer. In a scenario: `OpenAI.RealtimeWebSocket({...})`."""

    # Engine parameters that pick the transport (the WebRTC twin sets {"transport": "webrtc"}).
    _engine_transport: Mapping[str, Any] = {}

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        engine_factory: EngineFactory | None = None,
        spawn: Spawn = spawn_on_loop,
        label: str = "OpenAIRealtimeWebSocket",
    ) -> None:
        options = dict(options or {})
        EngineFront.__init__(self, engine_factory or standalone_factory(label))
        TransportEmitter.__init__(self, label, spawn)
        self._options = options
        self._model = options.get("model") or DEFAULT_MODEL
        self._status = "disconnected"
        self._dialect = options.get("dialect", "ga")
        self._turn_detection: Mapping[str, Any] = {}
        self._ongoing_response = False
        self._reset_interruption()

    def _reset_interruption(self) -> None:
        self._current_item_id: str | None = None
        self._current_content_index: int | None = None
        self._first_audio_at: float | None = None
        self._audio_length_ms = 0.0

    # --- state --------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @property
    def connectionState(self) -> dict[str, Any]:
        return {"status": self._status, "websocket": None}  # the socket is the engine's, never the scenario's

    @property
    def currentModel(self) -> str:
        return self._model

    @currentModel.setter
    def currentModel(self, model: str) -> None:
        self._model = model

    @property
    def muted(self) -> bool | None:
        """None off a call (as the SDK: muting is the caller's business); on a call, whether the caller is muted."""
        return self._muted if self._caller_format is not None else None

    def _set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self.emit("connection_change", status)

    # --- connection ---------------------------------------------------------------------------
    async def connect(self, options: Mapping[str, Any] | None = None) -> None:
        options = {**self._options, **dict(options or {})}
        if self._status != "disconnected":
            return
        api_key = options.get("apiKey")
        if callable(api_key):  # the SDK takes a key or a function returning one
            api_key = api_key()
            if inspect.isawaitable(api_key):
                api_key = await api_key
        self._model = options.get("model") or self._model
        parameters = {
            key: options[key]
            for key in (
                "url",
                "dialect",
                "reconnect",
                "maxReconnectAttempts",
                "sessionMaxDurationS",
                "pingIntervalS",
                "answerStallTimeoutS",
                "webrtcUrl",
            )
            if options.get(key) is not None
        }
        parameters.update(
            apiKey=api_key, model=self._model, codec=options.get("codec", "pcm16"), onWebSocketClose=self._engine_closed
        )
        parameters.update(self._engine_transport)
        self._set_status("connecting")
        try:
            await self._open_engine(parameters)
        except Exception as exc:
            self._set_status("disconnected")
            self.emit("error", {"type": "error", "error": exc})
            raise
        self._set_status("connected")
        self.updateSessionConfig(options.get("initialSessionConfig") or {})

    def close(self) -> None:
        if self.engine is not None and not self.engine.closed:
            self.engine.close()
        self._reset_interruption()
        self._ongoing_response = False
        self._set_status("disconnected")

    def _engine_closed(self, event: Mapping[str, Any]) -> None:
        self._reset_interruption()
        self._set_status("disconnected")

    # --- client events ------------------------------------------------------------------------
    def sendEvent(self, event: Mapping[str, Any]) -> None:
        self._send(dict(event))

    def updateSessionConfig(self, config: Mapping[str, Any]) -> None:
        session = session_config_for_wire(config)
        td = session.get("turn_detection", (session.get("audio") or {}).get("input", {}).get("turn_detection"))
        if isinstance(td, Mapping):
            self._turn_detection = td
        if self.engine is not None:
            self.engine.sessionUpdate(session)  # replayed after a reconnect

    def sendAudio(self, audio: Any, options: Mapping[str, Any] | None = None, *, commit: bool | None = None) -> None:
        """PCM16 24 kHz into the input buffer (audio that is not the call's); `commit` closes the turn."""
        if self._status != "connected":
            return
        self._send_input_audio(bytes(audio))
        if commit if commit is not None else (options or {}).get("commit", False):
            self._send(wire.input_audio_commit())

    def sendMessage(
        self,
        message: Any,
        otherEventData: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        triggerResponse: bool | None = None,
    ) -> None:
        if isinstance(message, str):
            content = [{"type": "input_text", "text": message}]
        else:
            content = [dict(part) for part in message.get("content") or []]
        item = {"type": "message", "role": "user", "content": content}
        self._send({**wire.conversation_item_create(None, item, self._dialect), **dict(otherEventData or {})})
        if (options or {}).get("triggerResponse", True) if triggerResponse is None else triggerResponse:
            self._send({"type": "response.create"})

    def addImage(
        self, image: str, options: Mapping[str, Any] | None = None, *, triggerResponse: bool | None = None
    ) -> None:
        item = {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": image}]}
        self._send(wire.conversation_item_create(None, item, self._dialect))
        if (options or {}).get("triggerResponse", True) if triggerResponse is None else triggerResponse:
            self._send({"type": "response.create"})

    def sendFunctionCallOutput(self, toolCall: Mapping[str, Any], output: str, startResponse: bool = True) -> None:
        call_id = toolCall.get("callId") or toolCall.get("call_id")
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        self._send(wire.conversation_item_create(None, item, self._dialect))
        if startResponse:
            self._send({"type": "response.create"})

    def resetHistory(self, oldHistory: list[Mapping[str, Any]], newHistory: list[Mapping[str, Any]]) -> None:
        """Delete what is gone or changed, create what is new or changed (after the item before it)."""
        old = {item.get("itemId"): item for item in oldHistory}
        new_ids = {item.get("itemId") for item in newHistory}
        for item_id, item in old.items():
            if item_id is None:
                continue  # an item the server never named cannot be deleted
            if item_id not in new_ids or any(n.get("itemId") == item_id and n != item for n in newHistory):
                self._send(wire.conversation_item_delete(str(item_id)))
        previous: str | None = None
        for item in newHistory:
            item_id = item.get("itemId")
            if old.get(item_id) != item:
                created = {**_wire_item(item), **({"id": item_id} if item_id else {})}
                self._send(wire.conversation_item_create(previous, created, self._dialect))
            previous = item_id

    def mute(self, muted: bool) -> None:
        if self._caller_format is None:
            raise RuntimeError(
                "Mute is not supported for the WebSocket transport. You have to mute the audio input yourself."
            )
        self._muted = bool(muted)

    def interrupt(self, cancelOngoingResponse: bool = True) -> None:
        """Stop the answer being heard. On a call: the bridge's barge-in, at what the caller heard."""
        if self.plays_to_a_call:
            if self._barge_in(truncate=True):
                self.emit("audio_interrupted")
            self._reset_interruption()
            return
        if self._current_item_id is None or self._first_audio_at is None:
            return
        elapsed_ms = (time.monotonic() - self._first_audio_at) * 1000
        if 0 <= elapsed_ms < self._audio_length_ms:
            if cancelOngoingResponse and self._ongoing_response:
                self._send(wire.response_cancel())
            self.emit("audio_interrupted")
            self._send(
                wire.conversation_item_truncate(
                    self._current_item_id,
                    self._current_content_index or 0,
                    max(0, min(elapsed_ms, self._audio_length_ms)),
                )
            )
        self._reset_interruption()

    # --- what the engine reports --------------------------------------------------------------
    def _server_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        self.emit("*", event)
        if kind == "error":
            self.emit("error", {"type": "error", "error": event})
        else:
            self.emit(kind, event)
        if kind in _AUDIO_DELTAS:
            self._audio_delta(event)
        elif kind in _AUDIO_DONES:
            self.emit("audio_done")
        elif kind == "input_audio_buffer.speech_started":
            self.interrupt(not self._turn_detection.get("interrupt_response", False))
        elif kind == "response.created":
            self._ongoing_response = True
            self.emit("turn_started", {"type": "response_started", "providerData": event})
        elif kind == "response.done":
            self._ongoing_response = False
            response = event.get("response") or {}
            usage = _usage(response.get("usage") or {})
            self.emit("usage_update", usage)
            self.emit(
                "turn_done",
                {
                    "type": "response_done",
                    "response": {"id": response.get("id"), "output": response.get("output") or [], "usage": usage},
                },
            )
        elif kind == "conversation.item.deleted":
            self.emit("item_deleted", {"itemId": event.get("item_id")})
        elif kind in ("conversation.item.input_audio_transcription.completed", "conversation.item.truncated"):
            # as the SDK: fetch the whole item rather than rebuild it from partials (item_update follows)
            if self._open and self.listens("item_update"):
                self._send(wire.conversation_item_retrieve(event.get("item_id", "")))
        elif kind in _TRANSCRIPT_DELTAS:
            delta = {
                "type": "transcript_delta",
                "delta": event.get("delta", ""),
                "itemId": event.get("item_id"),
                "responseId": event.get("response_id"),
            }
            self.emit("audio_transcript_delta", delta)
            self.emit("transcript_delta", delta)
        elif kind in (
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.retrieved",
            "conversation.item.created",
        ):
            self.emit("item_update", _realtime_item(event.get("item") or {}, event.get("previous_item_id")))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item") or {}
            if item.get("type") == "function_call" and item.get("status") == "completed":
                self.emit("item_update", _realtime_item(item))
                self.emit(
                    "function_call",
                    {
                        "type": "function_call",
                        "id": item.get("id"),
                        "callId": item.get("call_id", ""),
                        "name": item.get("name", ""),
                        "arguments": item.get("arguments", ""),
                    },
                )
            elif item.get("type") == "message":
                self.emit("item_update", _realtime_item(item))

    def _audio_delta(self, event: dict[str, Any]) -> None:
        delta = event.get("delta") or ""
        if self._first_audio_at is None or event.get("item_id") != self._current_item_id:
            self._first_audio_at = time.monotonic()  # the audio of a new item starts
            self._audio_length_ms = 0.0
            self.emit("audio_start")
        self._current_item_id = event.get("item_id")
        self._current_content_index = event.get("content_index", 0)
        self._audio_length_ms += len(delta) * 3 / 4 / 48  # PCM16 24 kHz: 48 bytes a millisecond
        if self.listens("audio"):
            try:
                data = binascii.a2b_base64(delta)
            except binascii.Error:
                return
            self.emit("audio", {"type": "audio", "data": data, "responseId": event.get("response_id")})
