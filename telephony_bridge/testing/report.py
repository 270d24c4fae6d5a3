"""What the call-flow kit reports about one call: `CallReport` and the records it holds.

Built from public artefacts of the call only: the call journal, the phone simulator's result, the
requests the REST stand-in received, the bridge's log lines for the call and the client events the
model received.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from telephony_bridge.testing.fake_twilio_api import RestRequest
from telephony_bridge.testing.simulator import CallResult
from telephony_bridge.testing.timeline import render_timeline


class Line(str):
    """One line of the conversation; compares and prints as its text.

    `speaker` is "agent" or "caller". An agent line that a barge-in cut off has `cut=True` and
    `heard_s`, the seconds of it the caller heard before playback stopped (0 when the bridge
    deleted it unheard). Its text is what the model had said by then, which runs ahead of what the
    caller heard: models send audio faster than real time. Caller lines are the model's input
    transcription (with the local engine: the turn's `hears`, else "[speech 1.2 s]").
    """

    speaker: str
    cut: bool
    heard_s: float | None
    t: float
    item_id: str | None

    def __new__(
        cls,
        text: str,
        speaker: str,
        t: float,
        *,
        cut: bool = False,
        heard_s: float | None = None,
        item_id: str | None = None,
    ) -> Line:
        line = super().__new__(cls, text)
        line.speaker, line.t, line.cut, line.heard_s, line.item_id = speaker, t, cut, heard_s, item_id
        return line


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A function call the model made, and what the scenario answered (None: no answer)."""

    name: str
    arguments: Any  # parsed JSON (a dict), or the raw string if it was not JSON
    call_id: str | None
    output: Any = None  # parsed JSON if the output was JSON, else the string
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the call journal: `kind` ("call.started", "barge_in", ...) and its fields."""

    t: float  # seconds since the call's media stream started
    kind: str
    data: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as Twilio saw it: the call's TwiML replaced by a <Dial>."""

    to: str | None
    caller_id: str | None
    twiml: str


@dataclass(frozen=True, slots=True)
class LogLine:
    t: float
    level: str
    logger: str
    message: str
    traceback: str | None = None


@dataclass(slots=True)
class ModelConnection:
    """One WebSocket the local engine accepted, with the client events it received (no audio)."""

    remote: tuple[Any, ...] | None
    received: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


@dataclass(eq=False)
class CallReport:
    """What happened on one simulated call. See the module docstring and docs/testing-scenarios.md."""

    call_sid: str
    to: str
    from_: str
    scenario: str | None
    rejected: bool
    transcript: list[Line]
    tool_calls: list[ToolCallRecord]
    events: list[Event]
    hung_up: bool  # the scenario hung up (call.hangup())
    end_reason: str | None  # why the call ended: "caller hung up", "hangup by scenario", ...
    unheard_ms: float  # agent audio still queued at the phone when the call ended: never heard
    transfers: list[Transfer]
    rest_requests: list[RestRequest]
    log: list[LogLine]
    model_inputs: list[dict[str, Any]]  # client events the model received, audio appends left out
    model_connections: int  # model WebSockets this call's scenario opened
    caller: CallResult  # the phone simulator's view: heard audio, clears, marks, its own timeline
    journal_path: Path | None = None

    # -- convenient views -----------------------------------------------------------------------
    @property
    def agent_lines(self) -> list[Line]:
        return [line for line in self.transcript if line.speaker == "agent"]

    @property
    def caller_lines(self) -> list[Line]:
        return [line for line in self.transcript if line.speaker == "caller"]

    @property
    def kinds(self) -> list[str]:
        """The journal's event kinds in order: "call.started", "agent.response_started", ..."""
        return [event.kind for event in self.events]

    @property
    def barge_ins(self) -> list[Event]:
        return [event for event in self.events if event.kind == "barge_in"]

    @property
    def errors(self) -> list[str]:
        """Errors the bridge logged for this call: a scenario handler that raised, a failed task..."""
        return [line.message for line in self.log if line.level in ("ERROR", "CRITICAL")]

    @property
    def messages_to_model(self) -> list[str]:
        """Texts of the message items the scenario added to the conversation (conversationItemCreate)."""
        texts = []
        for event in self.model_inputs:
            item = event.get("item") or {}
            if event.get("type") == "conversation.item.create" and item.get("type", "message") == "message":
                texts += [
                    part.get("text", "")
                    for part in item.get("content") or []
                    if isinstance(part, dict) and "text" in part
                ]
        return texts

    def timeline(self) -> str:
        return render_timeline(
            self.call_sid,
            self.to,
            self.from_,
            self.caller.timeline,
            self.events,
            self.transcript,
            self.log,
            self.rest_requests,
            self._headline(),
        )

    def _headline(self) -> str:
        if self.rejected:
            return "rejected" + (f" ({self.caller.error})" if self.caller.error else " (no route)")
        parts = [f"scenario {self.scenario}", f"ended: {self.end_reason or '?'}"]
        if self.caller.stream_duration_ms:
            parts.append(f"after {self.caller.stream_duration_ms / 1000:.2f} s")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return (
            f"<CallReport {self.call_sid} {self.from_} -> {self.to} scenario={self.scenario} "
            f"rejected={self.rejected} hung_up={self.hung_up} lines={len(self.transcript)} "
            f"tool_calls={[c.name for c in self.tool_calls]} errors={len(self.errors)}>"
        )

    def __str__(self) -> str:
        return self.timeline()


def journal_events(entries: Iterable[Mapping[str, Any]]) -> list[Event]:
    """The journal's entries as events (transcript deltas left out: the full transcripts are there)."""
    return [
        Event(float(e.get("t", 0.0)), str(e.get("event")), {k: v for k, v in e.items() if k not in ("t", "event")})
        for e in entries
        if e.get("event") != "agent.transcript_delta"
    ]


def transfers_of(requests: Iterable[RestRequest]) -> list[Transfer]:
    transfers = []
    for request in requests:
        twiml = request.form.get("Twiml")
        if not twiml:
            continue
        try:
            dial = ET.fromstring(twiml).find("Dial")
        except ET.ParseError:
            dial = None
        if dial is None:
            continue
        number = dial.find("Number")
        to = (number.text if number is not None else dial.text) or None
        transfers.append(Transfer(to=to.strip() if to else None, caller_id=dial.get("callerId"), twiml=twiml))
    return transfers


def transcript_of(events: Sequence[Event]) -> list[Line]:
    heard: dict[str, float] = {}
    for event in events:
        if event.kind == "barge_in":
            for cut in event.get("truncations") or []:
                heard[cut.get("item_id")] = 0.0 if cut.get("deleted") else (cut.get("audio_end_ms") or 0) / 1000
    lines = []
    for event in events:
        if event.kind == "agent.transcript":
            item_id = event.get("item_id")
            lines.append(
                Line(
                    event.get("text") or "",
                    "agent",
                    event.t,
                    cut=item_id in heard,
                    heard_s=heard.get(item_id),
                    item_id=item_id,
                )
            )
        elif event.kind == "caller.transcript":
            lines.append(Line(event.get("text") or "", "caller", event.t))
    return lines


def tool_calls_of(events: Sequence[Event]) -> list[ToolCallRecord]:
    outputs = {e.get("call_id"): e.get("output") for e in events if e.kind == "agent.tool_result"}
    return [
        ToolCallRecord(
            name=e.get("name"),
            arguments=_json_or_text(e.get("arguments")),
            call_id=e.get("call_id"),
            output=_json_or_text(outputs.get(e.get("call_id"))),
            t=e.t,
        )
        for e in events
        if e.kind == "agent.tool_call"
    ]


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
