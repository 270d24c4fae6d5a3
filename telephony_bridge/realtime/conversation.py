"""A mirror of the model's conversation, kept from server events, to replay after a reconnect.

When the model WebSocket drops (or is recycled before the provider's session cap) the new session
starts empty. The client replays the conversation so far as items — as text, since the audio is
gone — trimmed to what the caller actually heard: an answer truncated at a barge-in is replayed only
up to the words the caller heard, so the model does not believe it said more than it did.

Pure: server events (dicts) in, item dicts out. Bounded: only the newest `max_items` are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

_AUDIO_PARTS = ("audio", "output_audio", "input_audio")
_TEXT_PARTS = ("text", "output_text", "input_text")


@dataclass(slots=True)
class MirroredItem:
    item_id: str
    kind: str  # message | function_call | function_call_output
    role: str | None = None
    text: str = ""
    name: str | None = None
    call_id: str | None = None
    arguments: str | None = None
    output: str | None = None
    audio_ms: float = 0.0  # model audio received for this item, to scale a truncation to words
    heard_ms: float | None = None  # set when truncated at a barge-in

    def heard_text(self) -> str:
        if self.heard_ms is None or self.audio_ms <= 0:
            return self.text
        words = self.text.split()
        keep = round(len(words) * min(1.0, self.heard_ms / self.audio_ms))
        return " ".join(words[:keep])


@dataclass
class ConversationMirror:
    max_items: int = 200
    items: OrderedDict[str, MirroredItem] = field(default_factory=OrderedDict)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind in (
            "conversation.item.created",
            "conversation.item.added",
            "conversation.item.done",
            "response.output_item.added",
            "response.output_item.done",
        ):
            self._upsert(event.get("item") or {})
        elif kind == "conversation.item.input_audio_transcription.completed":
            item = self.items.get(event.get("item_id", ""))
            if item is not None:
                item.text = event.get("transcript") or ""
        elif kind in (
            "response.audio_transcript.delta",
            "response.output_audio_transcript.delta",
            "response.text.delta",
            "response.output_text.delta",
        ):
            item = self.items.get(event.get("item_id", ""))
            if item is not None:
                item.text += event.get("delta") or ""
        elif kind in ("response.audio_transcript.done", "response.output_audio_transcript.done"):
            item = self.items.get(event.get("item_id", ""))
            if item is not None and event.get("transcript") is not None:
                item.text = event["transcript"]
        elif kind == "conversation.item.truncated":
            item = self.items.get(event.get("item_id", ""))
            if item is not None:
                item.heard_ms = float(event.get("audio_end_ms") or 0)
        elif kind == "conversation.item.deleted":
            self.items.pop(event.get("item_id", ""), None)
        elif kind == "response.function_call_arguments.done":
            item = self.items.get(event.get("item_id", ""))
            if item is not None:
                item.arguments = event.get("arguments")
                item.name = event.get("name") or item.name
                item.call_id = event.get("call_id") or item.call_id

    def audio_received(self, item_id: str, duration_ms: float) -> None:
        item = self.items.get(item_id)
        if item is not None:
            item.audio_ms += duration_ms

    def _upsert(self, raw: dict[str, Any]) -> None:
        item_id = raw.get("id")
        if not item_id:
            return
        item = self.items.get(item_id)
        if item is None:
            item = MirroredItem(item_id=item_id, kind=raw.get("type", "message"), role=raw.get("role"))
            self.items[item_id] = item
            while len(self.items) > self.max_items:
                self.items.popitem(last=False)
        if item.kind == "function_call":
            item.name = raw.get("name") or item.name
            item.call_id = raw.get("call_id") or item.call_id
            item.arguments = raw.get("arguments") or item.arguments
        elif item.kind == "function_call_output":
            item.call_id = raw.get("call_id") or item.call_id
            item.output = raw.get("output") if raw.get("output") is not None else item.output
        else:
            text = _text_of(raw.get("content") or [])
            if text:
                item.text = text

    def replay_items(self) -> list[dict[str, Any]]:
        """Beta-shaped items (the dialect layer translates them for GA), oldest first, as heard."""
        replay: list[dict[str, Any]] = []
        for item in self.items.values():
            if item.kind == "function_call" and item.call_id and item.name:
                replay.append(
                    {
                        "type": "function_call",
                        "call_id": item.call_id,
                        "name": item.name,
                        "arguments": item.arguments or "{}",
                    }
                )
            elif item.kind == "function_call_output" and item.call_id:
                replay.append({"type": "function_call_output", "call_id": item.call_id, "output": item.output or ""})
            elif item.kind == "message" and item.role in ("user", "system"):
                text = item.text or "[the caller spoke; no transcript]"
                replay.append({"type": "message", "role": item.role, "content": [{"type": "input_text", "text": text}]})
            elif item.kind == "message" and item.role == "assistant":
                text = item.heard_text()
                if text:
                    replay.append({"type": "message", "role": "assistant", "content": [{"type": "text", "text": text}]})
        return replay


def _text_of(content: list[dict[str, Any]]) -> str:
    parts = []
    for part in content:
        if part.get("type") in _TEXT_PARTS and part.get("text"):
            parts.append(part["text"])
        elif part.get("type") in _AUDIO_PARTS and part.get("transcript"):
            parts.append(part["transcript"])
    return " ".join(parts)
