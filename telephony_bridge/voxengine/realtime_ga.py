"""Voximplant's GA `OpenAI.RealtimeAPIClient`: the same client as `OpenAI.Beta`, another front.

The GA shape differs from the Beta one in three things, each declared once in a table here:
- methods take one object, the OpenAI client event without `type` (`GA_METHODS`);
- events are `OpenAI.RealtimeAPIEvents` / `OpenAI.Events` members (`GA_EVENT_FOR`, `GA_MEDIA_EVENT_FOR`);
- a handler gets `{client, name, data: {payload}}`, `payload` being the raw server event.
Connection, playout and barge-in are `RealtimeClientCore`'s: there is no second implementation.

Client types: REALTIME (the phone agent); TRANSCRIPTION (caller audio in, transcripts out, no
model audio: a GA `"type": "transcription"` session, opened with `?intent=transcription` and the
transcription model in `audio.input.transcription.model`); TRANSLATION (an interpreter: OpenAI's
translation sessions, a protocol of their own at `/v1/realtime/translations`; the client is
realtime_translation.TranslationRealtimeAPIClient, a subclass of this one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.connection_events import Reconnected
from telephony_bridge.realtime.events import (
    MediaEvents,
    RealtimeAPIEvents,
    normalize_event_name,
)
from telephony_bridge.voxengine.listeners import EventPayload
from telephony_bridge.voxengine.realtime_client import (
    RealtimeClientCore,
    log,
)

DEFAULT_TRANSCRIPTION_MODEL = "gpt-live-transcribe"  # a current Realtime transcription model (gpt-live.md, Status)


class RealtimeAPIClientType(str, Enum):
    """`OpenAI.RealtimeAPIClientType`."""

    REALTIME = "realtime"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"


class GARealtimeAPIEvents(str, Enum):
    """`OpenAI.RealtimeAPIEvents` (GA, 46 members in VoxEngine 7.64.1), values as Voximplant spells them."""

    Unknown = "OpenAI.RealtimeAPI.Unknown"
    Error = "OpenAI.RealtimeAPI.Error"
    SessionCreated = "OpenAI.RealtimeAPI.SessionCreated"
    SessionUpdated = "OpenAI.RealtimeAPI.SessionUpdated"
    ConversationItemRetrieved = "OpenAI.RealtimeAPI.ConversationItemRetrieved"
    ConversationItemInputAudioTranscriptionCompleted = (
        "OpenAI.RealtimeAPI.ConversationItemInputAudioTranscriptionCompleted"
    )
    ConversationItemInputAudioTranscriptionDelta = "OpenAI.RealtimeAPI.ConversationItemInputAudioTranscriptionDelta"
    ConversationItemInputAudioTranscriptionFailed = "OpenAI.RealtimeAPI.ConversationItemInputAudioTranscriptionFailed"
    ConversationItemTruncated = "OpenAI.RealtimeAPI.ConversationItemTruncated"
    ConversationItemDeleted = "OpenAI.RealtimeAPI.ConversationItemDeleted"
    InputAudioBufferCommitted = "OpenAI.RealtimeAPI.InputAudioBufferCommitted"
    InputAudioBufferCleared = "OpenAI.RealtimeAPI.InputAudioBufferCleared"
    InputAudioBufferSpeechStarted = "OpenAI.RealtimeAPI.InputAudioBufferSpeechStarted"
    InputAudioBufferSpeechStopped = "OpenAI.RealtimeAPI.InputAudioBufferSpeechStopped"
    ResponseCreated = "OpenAI.RealtimeAPI.ResponseCreated"
    ResponseDone = "OpenAI.RealtimeAPI.ResponseDone"
    ResponseOutputItemAdded = "OpenAI.RealtimeAPI.ResponseOutputItemAdded"
    ResponseOutputItemDone = "OpenAI.RealtimeAPI.ResponseOutputItemDone"
    ResponseContentPartAdded = "OpenAI.RealtimeAPI.ResponseContentPartAdded"
    ResponseContentPartDone = "OpenAI.RealtimeAPI.ResponseContentPartDone"
    ResponseFunctionCallArgumentsDelta = "OpenAI.RealtimeAPI.ResponseFunctionCallArgumentsDelta"
    ResponseFunctionCallArgumentsDone = "OpenAI.RealtimeAPI.ResponseFunctionCallArgumentsDone"
    RateLimitsUpdated = "OpenAI.RealtimeAPI.RateLimitsUpdated"
    # Renamed from Beta.
    ResponseOutputTextDelta = "OpenAI.RealtimeAPI.ResponseOutputTextDelta"
    ResponseOutputTextDone = "OpenAI.RealtimeAPI.ResponseOutputTextDone"
    ResponseOutputAudioTranscriptDelta = "OpenAI.RealtimeAPI.ResponseOutputAudioTranscriptDelta"
    ResponseOutputAudioTranscriptDone = "OpenAI.RealtimeAPI.ResponseOutputAudioTranscriptDone"
    ResponseOutputAudioDone = "OpenAI.RealtimeAPI.ResponseOutputAudioDone"
    # New in GA.
    HTTPResponse = "OpenAI.RealtimeAPI.HTTPResponse"
    ConversationItemAdded = "OpenAI.RealtimeAPI.ConversationItemAdded"
    ConversationItemDone = "OpenAI.RealtimeAPI.ConversationItemDone"
    ConversationItemInputAudioTranscriptionSegment = "OpenAI.RealtimeAPI.ConversationItemInputAudioTranscriptionSegment"
    InputAudioBufferTimeoutTriggered = "OpenAI.RealtimeAPI.InputAudioBufferTimeoutTriggered"
    ResponseMCPCallArgumentsDelta = "OpenAI.RealtimeAPI.ResponseMCPCallArgumentsDelta"
    ResponseMCPCallArgumentsDone = "OpenAI.RealtimeAPI.ResponseMCPCallArgumentsDone"
    ResponseMCPCallInProgress = "OpenAI.RealtimeAPI.ResponseMCPCallInProgress"
    ResponseMCPCallCompleted = "OpenAI.RealtimeAPI.ResponseMCPCallCompleted"
    ResponseMCPCallFailed = "OpenAI.RealtimeAPI.ResponseMCPCallFailed"
    MCPListToolsInProgress = "OpenAI.RealtimeAPI.MCPListToolsInProgress"
    MCPListToolsCompleted = "OpenAI.RealtimeAPI.MCPListToolsCompleted"
    MCPListToolsFailed = "OpenAI.RealtimeAPI.MCPListToolsFailed"
    WebSocketError = "OpenAI.RealtimeAPI.WebSocketError"
    ConnectorInformation = "OpenAI.RealtimeAPI.ConnectorInformation"
    # New in 7.64.1 (translation sessions).
    SessionClosed = "OpenAI.RealtimeAPI.SessionClosed"
    SessionInputTranscriptDelta = "OpenAI.RealtimeAPI.SessionInputTranscriptDelta"
    SessionOutputTranscriptDelta = "OpenAI.RealtimeAPI.SessionOutputTranscriptDelta"


class GAEvents(str, Enum):
    """`OpenAI.Events`: media-graph events, plus the bridge's reconnect events (docs/reliability.md)."""

    WebSocketMediaStarted = "OpenAI.Events.WebSocketMediaStarted"
    WebSocketMediaEnded = "OpenAI.Events.WebSocketMediaEnded"
    WebSocketReconnecting = "OpenAI.Events.WebSocketReconnecting"
    WebSocketReconnected = "OpenAI.Events.WebSocketReconnected"


