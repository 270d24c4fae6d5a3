"""Counters of one model client, shared by its connection, its uplink and its playout channels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ClientStatistics:
    caller_frames: int = 0
    caller_audio_dropped_ms: float = 0.0
    model_audio_deltas: int = 0
    model_audio_ms: float = 0.0
    late_deltas_dropped: int = 0
    interruptions: int = 0
    truncations: int = 0
    deletions: int = 0
    errors: int = 0
    reconnects: int = 0
    malformed_events: int = 0
