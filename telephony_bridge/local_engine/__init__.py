"""The embedded local engine: a WebSocket server that speaks the OpenAI Realtime API (GA and beta)
well enough for the official client, and simulates a model from a script. Offline; for development
and tests. See docs/local-engine.md.
"""

from .script import Script, ScriptError, ToolCall, Turn
from .server import LocalEngine
from .session import EngineSession, SpeechRequest
from .tts import synthesize, synthesize_async

__all__ = [
    "EngineSession",
    "LocalEngine",
    "Script",
    "ScriptError",
    "SpeechRequest",
    "ToolCall",
    "Turn",
    "synthesize",
    "synthesize_async",
]