G = GARealtimeAPIEvents
# Beta member -> GA member where GA renamed it; every other GA member has the Beta member's name.
_GA_RENAMED: Final = {
    RealtimeAPIEvents.ResponseTextDelta: G.ResponseOutputTextDelta,
    RealtimeAPIEvents.ResponseTextDone: G.ResponseOutputTextDone,
    RealtimeAPIEvents.ResponseAudioTranscriptDelta: G.ResponseOutputAudioTranscriptDelta,
    RealtimeAPIEvents.ResponseAudioTranscriptDone: G.ResponseOutputAudioTranscriptDone,
    RealtimeAPIEvents.ResponseAudioDone: G.ResponseOutputAudioDone,
}
# What the connection reports (RealtimeAPIEvents) -> what a GA scenario hears. Server events the GA
# enum has no member for (conversation.created, output_audio_buffer.*, DTMF) arrive as Unknown.
GA_EVENT_FOR: Final[Mapping[RealtimeAPIEvents, GARealtimeAPIEvents]] = {
    member: _GA_RENAMED.get(member) or G.__members__.get(member.name, G.Unknown) for member in RealtimeAPIEvents
}
GA_MEDIA_EVENT_FOR: Final[Mapping[MediaEvents, GAEvents]] = {member: GAEvents[member.name] for member in MediaEvents}
# Raised by the connector, not by the model.
CONNECTOR_EVENTS: Final = frozenset({G.HTTPResponse, G.WebSocketError, G.ConnectorInformation})

