"""openai-realtime-api-beta's `RealtimeConversation`: the client-side cache of a conversation.

Pure: server events (dicts) in, `(item, delta)` out. Items are the server's item dicts plus a
`formatted` dict — `audio` (PCM16 samples, `array('h')`), `text`, `transcript`, and `tool`
(`{type, name, call_id, arguments}`) for a function call or `output` for its output — exactly as the
JavaScript library shapes them, so code that reads `item["formatted"]["transcript"]` ports as is.

Both wire dialects are understood: GA's `response.output_audio.delta` is the beta
`response.audio.delta`, and GA's `conversation.item.added` / `done` stand for `conversation.item.created`.
Events about items the cache never saw are ignored (the library throws; on a phone call an event
arriving after a reconnect's replay must not break the call).
"""

from __future__ import annotations

import binascii
import copy
from array import array
from typing import Any

from telephony_bridge.naming import with_snake_case_twins

DEFAULT_FREQUENCY = 24_000  # PCM16 at 24 kHz: what the library (and the model) speak

# GA spellings of the events the cache handles, mapped to the library's (beta) names.
_GA_NAMES = {
    "conversation.item.added": "conversation.item.created",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_text.delta": "response.text.delta",
}
_TEXT_PARTS = ("text", "input_text", "output_text")


def pcm16_samples(data: bytes | bytearray | memoryview | array) -> array:
    """PCM16 little-endian bytes (or an array('h')) as an array of samples."""
    if isinstance(data, array):
        return array("h", data)
    samples = array("h")
    raw = bytes(data)
    samples.frombytes(raw[: len(raw) - len(raw) % 2])
    return samples


def _ensure_formatted(item: dict[str, Any]) -> dict[str, Any]:
    formatted = item.get("formatted")
    if formatted is None:
        formatted = item["formatted"] = {"audio": array("h"), "text": "", "transcript": ""}
    return formatted


