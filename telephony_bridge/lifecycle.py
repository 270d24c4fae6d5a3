"""Why a call ended, as data: one enum, mapped once to what each consumer needs.

The session records a `CallEnd` and, where it helps, a sentence with the particulars ("no start
message within 10 s"). The WebSocket close code, the metric label (a small fixed set: Prometheus
labels must not be unbounded) and the journal's field all come from the member, never from
matching the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["CallEnd", "EndReason"]


class CallEnd(Enum):
    # (metric label, WebSocket close code, what the scenario and the log read when nothing more is said)
    CALLER_HUNG_UP = ("caller_hangup", 1000, "caller hung up")
    SCENARIO_HANGUP = ("scenario_hangup", 1000, "hangup by scenario")
    SCENARIO_TERMINATED = ("scenario_hangup", 1000, "terminated by scenario")
    SCENARIO_ERROR = ("scenario_error", 1000, "scenario error")
    NO_SCENARIO = ("scenario_error", 1000, "no scenario")
    SHUTDOWN = ("shutdown", 1001, "server shutting down")
    CARRIER_FAILED = ("carrier_failed", 1011, "carrier connection failed")
    NO_START = ("no_start", 1008, "no start message")
    STREAM_REFUSED = ("stream_refused", 1008, "stream refused")
    CARRIER_STALLED = ("stalled", 1011, "carrier stopped reading")
    MEDIA_STALLED = ("stalled", 1011, "caller audio stalled")
    INTERNAL_ERROR = ("internal_error", 1011, "internal error")

    def __init__(self, metric_label: str, close_code: int, text: str) -> None:
        self.metric_label = metric_label
        self.close_code = close_code
        self.text = text

    @property
    def journal_name(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class EndReason:
    """A call's end: the kind, and the sentence the scenario's `Disconnected` and the log carry."""

    kind: CallEnd
    detail: str | None = None

    @property
    def text(self) -> str:
        return self.detail or self.kind.text

    def __str__(self) -> str:
        return self.text
