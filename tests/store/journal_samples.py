"""Call journals as server/journal.py writes them, for the store's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from telephony_bridge.server.call_record import CallRecord, record_from_journal

GREETING = "Hello! This call is recorded. Thanks for calling Acme, how can I help you today?"


def journal(call_id: str = "CA1", *, caller: str = "+15550199", number: str = "+15550600", scenario: str = "recording",
            recording: str | None = "20260101-000000-0123456789abcdef0123.wav") -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {"t": 0.001, "event": "call.started", "call_sid": call_id, "caller": caller, "number": number, "scenario": scenario},
        {"t": 0.011, "event": "agent.audio_started", "encoding": "pcm16"},
        {"t": 1.327, "event": "agent.transcript", "item_id": "item_A", "text": GREETING},
        {"t": 1.524, "event": "caller.speech_started", "audio_start_ms": 1200},
        {"t": 1.524, "event": "barge_in", "truncations": [{"item_id": "item_A", "audio_end_ms": 1500, "deleted": False}]},
        {"t": 1.524, "event": "agent.audio_ended", "duration_s": 1.5},
        {"t": 2.368, "event": "caller.speech_stopped", "audio_end_ms": 1860},
        {"t": 2.6, "event": "caller.transcript", "text": "Wait, what time is it?"},
        {"t": 2.7, "event": "agent.tool_call", "name": "get_time", "arguments": "{}", "call_id": "call_1"},
        {"t": 2.95, "event": "agent.tool_result", "call_id": "call_1", "output": '{"time": "12:00"}'},
        {"t": 3.168, "event": "agent.audio_started", "encoding": "pcm16"},
        {"t": 3.2, "event": "agent.transcript", "item_id": "item_B", "text": "It's noon."},
        {"t": 3.9, "event": "agent.audio_ended", "duration_s": 0.7},
        {"t": 4.0, "event": "caller.dtmf", "digit": "5"},
    ]
    if recording:
        entries.append({"t": 4.285, "event": "call.recording", "recording_id": recording[:-4], "file": recording, "offset_s": 0.25})
    entries.append({"t": 4.285, "event": "call.ended", "reason": "caller hung up", "end": "caller_hung_up", "duration_s": 4.287})
    return entries


def record(call_id: str = "CA1", *, started_at: datetime | None = None, **kwargs: Any) -> CallRecord:
    return record_from_journal(journal(call_id, **kwargs), call_id=call_id, carrier="twilio",
                               started_at=started_at or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def many(n: int, start: datetime, step: timedelta = timedelta(minutes=1)) -> list[CallRecord]:
    return [record(f"CA{i:06d}", started_at=start + i * step, caller=f"+1555{i % 100:07d}",
                   scenario="default" if i % 2 else "recording", recording=None) for i in range(n)]
