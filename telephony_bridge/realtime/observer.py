"""What a model client tells its observer (the call journal, the process metrics), as typed events.

An observer is a plain callable `observer(client, event)` where `event` is one of the frozen
dataclasses below; consumers match on the type (`isinstance` or `match`), never on strings. They
live here, low in the layers, so that `server/` can consume them and `realtime/` can produce them
without either knowing the Voximplant-facing client.

None of these is built per audio frame: model audio deltas are reported only as a sampled
`DownlinkLatency`, caller audio not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from telephony_bridge.realtime.events import MediaEvents, RealtimeAPIEvents

__all__ = [
    "ClientEventSent",
    "DownlinkLatency",
    "Interrupted",
    "MediaEvent",
    "Observer",
    "ObserverEvent",
    "ServerEvent",
    "Truncation",
]


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """A server event from the model (never an audio delta), after the client's bookkeeping."""

    member: RealtimeAPIEvents
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """One of `OpenAI.Beta.Events` (media started/ended, reconnecting/reconnected); `fields` are the
    payload the scenario's listeners get, without the `call` object."""

    member: MediaEvents
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ClientEventSent:
    """A control event the client queued for the model (never caller audio)."""

    event: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Truncation:
    item_id: str
    audio_end_ms: int
    deleted: bool  # nothing of the item was heard: it was deleted, not truncated


@dataclass(frozen=True, slots=True)
class Interrupted:
    """A barge-in stopped playback; `truncations` is empty when the scenario asked not to truncate."""

    truncations: tuple[Truncation, ...] = ()


@dataclass(frozen=True, slots=True)
class DownlinkLatency:
    """What the bridge added between a model audio delta and the carrier's media (sampled)."""

    seconds: float


ObserverEvent = ServerEvent | MediaEvent | ClientEventSent | Interrupted | DownlinkLatency
Observer = Callable[[Any, ObserverEvent], None]