# GA methods (one object: the client event without `type`) -> the client event they send.
GA_METHODS: Final[Mapping[str, str]] = {
    "sessionUpdate": "session.update",
    "inputAudioBufferClear": "input_audio_buffer.clear",
    "inputAudioBufferCommit": "input_audio_buffer.commit",
    "conversationItemCreate": "conversation.item.create",
    "conversationItemRetrieve": "conversation.item.retrieve",
    "conversationItemTruncate": "conversation.item.truncate",
    "conversationItemDelete": "conversation.item.delete",
    "responseCreate": "response.create",
    "responseCancel": "response.cancel",
    "sessionClose": "session.close",
}

_BY_NAME: Final[dict[str, GARealtimeAPIEvents | GAEvents]] = {
    **{m.name: m for m in GARealtimeAPIEvents},
    **{m.value: m for m in GARealtimeAPIEvents},
    **{m.name: m for m in GAEvents},
    **{m.value: m for m in GAEvents},
}


def normalize_ga_event(name: Any) -> GARealtimeAPIEvents | GAEvents:
    """A GA member, its name or value; a Beta member or name, or a wire type, mapped to its GA member."""
    if isinstance(name, (GARealtimeAPIEvents, GAEvents)):
        return name
    if isinstance(name, str) and name in _BY_NAME:
        return _BY_NAME[name]
    member = normalize_event_name(name)  # raises, naming close matches, for a misspelt name
    return GA_MEDIA_EVENT_FOR[member] if isinstance(member, MediaEvents) else GA_EVENT_FOR[member]


def _with_ga_methods(cls: type) -> type:
    """Bind one method per GA_METHODS row; each sends its client event through `_send_ga`."""
    for method_name, event_type in GA_METHODS.items():
        if method_name in cls.__dict__:
            continue  # written out by hand (sessionClose)

        def method(
            self: GARealtimeAPIClient, parameters: Mapping[str, Any] | None = None, *, _type: str = event_type
        ) -> None:
            self._send_ga(_type, parameters)

        method.__name__ = method.__qualname__ = method_name
        method.__doc__ = f"Send `{event_type}`: `parameters` is its body without `type`."
        setattr(cls, method_name, method)
    return with_snake_case_twins(cls)


def transcription_session_for_wire(session: Mapping[str, Any], codec: wire.Codec) -> dict[str, Any]:
    """A GA `"type": "transcription"` session: input audio only, in the bridge's format. Flat (Beta)
    spellings of the input settings are accepted and nested."""
    rest = dict(session)
    rest.pop("type", None)
    rest.pop("input_audio_format", None)
    audio = dict(rest.pop("audio", None) or {})
    audio_input = dict(audio.pop("input", None) or {})
    for flat, nested in (
        ("input_audio_transcription", "transcription"),
        ("turn_detection", "turn_detection"),
        ("input_audio_noise_reduction", "noise_reduction"),
    ):
        if flat in rest:
            audio_input.setdefault(nested, rest.pop(flat))
    audio_input["format"] = dict(wire.GA_FORMAT[codec])
    audio.pop("output", None)  # a transcription session has no output audio
    return {"type": "transcription", **rest, "audio": {**audio, "input": audio_input}}


