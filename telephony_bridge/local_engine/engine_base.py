"""The state `EngineSession` (session.py) shares with its parts (engine_input, engine_conversation,
engine_rendering, engine_responses), declared once so each part is type-checked on its own.

Only declarations: `EngineSession.__init__` assigns every attribute, and the methods below are
defined by `EngineSession` or by one of its parts. They are declared under TYPE_CHECKING so that at
run time this class adds nothing to the method resolution order that could shadow the real ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import Dialect, Settings
from .engine_state import SpeechRequest, _Item, _Response
from .script import Script
from .vad import VoiceActivityDetector


class EngineBase:
    """Declared state of one local-engine session; see `EngineSession.__init__` for the meaning."""

    dialect: Dialect
    script: Script
    realtime_factor: float
    chunk_ms: int
    max_message_bytes: int
    _speak: Callable[[str, int, str, float], bytes] | None
    _random: random.Random
    _names: dict[str, str]
    _now: float
    session: dict[str, Any]
    settings: Settings
    conversation_id: str
    items: list[_Item]
    _out: list[dict[str, Any]]
    _speech_requests: list[SpeechRequest]
    _active: _Response | None
    _turn_index: int
    _hears_used_for: int | None
    _followups: dict[str, str]
    _buffer: list[bytes]
    _buffer_bytes: int
    _stream_bytes: int
    _buffer_start_ms: int
    _pending_user_item: str | None
    _speech_onset_ms: int | None
    _vad: VoiceActivityDetector | None
    responses_created: int

    if TYPE_CHECKING:
        # session.py
        def _new_id(self, prefix: str) -> str: ...
        def _emit(self, type_: str, **fields: Any) -> None: ...
        def _fail_speech(self, response: _Response, message: str) -> None: ...
        @staticmethod
        def _check_event_keys(event: dict[str, Any], allowed: set[str]) -> None: ...

        # engine_conversation.py
        def _find(self, item_id: Any) -> int | None: ...
        def _append_item(
            self, item: _Item, previous_item_id: str | None = None, explicit: bool = False
        ) -> str | None: ...
        def _announce_item(self, item: _Item, previous: str | None) -> None: ...

        # engine_rendering.py
        def _render_item(self, item: _Item, with_audio: bool = False) -> dict[str, Any]: ...
        def _render_response(
            self, response: _Response, status: str, status_details: Any = None, usage: Any = None
        ) -> dict[str, Any]: ...

        # engine_responses.py
        def _create_response(self, params: dict[str, Any], event_id: str | None) -> None: ...
        def _stop_response(self, response: _Response, status: str, details: dict[str, Any]) -> None: ...
