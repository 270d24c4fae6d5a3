"""camelCase names of the Voximplant surface and their snake_case twins, declared once.

Scenario authors port VoxEngine JavaScript line for line (`client.sessionUpdate(...)`) or write
idiomatic Python (`client.session_update(...)`). Both names are bound to the same function object
by `with_snake_case_twins`, from the one table below; there is never a second implementation.
"""

from __future__ import annotations

import re
from typing import TypeVar

# Every camelCase public method of the Voximplant surface we keep, on any class.
CAMEL_CASE_METHODS: tuple[str, ...] = (
    # RealtimeAPIClient
    "addEventListener",
    "removeEventListener",
    "clearMediaBuffer",
    "conversationItemCreate",
    "conversationItemDelete",
    "conversationItemTruncate",
    "conversationItemRetrieve",
    "responseCancel",
    "responseCreate",
    "sendMediaTo",
    "sessionUpdate",
    "stopMediaTo",
    "webSocketId",
    # GA RealtimeAPIClient only
    "inputAudioBufferClear",
    "inputAudioBufferCommit",
    "sessionClose",
    # Call
    "handleTones",
    "transferTo",
    "customData",
    "startPlayback",
    "stopPlayback",
    "stopRecord",
    "sendDigits",
    # VoxEngine context
    "sendMediaBetween",
    "createRealtimeAPIClient",
    "getSecretValue",
    # Net
    "httpRequestAsync",
    # OpenAI's RealtimeClient (openai-realtime-api-beta) and its event handler and conversation
    "onNext",
    "offNext",
    "clearEventHandlers",
    "waitForNext",
    "isConnected",
    "updateSession",
    "addTool",
    "removeTool",
    "registerTool",
    "unregisterTool",
    "executeTool",
    "getTools",
    "getConversationItems",
    "getTurnDetectionType",
    "deleteItem",
    "sendUserMessageContent",
    "appendInputAudio",
    "createResponse",
    "cancelResponse",
    "waitForNextItem",
    "waitForNextCompletedItem",
    "waitForSessionCreated",
    "getItems",
    "getItem",
    "processEvent",
    "queueInputAudio",
    # The Agents SDK's OpenAIRealtimeWebSocket transport
    "connectionState",
    "currentModel",
    "sendAudio",
    "sendFunctionCallOutput",
    "sendMessage",
    "addImage",
    "updateSessionConfig",
    "resetHistory",
    "sendEvent",
    # The OpenAI namespace's constructors of those shapes (and the WebSocket one's WebRTC twin)
    "RealtimeClient",
    "RealtimeWebSocket",
    "RealtimeWebRTC",
    # Outbound calls
    "callPSTN",
    # GPT-Live: OpenAI.createLiveAPIClient and its LiveAPIClient
    "createLiveAPIClient",
    "sessionStart",
    "sessionInstructionsAppend",
    "sessionThinkingAppend",
    "sessionCommentaryAppend",
    "sessionInputAudioMute",
    "sessionInputAudioUnmute",
    "sessionOutputAudioFixturePlay",
    "decisionCreate",
    "decisionItemCreate",
    "decisionItemDelete",
    "responseItemCreate",
    "sessionClose",
)


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


C = TypeVar("C", bound=type)


def with_snake_case_twins(cls: C) -> C:
    """Bind `snake_case` twins to every camelCase method of the table that `cls` defines, except those
    `cls` lists in `_without_twins` (a twin's name it uses for something else)."""
    without = cls.__dict__.get("_without_twins", ())
    for camel in CAMEL_CASE_METHODS:
        if camel in cls.__dict__ and camel not in without:
            twin = snake_case(camel)
            if twin in cls.__dict__ and cls.__dict__[twin] is not cls.__dict__[camel]:
                raise TypeError(f"{cls.__name__}.{twin} would shadow the twin of {camel}")
            setattr(cls, twin, cls.__dict__[camel])
    return cls
