"""Wire rendering: items, content parts and responses as the session's dialect spells them."""

from __future__ import annotations

import base64
from typing import Any

from .engine_base import EngineBase
from .engine_state import (
    _CONTENT_TYPE,
    _Content,
    _Item,
    _Response,
)


class WireRendering(EngineBase):
    """One part of `EngineSession` (session.py), working on the session's state."""

    # ------------------------------------------------------------------ rendering

    def _render_content(self, content: _Content, with_audio: bool) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": _CONTENT_TYPE[self.dialect][content.kind]}
        if content.kind in ("input_text", "text"):
            wire["text"] = content.text
        elif content.kind in ("input_audio", "audio"):
            wire["transcript"] = content.transcript
            if with_audio:
                wire["audio"] = base64.b64encode(content.audio).decode()
        elif content.kind == "input_image":
            wire["image_url"] = content.image_url
            if content.detail is not None:
                wire["detail"] = content.detail
        elif content.kind == "item_reference":
            wire["id"] = content.ref_id
        return wire

    def _render_item(self, item: _Item, with_audio: bool = False) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": item.id, "object": "realtime.item", "type": item.type, "status": item.status}
        if item.type == "message":
            wire["role"] = item.role
            wire["content"] = [self._render_content(content, with_audio) for content in item.content]
        elif item.type == "function_call":
            wire.update(name=item.name, call_id=item.call_id, arguments=item.arguments)
        else:
            wire.update(call_id=item.call_id, output=item.output)
        return wire

    def _wire_format(self, fmt: str) -> Any:
        if self.dialect == "beta":
            return fmt
        return {
            "pcm16": {"type": "audio/pcm", "rate": 24000},
            "g711_ulaw": {"type": "audio/pcmu"},
            "g711_alaw": {"type": "audio/pcma"},
        }[fmt]

    def _render_response(
        self, response: _Response, status: str, status_details: Any = None, usage: Any = None
    ) -> dict[str, Any]:
        modalities = ["audio"] if response.audio_out else ["text"]
        wire: dict[str, Any] = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": status_details,
            "output": [self._render_item(item) for item in response.output],
            "conversation_id": self.conversation_id if response.in_conversation else None,
            "max_output_tokens": response.max_output_tokens,
            "usage": usage,
            "metadata": response.metadata,
        }
        if self.dialect == "ga":
            wire["output_modalities"] = modalities
            wire["audio"] = {"output": {"format": self._wire_format(response.output_format), "voice": response.voice}}
        else:
            wire["modalities"] = ["audio", "text"] if response.audio_out else ["text"]
            wire["voice"] = response.voice
            wire["output_audio_format"] = response.output_format
            wire["temperature"] = response.temperature
        return wire
