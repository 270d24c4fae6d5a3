"""The web console at /console, served by the bridge (access: server/console_auth.py).

- ``/console``: the call list from the call store, filtered by number, scenario, date and outcome,
  newest first, a page at a time (each filter has an index ending in the start time).
- ``/console/calls/{call_id}``: one call's timeline (both channels of its recording, transcript
  lines in time, barge-ins at the heard position, tool calls, latency per turn) and the recording,
  played in the page with the timeline following it.
- ``/console/live``: calls in progress, from the sessions of this bridge process, updated by
  server-sent events (``/console/live/events``) with a live transcript of each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from telephony_bridge.server.console_auth import console_refusal
from telephony_bridge.server.console_pages import call_page, calls_page, live_page, message_page, waveform_peaks
from telephony_bridge.server.journal import UnsafeFileName, safe_child
from telephony_bridge.server.recordings import MEDIA_TYPES

log = logging.getLogger("telephony_bridge.console")

PER_PAGE = 50
STATIC = Path(__file__).with_name("console_static")
STATIC_FILES = {"console.css": "text/css", "call.js": "text/javascript", "live.js": "text/javascript"}
LIVE_POLL_S = 0.25
LIVE_STREAM_MAX_S = 300.0  # an event stream ends then (EventSource reconnects), so none outlives a shutdown long
LIVE_KINDS = {
    "caller.transcript": "caller",
    "agent.transcript": "agent",
    "barge_in": "barge_in",
    "agent.tool_call": "tool_call",
    "caller.dtmf": "dtmf",
}

Handler = Callable[[Request], Awaitable[Response]]


def console_routes(runtime: Any) -> list[Route]:
    settings = runtime.settings

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            refused = console_refusal(request, settings)
            if refused is not None:
                return refused
            response = await handler(request)
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Frame-Options", "DENY")
            return response

        return endpoint

    def store() -> Any:
        writer = runtime.call_store
        return writer.store if writer is not None and writer.ready.is_set() else None

    def unavailable() -> Response:
        text = (
            "The call store is off (CALL_STORE=0)."
            if runtime.call_store is None
            else "The call store is not open yet (see the bridge's log)."
        )
        return HTMLResponse(message_page("Call store unavailable", text), status_code=503)

    async def calls_list(request: Request) -> Response:
        calls = store()
        if calls is None:
            return unavailable()
        # Here, not at the module's top: the store's SQLAlchemy weighs ~30 MB, loaded with the store only.
        from telephony_bridge.server.call_store import CallFilter, day_bounds

        query = {k: request.query_params.get(k, "").strip() for k in ("number", "scenario", "outcome", "date", "page")}
        since = until = None
        if query["date"]:
            try:
                since, until = day_bounds(date.fromisoformat(query["date"]))
            except ValueError:
                query["date"] = ""
        where = CallFilter(
            number=query["number"] or None,
            scenario=query["scenario"] or None,
            outcome=query["outcome"] or None,
            since=since,
            until=until,
        )
        page_no = max(1, int(query["page"])) if query["page"].isdigit() else 1
        rows, total, scenarios, outcomes = await asyncio.gather(
            calls.list_calls(where, limit=PER_PAGE, offset=(page_no - 1) * PER_PAGE),
            calls.count_calls(where),
            calls.distinct("scenario"),
            calls.distinct("end_reason"),
        )
        return HTMLResponse(
            calls_page(
                rows,
                total=total,
                page_no=page_no,
                per_page=PER_PAGE,
                query=query,
                scenarios=scenarios,
                outcomes=outcomes,
            )
        )

    async def one_call(request: Request) -> Response:
        calls = store()
        if calls is None:
            return unavailable()
        call = await calls.get_call(request.path_params["call_id"])
        if call is None:
            return HTMLResponse(message_page("No such call", "This call is not in the store."), status_code=404)
        waves, recording_s = None, None
        path = _recording_path(settings.recordings_dir, call.get("recording"))
        if path is not None and path.suffix == ".wav":
            try:
                waves, recording_s = await asyncio.to_thread(_read_waves, path)
            except (OSError, wave.Error, EOFError) as exc:
                log.warning("console: recording %s of call %s unreadable: %s", path.name, call["id"], exc)
        return HTMLResponse(call_page(call, waves=waves, recording_s=recording_s))

    async def recording(request: Request) -> Response:
        calls = store()
        if calls is None:
            return unavailable()
        call = await calls.get_call(request.path_params["call_id"])
        path = _recording_path(settings.recordings_dir, call.get("recording") if call else None)
        if path is None or not path.is_file():
            return PlainTextResponse("no recording", status_code=404)
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])

    async def live(request: Request) -> Response:
        return HTMLResponse(live_page())

    async def live_events(request: Request) -> Response:
        return live_events_response(runtime, request)

    static = static_files(STATIC, STATIC_FILES)

    return [
        Route("/console", guarded(calls_list), methods=["GET"]),
        Route("/console/calls/{call_id}", guarded(one_call), methods=["GET"]),
        Route("/console/calls/{call_id}/recording", guarded(recording), methods=["GET"]),
        Route("/console/live", guarded(live), methods=["GET"]),
        Route("/console/live/events", guarded(live_events), methods=["GET"]),
        Route("/console/static/{name}", static, methods=["GET"]),  # style and scripts: nothing of any call
    ]


def _recording_path(directory: Path, name: str | None) -> Path | None:
    if not name:
        return None
    stem, dot, suffix = name.rpartition(".")
    if dot + suffix not in MEDIA_TYPES:
        return None
    try:
        return safe_child(directory, stem, dot + suffix)
    except UnsafeFileName:
        return None


def _read_waves(path: Path) -> tuple[tuple[list[tuple[float, float]], list[tuple[float, float]]], float]:
    with wave.open(str(path), "rb") as wav:
        channels, rate = wav.getnchannels(), wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    samples = samples[: samples.size - samples.size % channels].reshape(-1, channels)
    left = samples[:, 0]
    right = samples[:, 1] if channels > 1 else np.zeros(0, dtype="<i2")
    return (waveform_peaks(left), waveform_peaks(right)), len(samples) / rate


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _live_call(session: Any) -> dict[str, Any]:
    started: dict[str, Any] = next((e for e in session.journal.entries if e.get("event") == "call.started"), {})
    return {
        "id": session.call_sid,
        "from": started.get("caller"),
        "to": started.get("number"),
        "scenario": started.get("scenario"),
        "carrier": session.carrier.name,
        "elapsed_s": round(session.journal.entries[-1]["t"] if session.journal.entries else 0.0, 1),
    }


def _live_line(entry: dict[str, Any]) -> dict[str, Any] | None:
    kind = LIVE_KINDS.get(entry.get("event", ""))
    if kind is None:
        return None
    if kind == "barge_in":
        cut = (entry.get("truncations") or [{}])[0]
        text = f"heard {cut['audio_end_ms'] / 1000:.2f} s of the answer" if cut.get("audio_end_ms") is not None else ""
    elif kind == "tool_call":
        text = f"{entry.get('name')}({entry.get('arguments') or ''})"
    else:
        text = entry.get("text") or entry.get("digit") or ""
    return {"kind": kind, "t": entry.get("t"), "text": text}


def live_events_response(runtime: Any, request: Request) -> StreamingResponse:
    """The live feed of calls as server-sent events (the console's live view, the softphone's transcript)."""
    return StreamingResponse(
        _live_stream(runtime, request), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def static_files(directory: Path, files: dict[str, str]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint serving `files` (name -> media type) from `directory`, by the `name` path
    parameter. A fixed list: no path is ever built from the request."""

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(directory / name, media_type=files[name], headers={"Cache-Control": "no-cache"})

    return static


