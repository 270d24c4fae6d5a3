"""One call as text: the phone's and the bridge's sides merged on one clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telephony_bridge.testing.fake_twilio_api import RestRequest
    from telephony_bridge.testing.report import Event, Line, LogLine
    from telephony_bridge.testing.simulator import TimelineEvent


_PHONE_KINDS_HIDDEN = {"mark", "mark_echo"}


def render_timeline(
    call_sid: str,
    to: str,
    from_: str,
    phone: Sequence[TimelineEvent],
    events: Sequence[Event],
    transcript: Sequence[Line],
    log_lines: Sequence[LogLine],
    rest: Sequence[RestRequest],
    headline: str,
) -> str:
    """One call as text, phone and bridge side merged on one clock (seconds since the stream start)."""
    cut = {line.item_id: line for line in transcript if line.cut and line.item_id}
    rows: list[tuple[float, int, int, str, str]] = []  # (t, source, order in source, side, text)
    for order, entry in enumerate(phone):
        if entry.kind in _PHONE_KINDS_HIDDEN or (entry.kind == "warning" and "is not wss://" in entry.detail):
            continue  # (the kit's bridge necessarily runs on ws://127.0.0.1)
        rows.append((entry.t_ms / 1000, 0, order, "phone", f"{entry.kind:<13} {entry.detail}"))
    for order, event in enumerate(events):
        rows.append((event.t, 1, order, *_describe_event(event, cut)))
    for order, line in enumerate(log_lines):
        text = f"{line.level:<8} {line.logger}: {line.message}"
        if line.traceback:
            text += "\n" + "\n".join("                         " + row for row in line.traceback.rstrip().splitlines())
        rows.append((line.t, 2, order, "log", text))
    for order, request in enumerate(rest):
        rows.append((request.t, 3, order, "twilio", f"{'REST':<13} POST {request.path} {dict(request.form)}"))
    rows.sort(key=lambda row: row[:3])  # on a tie (same ms), what the bridge recorded before what it caused
    out = [f"call {call_sid} {from_} -> {to}: {headline}"]
    out += [f"  {t:+8.3f}s  {side:<7} {text}" for t, _, _, side, text in rows]
    return "\n".join(out)


def _describe_event(event: Event, cut: Mapping[str, Line]) -> tuple[str, str]:
    d = event.data
    if event.kind == "agent.transcript":
        item_id = d.get("item_id")
        line = cut.get(item_id) if isinstance(item_id, str) else None
        note = f"   [cut by barge-in: heard {line.heard_s or 0:.2f} s]" if line is not None else ""
        return "agent", f'says "{d.get("text")}"{note}'
    if event.kind == "caller.transcript":
        return "caller", f'said "{d.get("text")}"'
    if event.kind == "agent.tool_call":
        return "agent", f"calls {d.get('name')}({d.get('arguments')})  [{d.get('call_id')}]"
    if event.kind == "agent.tool_result":
        return "bridge", f"tool result [{d.get('call_id')}]: {d.get('output')}"
    if event.kind == "barge_in":
        cuts = ", ".join(_describe_cut(c) for c in d.get("truncations") or []) or "nothing to truncate"
        return "bridge", f"BARGE-IN: playback cleared; {cuts}"
    fields = " ".join(f"{k}={v!r}" for k, v in d.items() if v is not None)
    return "bridge", f"{event.kind:<13} {fields}".rstrip()


def _describe_cut(cut: Mapping[str, Any]) -> str:
    if cut.get("deleted"):
        return f"{cut.get('item_id')} deleted (nothing of it was heard)"
    return f"{cut.get('item_id')} truncated at {(cut.get('audio_end_ms') or 0) / 1000:.2f} s (what the caller heard)"
