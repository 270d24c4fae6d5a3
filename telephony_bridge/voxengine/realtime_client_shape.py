"""OpenAI's `RealtimeClient` (openai-realtime-api-beta, and its Python/TS ports) over the bridge's engine.

Name for name (with snake_case twins): connect / disconnect / isConnected / reset, updateSession,
addTool / removeTool (tools that run themselves), deleteItem, sendUserMessageContent,
appendInputAudio, createResponse, cancelResponse, waitForNextItem / waitForNextCompletedItem, the
conversation cache (`client.conversation.getItems()`), `client.realtime.send(...)`, and the events
`conversation.updated`, `conversation.item.appended`, `conversation.item.completed`,
`conversation.interrupted`, `realtime.event`, `error`, `close` with on / onNext / off / offNext and
`*` wildcards.

On a phone call, `VoxEngine.sendMediaBetween(call, client)` carries the audio both ways through the
engine (shape_engine.py); `cancelResponse(id)` without a sample count is the bridge's barge-in:
playback stops at once and the answer is truncated at what the caller heard.

Where this differs from the library, on purpose:
- Only tools added with `addTool` run themselves. (The library also "runs" a tool declared through
  `updateSession({tools})` and answers the model "Tool ... has not been added"; the README's manual
  tools would never work.)
- The wire dialect is GA by default (`{"dialect": "beta"}` to choose beta); session objects may be
  written beta-flat, as the library's are, and are translated.
"""

from __future__ import annotations

import asyncio
import binascii
import copy
import datetime
import inspect
import json
import logging
from array import array
from collections.abc import Mapping
from typing import Any

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.voxengine.listeners import EventPayload
from telephony_bridge.voxengine.realtime_conversation_cache import RealtimeConversation, pcm16_samples
from telephony_bridge.voxengine.shape_engine import EngineFactory, EngineFront, standalone_factory
from telephony_bridge.voxengine.shape_events import RealtimeEventHandler, Spawn, spawn_on_loop

log = logging.getLogger("telephony_bridge.realtime")

# The library's defaults (lib/client.js). The formats are the bridge's whatever is written here.
DEFAULT_SESSION_CONFIG: dict[str, Any] = {
    "modalities": ["text", "audio"],
    "instructions": "",
    "voice": "verse",
    "input_audio_format": "pcm16",
    "output_audio_format": "pcm16",
    "input_audio_transcription": None,
    "turn_detection": None,
    "tools": [],
    "tool_choice": "auto",
    "temperature": 0.8,
    "max_response_output_tokens": 4096,
}

# Server events whose cache change is told as `conversation.updated` (the library's handlerWithDispatch).
_UPDATES = frozenset(
    {
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.completed",
        "response.audio_transcript.delta",
        "response.output_audio_transcript.delta",
        "response.audio.delta",
        "response.output_audio.delta",
        "response.text.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.output_item.done",
    }
)
# Settings the engine takes as they are (see create_realtime_api_client).
_ENGINE_SETTINGS = (
    "url",
    "apiKey",
    "model",
    "dialect",
    "reconnect",
    "maxReconnectAttempts",
    "sessionMaxDurationS",
    "pingIntervalS",
    "answerStallTimeoutS",
)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64(audio: Any) -> str:
    if isinstance(audio, str):
        return audio  # already base64
    data = audio.tobytes() if isinstance(audio, array) else bytes(audio)
    return binascii.b2a_base64(data, newline=False).decode()


@with_snake_case_twins
class RealtimeAPI(RealtimeEventHandler):
    """`client.realtime`: the raw side. Dispatches `server.<type>` and `client.<type>`; `send(type, data)`."""

    def __init__(self, client: RealtimeClient, label: str, spawn: Spawn) -> None:
        super().__init__(label, spawn)
        self._client = client

    def isConnected(self) -> bool:
        return self._client.isConnected()

    def send(self, eventName: str, data: Mapping[str, Any] | None = None) -> bool:
        """A client event of the Realtime API, e.g. `send("response.create")`; items, sessions and
        responses are translated to the connection's dialect as everywhere in the bridge."""
        client = self._client
        dialect, codec = client._dialect, client._codec
        event = {"type": eventName, **dict(data or {})}
        if eventName == "conversation.item.create" and isinstance(event.get("item"), Mapping):
            event["item"] = wire.item_for_wire(event["item"], dialect)
        elif eventName == "session.update" and isinstance(event.get("session"), Mapping):
            event["session"] = wire.session_for_wire(event["session"], dialect, codec)
        elif eventName == "response.create" and isinstance(event.get("response"), Mapping):
            event["response"] = wire.response_for_wire(event["response"], dialect, codec)
        client._send(event)
        return True


