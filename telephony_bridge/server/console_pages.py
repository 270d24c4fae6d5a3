"""The web console's HTML, rendered on the server from the call store's rows (no template engine,
no JavaScript build: every value goes through `html.escape`). The pages' small scripts and style
sheet are plain files next to this module (console_static/)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np

WAVE_COLUMNS = 1200  # waveform resolution on the call page (the SVG scales it to the page's width)


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, script: str | None = None, active: str = "calls") -> str:
    nav = " ".join(
        f'<a href="{href}"{" class=active" if name == active else ""}>{label}</a>'
        for name, href, label in (("calls", "/console", "Calls"), ("live", "/console/live", "In progress"))
    )
    scripts = f'<script src="/console/static/{script}" defer></script>' if script else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · telephony_bridge</title>"
        f'<link rel="stylesheet" href="/console/static/console.css">{scripts}</head>'
        f"<body><header><strong>telephony_bridge</strong><nav>{nav}</nav></header><main>{body}</main></body></html>"
    )


def clock(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)}:{secs:04.1f}"


def _options(values: Iterable[str], selected: str | None, empty: str) -> str:
    options = [f'<option value="">{esc(empty)}</option>']
    options += [f"<option{' selected' if v == selected else ''}>{esc(v)}</option>" for v in values]
    return "".join(options)


def calls_page(
    rows: list[dict[str, Any]],
    *,
    total: int,
    page_no: int,
    per_page: int,
    query: Mapping[str, str],
    scenarios: list[str],
    outcomes: list[str],
) -> str:
    form = (
        '<form class="filters" method="get" action="/console">'
        f'<label>Number <input name="number" value="{esc(query.get("number"))}" placeholder="+15550100"></label>'
        f'<label>Scenario <select name="scenario">{_options(scenarios, query.get("scenario"), "any")}</select></label>'
        f'<label>Outcome <select name="outcome">{_options(outcomes, query.get("outcome"), "any")}</select></label>'
        f'<label>Date (UTC) <input type="date" name="date" value="{esc(query.get("date"))}"></label>'
        '<button type="submit">Filter</button> <a href="/console">clear</a></form>'
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Time (UTC)",
            "Call",
            "From",
            "To",
            "Scenario",
            "Carrier",
            "Duration",
            "End reason",
            "Barge-ins",
            "Tool calls",
        )
    )
    body = []
    for row in rows:
        link = f"/console/calls/{quote(row['id'], safe='')}"
        body.append(
            f'<tr class="call-row" data-call-id="{esc(row["id"])}">'
            f'<td>{clock(row["started_at"])}</td><td><a class="call-link" href="{link}">{esc(row["id"])}</a></td>'
            f'<td class="from">{esc(row["from_number"])}</td><td class="to">{esc(row["to_number"])}</td>'
            f"<td>{esc(row['scenario'])}</td><td>{esc(row['carrier'])}</td>"
            f'<td class="num">{seconds(row["duration_s"])}</td><td>{esc(row["end_reason"])}</td>'
            f'<td class="num">{row["barge_ins"]}</td><td class="num">{row["tool_calls"]}</td></tr>'
        )
    pages = max(1, -(-total // per_page))
    kept = {k: v for k, v in query.items() if v and k != "page"}

    def to_page(n: int) -> str:
        return "/console?" + urlencode({**kept, "page": n})

    pager = [f"<span>{total:,}{'+' if total >= 100_000 else ''} call(s) · page {page_no} of {pages}</span>"]
    if page_no > 1:
        pager.insert(0, f'<a rel="prev" href="{esc(to_page(page_no - 1))}">← newer</a>')
    if page_no < pages:
        pager.append(f'<a rel="next" href="{esc(to_page(page_no + 1))}">older →</a>')
    table = (
        f'<table class="calls"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        if body
        else '<p class="empty">No calls match.</p>'
    )
    return page("Calls", f'<h1>Calls</h1>{form}{table}<nav class="pager">{" ".join(pager)}</nav>')


def waveform_peaks(samples: np.ndarray, columns: int = WAVE_COLUMNS) -> list[tuple[float, float]]:
    """(min, max) of each column of a track, in -1..1."""
    if samples.size == 0:
        return []
    columns = min(columns, samples.size)
    usable = samples[: samples.size - samples.size % columns].reshape(columns, -1).astype(np.float32) / 32768.0
    return list(zip(usable.min(axis=1).tolist(), usable.max(axis=1).tolist(), strict=True))


def _wave_path(peaks: list[tuple[float, float]], x0: float, span: float, y_mid: float, half: float) -> str:
    if not peaks:
        return ""
    step = span / len(peaks)
    return " ".join(
        f"M{x0 + i * step:.3f} {y_mid - hi * half:.2f}V{y_mid - lo * half + 0.3:.2f}"
        for i, (lo, hi) in enumerate(peaks)
    )


def call_page(
    call: Mapping[str, Any],
    *,
    waves: tuple[list[tuple[float, float]], list[tuple[float, float]]] | None,
    recording_s: float | None,
) -> str:
    items: list[dict[str, Any]] = call["items"]
    offset = call.get("recording_offset_s") or 0.0
    ends = [i["end_s"] or i["start_s"] for i in items] + [call.get("duration_s") or 0.0]
    if recording_s:
        ends.append(offset + recording_s)
    total = max(max(ends), 1.0)
    latency = call.get("latency") or {}
    facts = [
        ("Call", call["id"]),
        ("From", call["from_number"]),
        ("To", call["to_number"]),
        ("Scenario", call["scenario"]),
        ("Carrier", call["carrier"]),
        ("Direction", call["direction"]),
        ("Started (UTC)", clock(call["started_at"])),
        ("Duration", seconds(call["duration_s"])),
        ("End reason", call["end_reason"]),
        ("Detail", call["end_detail"]),
        ("First audio", f"{latency['first_audio_ms']} ms" if "first_audio_ms" in latency else "—"),
        (
            "Turn latency",
            f"median {latency['median_turn_ms']} ms, max {latency['max_turn_ms']} ms"
            if "median_turn_ms" in latency
            else "—",
        ),
    ]
    dl = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    player = ""
    if call.get("recording"):
        src = f"/console/calls/{quote(call['id'], safe='')}/recording"
        player = f'<audio id="player" controls preload="metadata" src="{esc(src)}" data-offset="{offset:.3f}"></audio>'
    else:
        player = (
            '<p class="empty">No recording of this call (the scenario did not call <code>call.record()</code>).</p>'
        )
    body = (
        f'<h1>Call {esc(call["id"])}</h1><dl class="facts">{dl}</dl>{player}'
        f"{_timeline_svg(items, total, offset, waves, recording_s)}"
        f'<h2>Transcript</h2><ol id="transcript" class="transcript">{"".join(_transcript_line(i) for i in items)}</ol>'
    )
    return page(f"Call {call['id']}", body, script="call.js")


ROWS = {"caller": 132, "agent": 160, "tool_call": 188}
WIDTH = 1000.0


def _timeline_svg(
    items: list[dict[str, Any]],
    total: float,
    offset: float,
    waves: tuple[list[tuple[float, float]], list[tuple[float, float]]] | None,
    recording_s: float | None,
) -> str:
    scale = WIDTH / total

    def x(t: float) -> float:
        return round(t * scale, 2)

    parts = [
        (
            f'<svg id="timeline" class="timeline" viewBox="-70 0 {WIDTH + 80:.0f} 226" preserveAspectRatio="none" '
            f'data-seconds="{total:.3f}" data-scale="{scale:.5f}" role="img" aria-label="Call timeline">'
        )
    ]
    for label, y in (
        ("caller", 28),
        ("heard", 88),
        ("caller said", ROWS["caller"] + 9),
        ("agent said", ROWS["agent"] + 9),
        ("tools", ROWS["tool_call"] + 9),
    ):
        parts.append(f'<text class="row-label" x="-66" y="{y}">{label}</text>')
    if waves and recording_s:
        caller, heard = waves
        parts.append(
            f'<path class="wave caller-wave" d="{_wave_path(caller, x(offset), recording_s * scale, 28, 24)}"/>'
        )
        parts.append(f'<path class="wave heard-wave" d="{_wave_path(heard, x(offset), recording_s * scale, 88, 24)}"/>')
    else:
        parts.append('<text class="row-label" x="10" y="60">no waveform (no WAV recording)</text>')
    parts.extend(
        f'<line class="tick" x1="{x(tick)}" x2="{x(tick)}" y1="118" y2="122"/>'
        f'<text class="tick-label" x="{x(tick)}" y="117">{tick}s</text>'
        for tick in range(0, int(total) + 1, max(1, int(total // 10) or 1))
    )
    for n, item in enumerate(items):
        kind, start = item["kind"], item["start_s"]
        end = item["end_s"] if item["end_s"] is not None else start
        if kind in ("caller", "agent"):
            y = ROWS[kind]
            width = max(x(end) - x(start), 2.0)
            title = esc(f"{kind}: {item.get('text') or ''}")
            parts.append(
                f'<rect class="seg {kind}" data-line="{n}" x="{x(start)}" y="{y}" width="{width:.2f}" height="18">'
                f"<title>{title}</title></rect>"
            )
            if kind == "agent" and item.get("heard_ms") is not None:
                cut = x(start + item["heard_ms"] / 1000)
                parts.append(f'<line class="heard-cut" x1="{cut}" x2="{cut}" y1="{y - 2}" y2="{y + 20}"/>')
            if kind == "agent" and "latency_ms" in item:
                parts.append(f'<text class="latency" x="{x(start)}" y="{y - 2}">{item["latency_ms"]} ms</text>')
        elif kind == "barge_in":
            heard_at = item.get("heard_ms")
            label = f"barge-in: heard {heard_at / 1000:.2f} s of the answer" if heard_at is not None else "barge-in"
            parts.append(
                f'<g class="barge-in-marker" data-line="{n}"><line x1="{x(start)}" x2="{x(start)}" y1="0" y2="206"/>'
                f'<text x="{x(start) + 3}" y="10">barge-in</text><title>{esc(label)}</title></g>'
            )
        elif kind == "tool_call":
            width = max(x(end) - x(start), 4.0)
            parts.append(
                f'<rect class="seg tool" data-line="{n}" x="{x(start)}" y="{ROWS["tool_call"]}" width="{width:.2f}" '
                f'height="14"><title>{esc(item.get("name"))} ({item.get("duration_ms", "?")} ms)</title></rect>'
            )
        elif kind in ("dtmf", "transfer"):
            parts.append(
                f'<text class="mark {kind}" x="{x(start)}" y="{ROWS["tool_call"] + 11}">{esc(item.get("text"))}</text>'
            )
    parts.append('<line id="playhead" class="playhead" x1="0" x2="0" y1="0" y2="226" visibility="hidden"/></svg>')
    return "".join(parts)


def _transcript_line(item: Mapping[str, Any]) -> str:
    kind, start, end = item["kind"], item["start_s"], item["end_s"]
    attrs = f'class="line {kind}" data-start="{start:.3f}" data-end="{(end if end is not None else start):.3f}"'
    when = f'<span class="t">{seconds(start)}</span>'
    if kind == "caller":
        text = esc(item.get("text") or "…")
        return f'<li {attrs}>{when}<span class="who">Caller</span><span class="text">{text}</span></li>'
    if kind == "agent":
        text = item.get("text") or ""
        heard = item.get("heard_text")
        extra = ""
        if "latency_ms" in item:
            extra += f'<span class="latency">{item["latency_ms"]} ms after the caller</span>'
        if heard is not None:
            unheard = text[len(heard) :] if text.startswith(heard) else ""
            content = f'<span class="heard">{esc(heard)}</span><span class="unheard">{esc(unheard)}</span>'
            extra += f'<span class="cut">cut after {item["heard_ms"] / 1000:.2f} s heard</span>'
        else:
            content = esc(text)
        return f'<li {attrs}>{when}<span class="who">Agent</span><span class="text">{content}</span>{extra}</li>'
    if kind == "barge_in":
        heard_ms = item.get("heard_ms")
        said = (
            f"the caller heard {heard_ms / 1000:.2f} s of the answer" if heard_ms is not None else "nothing was playing"
        )
        return f'<li {attrs}>{when}<span class="who">Barge-in</span><span class="text">{esc(said)}</span></li>'
    if kind == "tool_call":
        return (
            f'<li {attrs}>{when}<span class="who">Tool</span><span class="text"><code>{esc(item.get("name"))}'
            f"({esc(item.get('arguments'))})</code> → <code>{esc(item.get('output'))}</code>"
            f" in {esc(item.get('duration_ms', '?'))} ms</span></li>"
        )
    return (
        f'<li {attrs}>{when}<span class="who">{esc(kind)}</span><span class="text">{esc(item.get("text"))}</span></li>'
    )


def live_page() -> str:
    return page(
        "In progress",
        '<h1>Calls in progress</h1><p id="live-status" class="status">connecting…</p>'
        '<div id="live-calls" class="live-calls"></div>',
        script="live.js",
        active="live",
    )


def message_page(title: str, text: str) -> str:
    return page(title, f"<h1>{esc(title)}</h1><p>{esc(text)}</p>")
