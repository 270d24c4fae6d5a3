"""What the call store keeps of one call, made from its journal (server/journal.py) — pure.

`record_from_journal` turns the journal's entries (seconds since the stream started, one event
each) into a `CallRecord`: the call's row (numbers, scenario, times, why it ended, counts, the
recording, latency figures) and its timeline items (`CallItem`), each with a start and end in
seconds from the start of the call:

- ``caller``: one caller utterance (speech started → stopped) and its transcript;
- ``agent``: one answer as played (audio started → ended), its transcript and, when the caller
  barged in, ``heard_ms`` and ``heard_text`` — the answer cut where the caller stopped hearing it
  (the words in proportion to the audio heard: the journal has no word timings), plus
  ``latency_ms`` from the end of the caller's last utterance to the first audio of the answer;
- ``barge_in``: when, and at what position of the answer it cut (``heard_ms``);
- ``tool_call``: name, arguments, output, duration;
- ``dtmf``, ``transfer``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ITEM_KINDS = ("caller", "agent", "barge_in", "tool_call", "dtmf", "transfer")


@dataclass(slots=True)
class CallItem:
    kind: str
    start_s: float
    end_s: float | None = None
    text: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start_s": self.start_s, "end_s": self.end_s, "text": self.text, **self.data}


@dataclass(slots=True)
class CallRecord:
    call_id: str
    carrier: str | None
    direction: str
    from_number: str | None
    to_number: str | None
    scenario: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    end_reason: str | None
    end_detail: str | None
    barge_ins: int = 0
    tool_calls: int = 0
    recording: str | None = None  # the file name under RECORDINGS_DIR
    recording_offset_s: float | None = None  # where the recording starts on the call's timeline
    latency: dict[str, Any] = field(default_factory=dict)
    instance: str | None = None
    items: list[CallItem] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The `calls` table's columns."""
        return {
            "id": self.call_id,
            "carrier": self.carrier,
            "direction": self.direction,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "scenario": self.scenario,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "end_reason": self.end_reason,
            "end_detail": self.end_detail,
            "barge_ins": self.barge_ins,
            "tool_calls": self.tool_calls,
            "recording": self.recording,
            "recording_offset_s": self.recording_offset_s,
            "latency": self.latency,
            "instance": self.instance,
        }


def record_from_journal(
    entries: list[dict[str, Any]],
    *,
    call_id: str,
    carrier: str | None,
    started_at: datetime,
    instance: str | None = None,
) -> CallRecord:
    """`started_at`: the wall-clock time of the journal's t = 0 (UTC)."""
    started = next((e for e in entries if e.get("event") == "call.started"), {})
    ended = next((e for e in reversed(entries) if e.get("event") == "call.ended"), None)
    recording = next((e for e in reversed(entries) if e.get("event") == "call.recording"), None)
    items = timeline_items(entries)
    t_start = float(started.get("t", 0.0))
    duration = float(ended["duration_s"]) if ended and ended.get("duration_s") is not None else None
    end_t = float(ended["t"]) if ended else None
    return CallRecord(
        call_id=call_id,
        carrier=carrier,
        direction=started.get("direction") or "inbound",
        from_number=started.get("caller"),
        to_number=started.get("number"),
        scenario=started.get("scenario"),
        started_at=started_at,
        # The media stream starts once the carrier has connected the call: that is its answer.
        answered_at=started_at + timedelta(seconds=t_start) if started else None,
        ended_at=started_at + timedelta(seconds=end_t) if end_t is not None else None,
        duration_s=duration,
        end_reason=ended.get("end") if ended else None,
        end_detail=ended.get("reason") if ended else None,
        barge_ins=sum(1 for i in items if i.kind == "barge_in"),
        tool_calls=sum(1 for i in items if i.kind == "tool_call"),
        recording=recording.get("file") if recording else None,
        recording_offset_s=recording.get("offset_s") if recording else None,
        latency=latency_figures(items, entries),
        instance=instance,
        items=items,
    )


