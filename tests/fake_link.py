"""A carrier link for unit tests of the Call and its Playout: records what would reach the phone."""

from __future__ import annotations

from dataclasses import dataclass, field

from telephony_bridge.audio.formats import ULAW_8K, AudioFormat
from telephony_bridge.carriers.base import Capabilities

MARKS = Capabilities(audio_formats=(ULAW_8K,), marks=True, clear=True)


@dataclass
class FakeLink:
    capabilities: Capabilities = MARKS
    audio_format: AudioFormat = ULAW_8K
    sent: list[tuple[str, object]] = field(default_factory=list)  # ("media", bytes) | ("mark", name) | ("clear", None)

    async def send_media(self, audio: bytes) -> None:
        self.sent.append(("media", audio))

    async def send_mark(self, name: str) -> None:
        self.sent.append(("mark", name))

    async def send_clear(self) -> None:
        self.sent.append(("clear", None))
