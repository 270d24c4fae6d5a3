"""What a local-engine Live session keeps of a line it is saying and of a delegated tool call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .script import Turn

__all__ = ["Delegation", "SpokenLine"]


@dataclass(slots=True)
class SpokenLine:
    """Something the engine is saying: audio in the session's format, words on a schedule."""

    text: str
    audio: bytes = b""
    pos: int = 0  # bytes already output
    start_ms: int = 0  # timeline position of its first byte
    words: list[tuple[int, str]] = field(default_factory=list)  # (offset ms, word)
    spoken_words: int = 0
    ready: bool = False
    request_id: str | None = None
    then: Callable[[], None] | None = None  # what to do once it has been said (to its end)


@dataclass(slots=True)
class Delegation:
    id: str
    turn: Turn
    target: str
    response_id: str | None = None
    call_id: str | None = None
    output: str | None = None