def timeline_items(entries: list[dict[str, Any]]) -> list[CallItem]:
    items: list[CallItem] = []
    untranscribed: list[CallItem] = []  # caller utterances waiting for their transcript, oldest first
    speaking: CallItem | None = None  # the caller utterance in progress
    last_caller_end: float | None = None
    answer: CallItem | None = None  # the agent answer playing (or last played)
    answers_by_item: dict[str, CallItem] = {}
    tools: dict[str, CallItem] = {}
    for entry in entries:
        kind, t = entry.get("event"), float(entry.get("t", 0.0))
        if kind == "caller.speech_started":
            speaking = CallItem("caller", t)
            items.append(speaking)
            untranscribed.append(speaking)
        elif kind == "caller.speech_stopped":
            if speaking is not None:
                speaking.end_s = t
                speaking = None
            last_caller_end = t
        elif kind == "caller.transcript":
            if untranscribed:
                untranscribed.pop(0).text = entry.get("text")
            else:
                items.append(CallItem("caller", t, t, entry.get("text")))
        elif kind == "agent.audio_started":
            answer = CallItem("agent", t)
            if last_caller_end is not None and t >= last_caller_end:
                answer.data["latency_ms"] = round((t - last_caller_end) * 1000)
                last_caller_end = None
            items.append(answer)
        elif kind == "agent.audio_ended":
            if answer is not None and answer.end_s is None:
                answer.end_s = t
                answer.data["audio_s"] = entry.get("duration_s")
        elif kind == "agent.transcript":
            target = answer if answer is not None and "item_id" not in answer.data else None
            if target is None:  # a transcript with no audio of its own (or a second item of one answer)
                target = CallItem("agent", t, t)
                items.append(target)
            target.text = entry.get("text")
            target.data["item_id"] = entry.get("item_id")
            if entry.get("item_id"):
                answers_by_item[entry["item_id"]] = target
        elif kind == "barge_in":
            cuts = entry.get("truncations") or []
            cut = cuts[0] if cuts else {}
            heard_ms = 0 if cut.get("deleted") else cut.get("audio_end_ms")
            items.append(CallItem("barge_in", t, t, None, {"heard_ms": heard_ms, "item_id": cut.get("item_id")}))
            cut_answer = answers_by_item.get(cut.get("item_id") or "") or answer
            if cut_answer is not None and heard_ms is not None:
                cut_answer.data["heard_ms"] = heard_ms
                if cut_answer.end_s is None:
                    cut_answer.end_s = t
        elif kind == "agent.tool_call":
            tool = CallItem(
                "tool_call",
                t,
                None,
                entry.get("name"),
                {"name": entry.get("name"), "arguments": entry.get("arguments"), "call_id": entry.get("call_id")},
            )
            items.append(tool)
            if entry.get("call_id"):
                tools[entry["call_id"]] = tool
        elif kind == "agent.tool_result":
            tool = tools.pop(entry.get("call_id") or "", None)  # type: ignore[arg-type]
            if tool is not None:
                tool.end_s = t
                tool.data["output"] = entry.get("output")
                tool.data["duration_ms"] = round((t - tool.start_s) * 1000)
        elif kind == "caller.dtmf":
            items.append(CallItem("dtmf", t, t, entry.get("digit")))
        elif kind in ("call.transfer", "call.transferred"):
            items.append(
                CallItem("transfer", t, t, entry.get("to"), {k: v for k, v in entry.items() if k not in ("t", "event")})
            )
    for item in items:
        if item.kind == "agent":
            _cut_heard_text(item)
    return items


def _cut_heard_text(answer: CallItem) -> None:
    heard_ms = answer.data.get("heard_ms")
    if heard_ms is None or answer.text is None:
        return
    words = answer.text.split()
    audio_s = answer.data.get("audio_s")
    played_ms = (audio_s * 1000 if audio_s else None) or (
        (answer.end_s - answer.start_s) * 1000 if answer.end_s is not None else None
    )
    # What played is at least what was heard; the words are spread evenly over the answer's audio,
    # whose full length the journal knows only when it played out, so this is an estimate.
    total_ms = max(played_ms or 0.0, heard_ms, 1.0)
    estimated_ms = len(words) * 350.0  # ~170 words a minute: an answer cut before its end played
    if answer.data.get("audio_s") is None:
        total_ms = max(total_ms, estimated_ms)
    answer.data["heard_text"] = " ".join(words[: round(len(words) * min(1.0, heard_ms / total_ms))])


def latency_figures(items: list[CallItem], entries: list[dict[str, Any]]) -> dict[str, Any]:
    turns = [i.data["latency_ms"] for i in items if i.kind == "agent" and "latency_ms" in i.data]
    first_audio = next((float(e["t"]) for e in entries if e.get("event") == "agent.audio_started"), None)
    figures: dict[str, Any] = {"turns_ms": turns}
    if first_audio is not None:
        figures["first_audio_ms"] = round(first_audio * 1000)
    if turns:
        figures["median_turn_ms"] = round(statistics.median(turns))
        figures["max_turn_ms"] = max(turns)
    return figures


def utc_now() -> datetime:
    return datetime.now(UTC)
