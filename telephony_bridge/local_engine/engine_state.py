"""The local engine's session state as data: conversation items, responses in flight, speech
requests, and the tables that map them to each dialect's wire names. No behaviour beyond helpers."""

from __future__ import annotations

import re
import string
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from telephony_bridge.audio import g711

MAX_MESSAGE_BYTES = 1 << 20
MIN_COMMIT_MS = 100

_CLIENT_TYPES = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
    }
)
_BETA_ONLY_CLIENT_TYPES = frozenset({"transcription_session.update"})

_NAMES = {
    "ga": {
        "audio_delta": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript_delta": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "text_delta": "response.output_text.delta",
        "text_done": "response.output_text.done",
    },
    "beta": {
        "audio_delta": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript_delta": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "text_delta": "response.text.delta",
        "text_done": "response.text.done",
    },
}
# Internal content kinds -> wire content types.
_CONTENT_TYPE = {
    "ga": {
        "input_text": "input_text",
        "input_audio": "input_audio",
        "input_image": "input_image",
        "text": "output_text",
        "audio": "output_audio",
    },
    "beta": {
        "input_text": "input_text",
        "input_audio": "input_audio",
        "item_reference": "item_reference",
        "text": "text",
        "audio": "audio",
    },
}
_WIRE_TO_KIND = {
    "input_text": "input_text",
    "input_audio": "input_audio",
    "input_image": "input_image",
    "item_reference": "item_reference",
    "output_text": "text",
    "output_audio": "audio",
    "text": "text",
    "audio": "audio",
}
_ROLE_CONTENT = {
    "ga": {
        "user": {"input_text", "input_audio", "input_image"},
        "system": {"input_text"},
        "assistant": {"output_text", "output_audio"},
    },
    "beta": {
        "user": {"input_text", "input_audio", "item_reference"},
        "system": {"input_text"},
        "assistant": {"text", "audio"},
    },
}
_SAY_INSTRUCTION = re.compile(r"^\s*say(?:\s+exactly)?\s*:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """Synthesise `text` as PCM16 mono at `sample_rate` and hand it to `EngineSession.speech_ready`."""

    id: str
    text: str
    sample_rate: int
    voice: str
    speed: float


@dataclass(slots=True)
class _Content:
    kind: str  # input_text | input_audio | input_image | item_reference | text | audio
    text: str | None = None
    transcript: str | None = None
    audio: bytes = b""
    audio_format: str = "pcm16"
    image_url: str | None = None
    detail: str | None = None
    ref_id: str | None = None


@dataclass(slots=True)
class _Item:
    id: str
    type: str  # message | function_call | function_call_output
    status: str = "completed"
    role: str | None = None
    content: list[_Content] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    response_id: str | None = None  # set while the item belongs to the response in flight


@dataclass(slots=True)
class _Until:
    at_ms: float


@dataclass(slots=True)
class _AwaitSpeech:
    request: SpeechRequest
    pcm: bytes | None = None
    error: str | None = None


@dataclass(slots=True)
class _Say:
    text: str


@dataclass(slots=True)
class _Call:
    name: str
    arguments: str
    followup: str | None


@dataclass(slots=True)
class _Response:
    id: str
    plan: list[_Say | _Call]
    audio_out: bool
    output_format: str
    voice: Any
    speed: float
    in_conversation: bool
    metadata: dict[str, str] | None
    max_output_tokens: Any
    temperature: float | None
    flow: Generator[Any, Any, None] | None = None
    wait: Any = None
    output: list[_Item] = field(default_factory=list)
    open_item: _Item | None = None  # the message whose content part is still streaming
    transcript_sent: str = ""


def _chunks_of(data: bytes, size: int) -> Iterable[tuple[int, bytes]]:
    for offset in range(0, len(data), size):
        yield offset, data[offset : offset + size]


def _words(text: str) -> list[str]:
    """Transcript deltas: each word with the whitespace before it, so the deltas join to `text`."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _to_pcm16(raw: bytes, fmt: str) -> bytes:
    if fmt == "pcm16":
        return raw
    return g711.ulaw_decode(raw) if fmt == "g711_ulaw" else g711.alaw_decode(raw)


def _from_pcm16(pcm: bytes, fmt: str) -> bytes:
    if fmt == "pcm16":
        return pcm
    return g711.ulaw_encode(pcm) if fmt == "g711_ulaw" else g711.alaw_encode(pcm)
