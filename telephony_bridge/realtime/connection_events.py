"""What a ModelConnection tells its one consumer (the scenario-facing client), typed, in wire order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from telephony_bridge.realtime.events import RealtimeAPIEvents


@dataclass(frozen=True, slots=True)
class Reconnected:
    attempt: int
    downtime_ms: float
    replayed_items: int
    recycled: bool  # a planned recycle before the session cap, not a drop
    resumed_answer: bool  # the new session was asked for the cut-off answer again
    caller_audio_lost_ms: float
    model_silent_before_ms: float


class ConnectionEvents(Protocol):
    """The one consumer of a ModelConnection (the scenario-facing client), told in wire order."""

    async def on_audio_delta(
        self,
        response_id: str,
        item_id: str,
        content_index: int,
        audio: bytes,
        duration_ms: float,
        event: dict[str, Any],
    ) -> None:
        """Model audio, decoded (PCM16 24 kHz or μ-law 8 kHz, as the session's codec)."""

    async def on_audio_done(self, response_id: str) -> None:
        """The answer's audio is complete (before the done event itself is delivered)."""

    def on_response_started(self, response_id: str) -> None: ...

    def on_item_added(self, response_id: str, item_id: str) -> None:
        """A message item (one that can carry audio) was added to an answer."""

    def on_response_finished(self, response_id: str) -> None:
        """Done, or cut off by a drop: no more of its audio will come."""

    def on_server_event(self, member: RealtimeAPIEvents, event: dict[str, Any]) -> None:
        """Every server event but audio deltas, after the connection's own bookkeeping."""

    def on_reconnecting(self, attempt: int, code: int, reason: str) -> None: ...

    def on_reconnected(self, reconnected: Reconnected) -> None: ...

    def on_closing(self) -> None:
        """Closed for good from now on (the socket may still be closing): stop playing."""

    def on_closed(self, code: int, reason: str, was_clean: bool) -> None:
        """Once, after on_closing, when the socket is gone."""


class _NoConsumer:
    """Who is told after the close: nobody (a reader being cancelled may still finish an event)."""

    async def on_audio_delta(self, *args: Any) -> None: ...
    async def on_audio_done(self, response_id: str) -> None: ...
    def on_response_started(self, response_id: str) -> None: ...
    def on_item_added(self, response_id: str, item_id: str) -> None: ...
    def on_response_finished(self, response_id: str) -> None: ...
    def on_server_event(self, member: RealtimeAPIEvents, event: dict[str, Any]) -> None: ...
    def on_reconnecting(self, attempt: int, code: int, reason: str) -> None: ...
    def on_reconnected(self, reconnected: Reconnected) -> None: ...
    def on_closing(self) -> None: ...
    def on_closed(self, code: int, reason: str, was_clean: bool) -> None: ...


NO_CONSUMER: ConnectionEvents = _NoConsumer()
