"""The conversation: items as the client creates, deletes, retrieves and truncates them."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .config import (
    BYTES_PER_MS,
    ClientError,
)
from .engine_base import EngineBase
from .engine_state import (
    _ROLE_CONTENT,
    _WIRE_TO_KIND,
    _Content,
    _Item,
)


class ConversationStore(EngineBase):
    """One part of `EngineSession` (session.py), working on the session's state."""

    # ------------------------------------------------------------------ conversation

    def _find(self, item_id: Any) -> int | None:
        for index, item in enumerate(self.items):
            if item.id == item_id:
                return index
        return None

    def _append_item(self, item: _Item, previous_item_id: str | None = None, explicit: bool = False) -> str | None:
        """Insert after `previous_item_id` ("root": at the start) or at the end; return the previous id."""
        if explicit:
            if previous_item_id == "root":
                self.items.insert(0, item)
                return None
            index = self._find(previous_item_id)
            if index is None:
                raise ClientError(
                    f"Previous item with id '{previous_item_id}' not found.",
                    "previous_item_not_found",
                    "previous_item_id",
                )
            self.items.insert(index + 1, item)
            return previous_item_id
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        return previous

    def _announce_item(self, item: _Item, previous: str | None) -> None:
        rendered = self._render_item(item)
        if self.dialect == "ga":
            self._emit("conversation.item.added", previous_item_id=previous, item=rendered)
            self._emit("conversation.item.done", previous_item_id=previous, item=rendered)
        else:
            self._emit("conversation.item.created", previous_item_id=previous, item=rendered)

    def _on_conversation_item_create(self, event: dict) -> None:
        self._check_event_keys(event, {"item", "previous_item_id"})
        raw = event.get("item")
        if not isinstance(raw, dict):
            raise ClientError("Missing required parameter: 'item'.", "missing_required_parameter", "item")
        item = self._parse_item(raw)
        previous_id = event.get("previous_item_id")
        previous = self._append_item(item, previous_id, explicit=previous_id is not None)
        self._announce_item(item, previous)

    def _parse_item(self, raw: dict) -> _Item:
        kind = raw.get("type")
        item_id = raw.get("id")
        if item_id is not None:
            if not isinstance(item_id, str) or not item_id:
                raise ClientError("Invalid 'item.id': expected a non-empty string.", "invalid_type", "item.id")
            if self._find(item_id) is not None:
                raise ClientError(f"Item with id '{item_id}' already exists.", "item_already_exists", "item.id")
        else:
            item_id = self._new_id("item_")
        common = {"type", "id", "object", "status"}
        if kind == "message":
            self._check_item_keys(raw, common | {"role", "content"})
            role = raw.get("role")
            if role not in ("user", "assistant", "system"):
                raise ClientError(
                    f"Invalid value: {role!r}. Supported values are: 'user', 'assistant', 'system'.",
                    "invalid_value",
                    "item.role",
                )
            content = raw.get("content")
            if not isinstance(content, list) or not content:
                raise ClientError(
                    "Missing required parameter: 'item.content'.", "missing_required_parameter", "item.content"
                )
            parts = [self._parse_content(part, role, index) for index, part in enumerate(content)]
            return _Item(id=item_id, type="message", role=role, content=parts, status="completed")
        if kind == "function_call":
            self._check_item_keys(raw, common | {"call_id", "name", "arguments"})
            name, arguments = raw.get("name"), raw.get("arguments", "")
            if not isinstance(name, str) or not isinstance(arguments, str):
                raise ClientError("A function_call item needs string 'name' and 'arguments'.", "invalid_type", "item")
            call_id = raw.get("call_id") or self._new_id("call_")
            return _Item(id=item_id, type="function_call", call_id=call_id, name=name, arguments=arguments)
        if kind == "function_call_output":
            self._check_item_keys(raw, common | {"call_id", "output"})
            call_id, output = raw.get("call_id"), raw.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise ClientError(
                    "A function_call_output item needs string 'call_id' and 'output'.",
                    "missing_required_parameter",
                    "item.call_id",
                )
            if not any(item.type == "function_call" and item.call_id == call_id for item in self.items):
                raise ClientError(
                    f"Tool call ID '{call_id}' not found in conversation.", "invalid_value", "item.call_id"
                )
            return _Item(id=item_id, type="function_call_output", call_id=call_id, output=output)
        raise ClientError(
            f"Invalid value: {kind!r}. Supported values are: 'message', 'function_call', 'function_call_output'.",
            "invalid_value",
            "item.type",
        )

    @staticmethod
    def _check_item_keys(raw: dict, allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                raise ClientError(f"Unknown parameter: 'item.{key}'.", "unknown_parameter", f"item.{key}")

    def _parse_content(self, part: Any, role: str, index: int) -> _Content:
        param = f"item.content[{index}]"
        if not isinstance(part, dict):
            raise ClientError(f"Invalid type for '{param}': expected an object.", "invalid_type", param)
        wire_type = part.get("type")
        allowed = _ROLE_CONTENT[self.dialect][role]
        if wire_type not in allowed:
            raise ClientError(
                f"Invalid value: {wire_type!r}. Supported values for {role} messages are: "
                + ", ".join(f"'{t}'" for t in sorted(allowed))
                + ".",
                "invalid_value",
                f"{param}.type",
            )
        kind = _WIRE_TO_KIND[wire_type]
        content = _Content(kind=kind)
        if kind in ("input_text", "text"):
            if not isinstance(part.get("text"), str):
                raise ClientError(
                    f"Missing required parameter: '{param}.text'.", "missing_required_parameter", f"{param}.text"
                )
            content.text = part["text"]
        elif kind in ("input_audio", "audio"):
            audio = part.get("audio")
            if audio is not None:
                try:
                    content.audio = base64.b64decode(audio, validate=True)
                except (binascii.Error, ValueError, TypeError):
                    raise ClientError(
                        f"Invalid '{param}.audio'. Expected base64-encoded audio bytes.",
                        "invalid_value",
                        f"{param}.audio",
                    ) from None
            content.audio_format = self.settings.input_format if kind == "input_audio" else self.settings.output_format
            content.transcript = part.get("transcript")
        elif kind == "input_image":
            content.image_url = part.get("image_url")
            content.detail = part.get("detail")
        elif kind == "item_reference":
            content.ref_id = part.get("id")
        return content

    def _on_conversation_item_delete(self, event: dict) -> None:
        self._check_event_keys(event, {"item_id"})
        item_id = event.get("item_id")
        index = self._find(item_id)
        if index is None:
            raise ClientError(
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                "item_delete_invalid_item_id",
                "item_id",
            )
        if self.items[index].response_id is not None:
            raise ClientError(
                f"Item '{item_id}' belongs to the response in progress; cancel it first.",
                "item_in_active_response",
                "item_id",
            )
        del self.items[index]
        self._emit("conversation.item.deleted", item_id=item_id)

    def _on_conversation_item_retrieve(self, event: dict) -> None:
        self._check_event_keys(event, {"item_id"})
        item_id = event.get("item_id")
        index = self._find(item_id)
        if index is None:
            raise ClientError(f"Item with item_id not found: {item_id}", "item_retrieve_invalid_item_id", "item_id")
        self._emit("conversation.item.retrieved", item=self._render_item(self.items[index], with_audio=True))

    def _on_conversation_item_truncate(self, event: dict) -> None:
        self._check_event_keys(event, {"item_id", "content_index", "audio_end_ms"})
        item_id = event.get("item_id")
        content_index = _non_negative_int(event.get("content_index"), "content_index")
        audio_end_ms = _non_negative_int(event.get("audio_end_ms"), "audio_end_ms")
        index = self._find(item_id)
        if index is None:
            raise ClientError(f"Item with item_id not found: {item_id}", "item_truncate_invalid_item_id", "item_id")
        item = self.items[index]
        if item.type != "message" or item.role != "assistant":
            raise ClientError(
                "Only model output audio messages can be truncated", "unsupported_content_type", "item_id"
            )
        if content_index >= len(item.content) or item.content[content_index].kind != "audio":
            raise ClientError(
                "Only model output audio messages can be truncated", "unsupported_content_type", "content_index"
            )
        content = item.content[content_index]
        bytes_per_ms = BYTES_PER_MS[content.audio_format]
        available_ms = len(content.audio) // bytes_per_ms
        if audio_end_ms > available_ms:
            raise ClientError(
                f"Audio content of {available_ms}ms is already shorter than {audio_end_ms}ms",
                "invalid_value",
                "audio_end_ms",
            )
        content.audio = content.audio[: audio_end_ms * bytes_per_ms]
        # As the real API: the server-side transcript is removed, so the context holds no text the
        # caller did not hear.
        content.transcript = ""
        self._emit(
            "conversation.item.truncated", item_id=item.id, content_index=content_index, audio_end_ms=audio_end_ms
        )


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ClientError(f"Missing required parameter: '{name}' (an integer).", "missing_required_parameter", name)
    if value < 0:
        raise ClientError(f"Invalid '{name}': must be non-negative.", "invalid_value", name)
    return value