@with_snake_case_twins
class RealtimeClient(EngineFront, RealtimeEventHandler):
    """openai-realtime-api-beta's RealtimeClient. In a scenario: `OpenAI.RealtimeClient({...})`."""

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        engine_factory: EngineFactory | None = None,
        spawn: Spawn = spawn_on_loop,
        label: str = "RealtimeClient",
    ) -> None:
        settings = dict(settings or {})
        EngineFront.__init__(self, engine_factory or standalone_factory(label))
        RealtimeEventHandler.__init__(self, label, spawn)
        self._label = label
        self._engine_settings = {k: settings[k] for k in _ENGINE_SETTINGS if settings.get(k) is not None}
        self._engine_settings["trace"] = bool(settings.get("debug", False))
        self._engine_settings["codec"] = "pcm16"  # the library's world: PCM16 24 kHz, in and out
        self._dialect = self._engine_settings.get("dialect", "ga")
        self._codec: wire.Codec = "pcm16"
        self.defaultSessionConfig = copy.deepcopy(DEFAULT_SESSION_CONFIG)
        self.sessionConfig: dict[str, Any] = {}
        self.sessionCreated = False
        self.tools: dict[str, dict[str, Any]] = {}
        self.inputAudioBuffer = array("h")
        self.conversation = RealtimeConversation(keep_audio=settings.get("keepAudio", True) is not False)
        self.realtime = RealtimeAPI(self, label, spawn)
        self._announced: set[str] = set()  # items told as appended
        self._completed: set[str] = set()  # items told as completed
        self._tools_run: set[str] = set()  # call_ids already answered
        self._reset_config()
        if config:
            self.updateSession(config)

    def _reset_config(self) -> None:
        self.sessionConfig = copy.deepcopy(self.defaultSessionConfig)

    # --- connection -------------------------------------------------------------------------
    async def connect(self) -> bool:
        if self.isConnected():
            raise RuntimeError("Already connected, use .disconnect() first")
        try:
            await self._open_engine({**self._engine_settings, "onWebSocketClose": self._engine_closed})
        except Exception as exc:
            self.dispatch("error", EventPayload(type="error", error={"message": str(exc)}))
            raise
        self.updateSession()
        return True

    async def waitForSessionCreated(self) -> bool:
        if not self.isConnected():
            raise RuntimeError("Not connected, use .connect() first")
        while not self.sessionCreated:
            await asyncio.sleep(0.001)
        return True

    def isConnected(self) -> bool:
        return self._open

    def disconnect(self) -> None:
        self.sessionCreated = False
        if self.engine is not None and not self.engine.closed:
            self.engine.close()
        self.conversation.clear()

    def reset(self) -> bool:
        self.disconnect()
        self.clearEventHandlers()
        self.realtime.clearEventHandlers()
        self._reset_config()
        self.tools = {}
        self.inputAudioBuffer = array("h")
        self._announced.clear()
        self._completed.clear()
        self._tools_run.clear()
        return True

    def _engine_closed(self, event: Mapping[str, Any]) -> None:
        self.sessionCreated = False
        closed = EventPayload(
            error=not event.get("wasClean", False), code=event.get("code"), reason=event.get("reason")
        )
        self.realtime.dispatch("close", closed)
        self.dispatch("close", closed)

    # --- session and tools ------------------------------------------------------------------
    def getTurnDetectionType(self) -> Any:
        turn_detection = self.sessionConfig.get("turn_detection")
        if turn_detection is None:
            return None
        return turn_detection.get("type") if isinstance(turn_detection, Mapping) else turn_detection

    def _session_payload(self) -> dict[str, Any]:
        tools = [{"type": "function", **tool} for tool in self.sessionConfig.get("tools") or []]
        tools += [{"type": "function", **entry["definition"]} for entry in self.tools.values()]
        return {**self.sessionConfig, "tools": tools}

    def updateSession(self, session: Mapping[str, Any] | None = None, **fields: Any) -> bool:
        """Merge into the session; sent at once when connected (tools from addTool always appended)."""
        self.sessionConfig.update({**dict(session or {}), **fields})
        if self.engine is not None and not self.engine.closed:
            self.engine.sessionUpdate(self._session_payload())  # replayed after a reconnect, as any sessionUpdate
        return True

    def addTool(self, definition: Mapping[str, Any], handler: Any) -> dict[str, Any]:
        name = (definition or {}).get("name")
        if not name:
            raise ValueError("Missing tool name in definition")
        if name in self.tools:
            raise ValueError(
                f'Tool "{name}" already added. Please use .removeTool("{name}") before trying to add again.'
            )
        if not callable(handler):
            raise TypeError(f'Tool "{name}" handler must be a function')
        self.tools[name] = {"definition": dict(definition), "handler": handler}
        self.updateSession()
        return self.tools[name]

    registerTool = addTool

    def removeTool(self, name: str) -> bool:
        if name not in self.tools:
            raise KeyError(f'Tool "{name}" does not exist, can not be removed.')
        del self.tools[name]
        self.updateSession()
        return True

    unregisterTool = removeTool

    def getTools(self) -> list[dict[str, Any]]:
        return [{"type": "function", **entry["definition"]} for entry in self.tools.values()]

    async def executeTool(self, name: str, args: Mapping[str, Any]) -> Any:
        entry = self.tools.get(name)
        if entry is None:
            raise KeyError(f'Tool "{name}" has not been added')
        result = entry["handler"](args)
        return await result if inspect.isawaitable(result) else result

    async def _call_tool(self, tool: Mapping[str, Any]) -> None:
        try:
            result = await self.executeTool(tool["name"], json.loads(tool.get("arguments") or "{}"))
            output = json.dumps(result)
        except Exception as exc:
            log.warning("%s: tool %s failed: %s", self._label, tool.get("name"), exc)
            output = json.dumps({"error": str(exc)})
        if not self.isConnected():
            return
        self.realtime.send(
            "conversation.item.create",
            {"item": {"type": "function_call_output", "call_id": tool["call_id"], "output": output}},
        )
        self.createResponse()

    # --- conversation -----------------------------------------------------------------------
    def getConversationItems(self) -> list[dict[str, Any]]:
        return self.conversation.getItems()

    def deleteItem(self, id: str) -> bool:
        self.realtime.send("conversation.item.delete", {"item_id": id})
        return True

    def sendUserMessageContent(self, content: list[Mapping[str, Any]] | None = None) -> bool:
        parts = [dict(part) for part in content or []]
        if parts:
            for part in parts:
                if part.get("type") == "input_audio" and "audio" in part:
                    part["audio"] = _b64(part["audio"])
            self.realtime.send(
                "conversation.item.create", {"item": {"type": "message", "role": "user", "content": parts}}
            )
        self.createResponse()
        return True

    def appendInputAudio(self, arrayBuffer: Any) -> bool:
        """PCM16 24 kHz (bytes or array('h')) into the input buffer (audio that is not the call's)."""
        samples = pcm16_samples(arrayBuffer)
        if samples:
            self._send_input_audio(samples.tobytes())
            self.inputAudioBuffer.extend(samples)
        return True

    def createResponse(self) -> bool:
        if self.getTurnDetectionType() is None and self.inputAudioBuffer:
            self.realtime.send("input_audio_buffer.commit")
            self.conversation.queueInputAudio(self.inputAudioBuffer)
            self.inputAudioBuffer = array("h")
        self.realtime.send("response.create")
        return True

    def cancelResponse(self, id: str | None = None, sampleCount: int | None = None) -> dict[str, Any]:
        """Stop the answer. On a call, without `sampleCount`: the bridge's barge-in (playback stops,
        the answer is cancelled and truncated at what the caller heard). With `sampleCount` (or off
        a call): the library's cancel and truncate at that many 24 kHz samples."""
        item = None
        if id:
            item = self.conversation.getItem(id)
            if item is None:
                raise KeyError(f'Could not find item "{id}"')
            if item.get("type") != "message":
                raise ValueError('Can only cancelResponse messages with type "message"')
            if item.get("role") != "assistant":
                raise ValueError('Can only cancelResponse messages with role "assistant"')
        on_call = self.plays_to_a_call
        if on_call and sampleCount is None:
            if not self._barge_in(truncate=True) and self.engine is not None:
                self.engine.responseCancel()  # nothing playing: still stop whatever is generating
            return {"item": item}
        if self.engine is None:
            raise RuntimeError("not connected: call connect() first")
        # On a call the barge-in stops playback and cancels the answers it cut; the truncation is
        # then the one the caller of cancelResponse asked for.
        if not on_call or not self._barge_in(truncate=False):
            self.engine.responseCancel()
        if item is not None:
            audio_index = next(
                (
                    i
                    for i, part in enumerate(item.get("content") or [])
                    if part.get("type") in ("audio", "output_audio")
                ),
                -1,
            )
            if audio_index == -1:
                raise ValueError("Could not find audio on item to cancel")
            audio_end_ms = int((sampleCount or 0) / self.conversation.defaultFrequency * 1000)
            self.realtime.send(
                "conversation.item.truncate",
                {"item_id": id, "content_index": audio_index, "audio_end_ms": audio_end_ms},
            )
        return {"item": item}

    async def waitForNextItem(self) -> dict[str, Any]:
        event = await self.waitForNext("conversation.item.appended")
        return {"item": (event or {}).get("item")}

    async def waitForNextCompletedItem(self) -> dict[str, Any]:
        event = await self.waitForNext("conversation.item.completed")
        return {"item": (event or {}).get("item")}

    # --- what the engine reports ------------------------------------------------------------
    def _client_event_sent(self, event: Mapping[str, Any]) -> None:
        if self.has_listeners("realtime.event") or self.realtime.has_listeners("client." + str(event.get("type"))):
            self.realtime.dispatch("client." + str(event.get("type")), event)
            self.dispatch("realtime.event", EventPayload(time=_now(), source="client", event=event))

    def _server_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        self.realtime.dispatch("server." + kind, event)
        self.dispatch("realtime.event", EventPayload(time=_now(), source="server", event=event))
        if kind == "session.created":
            self.sessionCreated = True
        elif kind == "error":
            self.dispatch("error", event)
        extra = (self.inputAudioBuffer,) if kind == "input_audio_buffer.speech_stopped" else ()
        item, delta = self.conversation.processEvent(event, *extra)
        if kind == "input_audio_buffer.speech_started":
            self.dispatch("conversation.interrupted", EventPayload(event=event))
        if item is None:
            return
        item_id = item.get("id", "")
        appended = item_id not in self._announced and item_id in self.conversation.itemLookup
        if kind in _UPDATES or appended:
            self.dispatch("conversation.updated", EventPayload(item=item, delta=delta))
        if appended:
            self._announced.add(item_id)
            self.dispatch("conversation.item.appended", EventPayload(item=item))
        if (
            item.get("status") == "completed"
            and item_id not in self._completed
            and item_id in self.conversation.itemLookup
        ):
            self._completed.add(item_id)
            self.dispatch("conversation.item.completed", EventPayload(item=item))
        tool = item.get("formatted", {}).get("tool")
        if (
            kind == "response.output_item.done"
            and tool
            and item.get("status") == "completed"
            and tool.get("name") in self.tools
            and tool.get("call_id") not in self._tools_run
        ):
            self._tools_run.add(tool["call_id"])
            self._runner.spawn(self._call_tool(dict(tool)), f"tool {tool['name']}")