async def _live_stream(runtime: Any, request: Request) -> AsyncIterator[bytes]:
    """Calls in progress on this bridge process, from their sessions' journals (read, never changed)."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + LIVE_STREAM_MAX_S
    seen: dict[str, tuple[Any, int]] = {}  # call id → (session, journal entries already sent)
    yield b"retry: 1000\n\n"
    yield _sse("hello", {"pid": os.getpid()})
    while loop.time() < stop_at and not runtime.draining:
        current = {
            s.call_sid: s
            for s in list(runtime.sessions)
            if getattr(s, "call_sid", None) and getattr(s, "journal", None) is not None
        }
        for call_id, session in current.items():
            if call_id not in seen:
                seen[call_id] = (session, 0)
                yield _sse("call", _live_call(session))
            _, sent = seen[call_id]
            entries = session.journal.entries
            for entry in entries[sent:]:
                line = _live_line(entry)
                if line is not None:
                    yield _sse("line", {"id": call_id, **line})
            seen[call_id] = (session, len(entries))
        for call_id in [c for c in seen if c not in current]:
            session, sent = seen.pop(call_id)
            entries = session.journal.entries if session.journal is not None else []
            for entry in entries[sent:]:
                line = _live_line(entry)
                if line is not None:
                    yield _sse("line", {"id": call_id, **line})
            ended: dict[str, Any] = next((e for e in reversed(entries) if e.get("event") == "call.ended"), {})
            yield _sse("ended", {"id": call_id, "end_reason": ended.get("end"), "duration_s": ended.get("duration_s")})
        if await request.is_disconnected():
            return
        await asyncio.sleep(LIVE_POLL_S)