class GARealtimeAPIClient(RealtimeClientCore):
    """Voximplant's GA `OpenAI.RealtimeAPIClient`. Create with `await OpenAI.createRealtimeAPIClient({...})`."""

    def __init__(self, *, client_type: RealtimeAPIClientType = RealtimeAPIClientType.REALTIME, **options: Any) -> None:
        self.client_type = client_type
        super().__init__(**options)
        if client_type is RealtimeAPIClientType.TRANSCRIPTION:
            self._connection.session_update_for = self._transcription_update  # type: ignore[method-assign]

    def _transcription_update(self, config: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
        session = transcription_session_for_wire(config, self.codec)
        session["audio"]["input"].setdefault("transcription", {"model": self.model})
        event: dict[str, Any] = {"type": "session.update", "session": session}
        if event_id is not None:
            event["event_id"] = event_id
        return event

    _normalize_event: Callable[[Any], Any] = staticmethod(normalize_ga_event)

    # --- events: GA names, {client, name, data: {payload}} --------------------------------
    def _emit(self, member: Any, data: Mapping[str, Any]) -> None:
        ga = member if isinstance(member, GARealtimeAPIEvents) else GA_EVENT_FOR[member]
        self.listeners.emit(ga, EventPayload(client=self, name=ga.name, data={"payload": data}))

    def _emit_media(self, member: MediaEvents, **fields: Any) -> None:
        ga = GA_MEDIA_EVENT_FOR[member]
        if self.observer is not None:
            super()._emit_media(member, **fields)  # the observer's MediaEvent; no listener is keyed by `member`
        payload = {k: v for k, v in fields.items() if k != "call"}
        # Voximplant's typings put tag/mediaInfo at the top; GA guides read data.payload: both work.
        self.listeners.emit(ga, EventPayload(client=self, name=ga.name, **fields, data={"payload": payload}))

    async def connect(self, timeout_s: float = 10.0) -> None:
        await super().connect(timeout_s)
        response = getattr(self._connection.ws, "response", None)
        if response is not None:
            payload = {
                "status_code": response.status_code,
                "reason": response.reason_phrase,
                "headers": dict(response.headers.raw_items()),
            }
            # After the awaited create returns, so that the scenario has had its turn to listen.
            asyncio.get_running_loop().call_soon(self._emit, G.HTTPResponse, payload)

    def on_reconnected(self, reconnected: Reconnected) -> None:
        super().on_reconnected(reconnected)
        self._emit(
            G.ConnectorInformation,
            {"type": "connector.reconnected", "attempt": reconnected.attempt, "downtime_ms": reconnected.downtime_ms},
        )

    def on_closed(self, code: int, reason: str, was_clean: bool) -> None:
        if not was_clean:
            self._emit(G.WebSocketError, {"type": "websocket.error", "code": code, "reason": reason})
        super().on_closed(code, reason, was_clean)

    # --- client events: one object each ------------------------------------------------------
    def _send_ga(self, event_type: str, parameters: Mapping[str, Any] | None) -> None:
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, Mapping):
            raise TypeError(
                f"{event_type}: the GA client takes one object (the event body without 'type'), "
                f"not {type(parameters).__name__}; Beta's positional arguments do not apply"
            )
        body = {key: value for key, value in parameters.items() if key != "type"}
        if event_type == "session.update":
            session = body.get("session") or {}
            self._connection.update_session(session)  # replayed after a reconnect
            update = self._connection.session_update_for(session, body.get("event_id"))
            self._send({**body, **update})
            return
        if event_type == "conversation.item.create" and "item" in body:
            body["item"] = wire.item_for_wire(body["item"], self.dialect)
        elif event_type == "response.create" and body.get("response") is not None:
            body["response"] = wire.response_for_wire(body["response"], self.dialect, self.codec)
        elif event_type == "response.cancel":
            self._connection.response_cancelled(body.get("response_id"))
        elif event_type == "conversation.item.truncate" and "audio_end_ms" in body:
            body["audio_end_ms"] = int(body["audio_end_ms"])
        self._send({"type": event_type, **body})

    def sessionClose(self, parameters: Mapping[str, Any] | None = None) -> None:
        """`session.close` belongs to translation sessions (TranslationRealtimeAPIClient); on a
        realtime or transcription client it ends the session the only way those have: closing."""
        log.info("%s: sessionClose() on a %s client closes it", self.tasks.label, self.client_type.value)
        self.close()


_with_ga_methods(GARealtimeAPIClient)


def realtime_url_from_base(base_url: str) -> str:
    """Voximplant's `baseUrl` (`https://api.openai.com/`) as the Realtime WebSocket URL."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += "/realtime" if path.endswith("/v1") else "/v1/realtime"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _transcription_url(url: str) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k != "model"}
    query["intent"] = "transcription"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