@with_snake_case_twins
class RealtimeConversation:
    defaultFrequency = DEFAULT_FREQUENCY

    def __init__(self, keep_audio: bool = True) -> None:
        self.keep_audio = keep_audio  # model audio kept in `formatted.audio` (48 kB a second)
        self.clear()

    def clear(self) -> bool:
        self.itemLookup: dict[str, dict[str, Any]] = {}
        self.items: list[dict[str, Any]] = []
        self.responseLookup: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []
        self.queuedSpeechItems: dict[str, dict[str, Any]] = {}
        self.queuedTranscriptItems: dict[str, dict[str, Any]] = {}
        self.queuedInputAudio: array | None = None
        return True

    def queueInputAudio(self, inputAudio: array) -> array:
        """Audio committed by createResponse: given to the next user item created."""
        self.queuedInputAudio = inputAudio
        return inputAudio

    def getItem(self, id: str) -> dict[str, Any] | None:
        return self.itemLookup.get(id)

    def getItems(self) -> list[dict[str, Any]]:
        return list(self.items)

    def processEvent(self, event: dict[str, Any], *args: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """`(item, delta)` for an event the cache handles; `(None, None)` for any other."""
        kind = _GA_NAMES.get(event.get("type", ""), event.get("type", ""))
        processor = _PROCESSORS.get(kind)
        if processor is None:
            return None, None
        return processor(self, event, *args)

    # --- processors (the library's EventProcessors) -------------------------------------------
    def _item_created(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, None]:
        raw = event.get("item") or {}
        item_id = raw.get("id")
        if not item_id:
            return None, None
        if item_id in self.itemLookup:  # GA announces an item twice (output_item.added, item.added)
            return self.itemLookup[item_id], None
        item = copy.deepcopy(raw)
        self.itemLookup[item_id] = item
        self.items.append(item)
        item.setdefault("content", [])
        formatted = item["formatted"] = {"audio": array("h"), "text": "", "transcript": ""}
        speech = self.queuedSpeechItems.pop(item_id, None)
        if speech is not None and speech.get("audio") is not None:
            formatted["audio"] = speech["audio"]
        for part in item["content"]:
            if part.get("type") in _TEXT_PARTS and part.get("text"):
                formatted["text"] += part["text"]
            if part.get("transcript"):
                formatted["transcript"] += part["transcript"]
        queued = self.queuedTranscriptItems.pop(item_id, None)
        if queued is not None:
            formatted["transcript"] = queued["transcript"]
        if item.get("type") == "message":
            if item.get("role") == "user":
                item["status"] = "completed"
                if self.queuedInputAudio is not None:
                    formatted["audio"] = self.queuedInputAudio
                    self.queuedInputAudio = None
            elif item.get("status") != "completed":
                item["status"] = "in_progress"
        elif item.get("type") == "function_call":
            formatted["tool"] = {
                "type": "function",
                "name": item.get("name"),
                "call_id": item.get("call_id"),
                "arguments": item.get("arguments") or "",
            }
            item["arguments"] = item.get("arguments") or ""
            if item.get("status") != "completed":
                item["status"] = "in_progress"
        elif item.get("type") == "function_call_output":
            item["status"] = "completed"
            formatted["output"] = item.get("output")
        return item, None

    def _item_truncated(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, None]:
        item = self.itemLookup.get(event.get("item_id", ""))
        if item is None:
            return None, None
        formatted = _ensure_formatted(item)
        end = int(float(event.get("audio_end_ms") or 0) * self.defaultFrequency / 1000)
        formatted["transcript"] = ""
        formatted["audio"] = formatted["audio"][:end]
        return item, None

    def _item_deleted(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, None]:
        item = self.itemLookup.pop(event.get("item_id", ""), None)
        if item is None:
            return None, None
        if item in self.items:
            self.items.remove(item)
        return item, None

    def _transcription_completed(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        item_id, transcript = event.get("item_id", ""), event.get("transcript") or ""
        shown = transcript or " "  # the library's single space: "transcribed, and empty"
        item = self.itemLookup.get(item_id)
        if item is None:  # in VAD mode the transcript can come before the item
            self.queuedTranscriptItems[item_id] = {"transcript": shown}
            return None, None
        content = item.get("content") or []
        index = event.get("content_index", 0)
        if 0 <= index < len(content):
            content[index]["transcript"] = transcript
        _ensure_formatted(item)["transcript"] = shown
        return item, {"transcript": transcript}

    def _speech_started(self, event: dict[str, Any]) -> tuple[None, None]:
        self.queuedSpeechItems[event.get("item_id", "")] = {"audio_start_ms": event.get("audio_start_ms", 0)}
        return None, None

    def _speech_stopped(self, event: dict[str, Any], input_audio: array | None = None) -> tuple[None, None]:
        speech = self.queuedSpeechItems.setdefault(
            event.get("item_id", ""), {"audio_start_ms": event.get("audio_end_ms", 0)}
        )
        speech["audio_end_ms"] = event.get("audio_end_ms", 0)
        if input_audio is not None:
            start = int(speech["audio_start_ms"] * self.defaultFrequency / 1000)
            end = int(speech["audio_end_ms"] * self.defaultFrequency / 1000)
            speech["audio"] = input_audio[start:end]
        return None, None

    def _response_created(self, event: dict[str, Any]) -> tuple[None, None]:
        response = event.get("response") or {}
        rid = response.get("id")
        if rid and rid not in self.responseLookup:
            kept = {**response, "output": []}
            self.responseLookup[rid] = kept
            self.responses.append(kept)
        return None, None

    def _output_item_added(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, None]:
        response = self.responseLookup.get(event.get("response_id", ""))
        item_id = (event.get("item") or {}).get("id")
        if response is not None and item_id and item_id not in response["output"]:
            response["output"].append(item_id)
        if item_id and item_id not in self.itemLookup:
            # GA sends no conversation.item.created for an answer's items: this is where they appear
            return self._item_created(event)
        return None, None

    def _output_item_done(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, None]:
        done = event.get("item") or {}
        item = self.itemLookup.get(done.get("id", ""))
        if item is None:
            return None, None
        item["status"] = done.get("status", "completed")
        if item.get("type") == "function_call" and done.get("arguments") is not None:
            # the final arguments, in case deltas were missed (a reconnect)
            item["arguments"] = done["arguments"]
            _ensure_formatted(item).setdefault("tool", {})["arguments"] = done["arguments"]
        return item, None

    def _content_part_added(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, None]:
        item = self.itemLookup.get(event.get("item_id", ""))
        if item is None:
            return None, None
        part = dict(event.get("part") or {})
        content = item.setdefault("content", [])
        index = event.get("content_index", len(content))
        if index >= len(content):
            content.append(part)
        return item, None

    def _content(self, item: dict[str, Any], index: int, kind: str) -> dict[str, Any]:
        content = item.setdefault("content", [])
        while len(content) <= index:
            content.append({"type": kind})
        return content[index]

    def _transcript_delta(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        item = self.itemLookup.get(event.get("item_id", ""))
        if item is None:
            return None, None
        delta = event.get("delta") or ""
        part = self._content(item, event.get("content_index", 0), "audio")
        part["transcript"] = (part.get("transcript") or "") + delta
        _ensure_formatted(item)["transcript"] += delta
        return item, {"transcript": delta}

    def _audio_delta(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        item = self.itemLookup.get(event.get("item_id", ""))
        if item is None:
            return None, None
        try:
            samples = pcm16_samples(binascii.a2b_base64(event.get("delta") or ""))
        except binascii.Error:
            return None, None
        if self.keep_audio:
            _ensure_formatted(item)["audio"].extend(samples)
        return item, {"audio": samples}

    def _text_delta(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        item = self.itemLookup.get(event.get("item_id", ""))
        if item is None:
            return None, None
        delta = event.get("delta") or ""
        part = self._content(item, event.get("content_index", 0), "text")
        part["text"] = (part.get("text") or "") + delta
        _ensure_formatted(item)["text"] += delta
        return item, {"text": delta}

    def _arguments_delta(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        item = self.itemLookup.get(event.get("item_id", ""))
        if item is None:
            return None, None
        delta = event.get("delta") or ""
        item["arguments"] = (item.get("arguments") or "") + delta
        tool = _ensure_formatted(item).setdefault(
            "tool", {"type": "function", "name": item.get("name"), "call_id": item.get("call_id"), "arguments": ""}
        )
        tool["arguments"] += delta
        return item, {"arguments": delta}


_PROCESSORS: dict[str, Any] = {
    "conversation.item.created": RealtimeConversation._item_created,
    "conversation.item.truncated": RealtimeConversation._item_truncated,
    "conversation.item.deleted": RealtimeConversation._item_deleted,
    "conversation.item.input_audio_transcription.completed": RealtimeConversation._transcription_completed,
    "input_audio_buffer.speech_started": RealtimeConversation._speech_started,
    "input_audio_buffer.speech_stopped": RealtimeConversation._speech_stopped,
    "response.created": RealtimeConversation._response_created,
    "response.output_item.added": RealtimeConversation._output_item_added,
    "response.output_item.done": RealtimeConversation._output_item_done,
    "response.content_part.added": RealtimeConversation._content_part_added,
    "response.audio_transcript.delta": RealtimeConversation._transcript_delta,
    "response.audio.delta": RealtimeConversation._audio_delta,
    "response.text.delta": RealtimeConversation._text_delta,
    "response.function_call_arguments.delta": RealtimeConversation._arguments_delta,
}
