"""`telephony-bridge calls list | show CALL_ID | export --since …`: the call store, for scripts.

Reads the store the bridge writes (DATABASE_URL, else the SQLite file under DATA_DIR) directly, so
it works with the bridge stopped too. `list` prints a table (or --json lines); `show` one call with
its timeline as JSON; `export` every call since a date as JSON (one object per line) or CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from telephony_bridge.server.call_store import CallFilter, CallStore, database_url

EXPORT_COLUMNS = (
    "id",
    "started_at",
    "from_number",
    "to_number",
    "scenario",
    "carrier",
    "direction",
    "duration_s",
    "end_reason",
    "barge_ins",
    "tool_calls",
    "recording",
)


def add_calls_parser(commands: Any) -> None:
    calls = commands.add_parser("calls", help="stored calls: list, show CALL_ID, export --since DATE (JSON/CSV)")
    calls.add_argument("--database-url", default=None, help="default: $DATABASE_URL, else $DATA_DIR/calls.sqlite3")
    calls.add_argument("--data-dir", default=None, help="default: $DATA_DIR, else ./data")
    sub = calls.add_subparsers(dest="calls_command", required=True)
    listing = sub.add_parser("list", help="the newest calls")
    export = sub.add_parser("export", help="every call since a date, oldest first")
    for parser in (listing, export):
        parser.add_argument("--number", help="either end's number")
        parser.add_argument("--scenario")
        parser.add_argument("--outcome", help="end reason, e.g. caller_hung_up")
        parser.add_argument("--since", type=_when, help="YYYY-MM-DD, an ISO time, or 7d / 12h ago")
        parser.add_argument("--until", type=_when)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    show = sub.add_parser("show", help="one call with its timeline, as JSON")
    show.add_argument("call_id")
    calls.set_defaults(run=run_calls)


def _when(text: str) -> datetime:
    if text[:-1].isdigit() and text[-1] in "dh":
        amount = int(text[:-1])
        return datetime.now(UTC) - (timedelta(days=amount) if text[-1] == "d" else timedelta(hours=amount))
    try:
        value = (
            datetime.fromisoformat(text)
            if "T" in text or " " in text
            else datetime.combine(date.fromisoformat(text), datetime.min.time())
        )
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r} (YYYY-MM-DD, ISO time, 7d, 12h)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def run_calls(args: argparse.Namespace) -> int:
    import os

    data_dir = Path(args.data_dir or os.environ.get("DATA_DIR") or "data")
    configured = args.database_url or os.environ.get("DATABASE_URL") or None
    if configured is None and not (data_dir / "calls.sqlite3").exists():
        print(
            f"telephony-bridge calls: no call store at {data_dir / 'calls.sqlite3'} (set DATA_DIR or DATABASE_URL)",
            file=sys.stderr,
        )
        return 1
    return asyncio.run(_run(args, CallStore(database_url(data_dir, configured))))


async def _run(args: argparse.Namespace, store: CallStore) -> int:
    try:
        await store.migrate()
        if args.calls_command == "show":
            call = await store.get_call(args.call_id)
            if call is None:
                print(f"telephony-bridge calls: no call {args.call_id}", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(orjson.dumps(call, default=str, option=orjson.OPT_INDENT_2) + b"\n")
            return 0
        where = CallFilter(
            number=args.number, scenario=args.scenario, outcome=args.outcome, since=args.since, until=args.until
        )
        if args.calls_command == "list":
            rows = await store.list_calls(where, limit=args.limit)
            if args.json:
                for row in rows:
                    sys.stdout.buffer.write(orjson.dumps(row, default=str) + b"\n")
            else:
                _print_table(rows)
            return 0
        await _export(store, where, args.format)
        return 0
    finally:
        await store.close()


async def _export(store: CallStore, where: CallFilter, fmt: str, page: int = 1000) -> None:
    """Page by page (newest first from the store), written oldest first."""
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        batch = await store.list_calls(where, limit=page, offset=offset)
        rows.extend(batch)
        if len(batch) < page:
            break
        offset += page
    rows.reverse()
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
    else:
        for row in rows:
            sys.stdout.buffer.write(orjson.dumps(row, default=str) + b"\n")


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'started (UTC)':19}  {'call':36}  {'from':14}  {'to':14}  {'scenario':16}  {'secs':>6}  end")
    for r in rows:
        secs = f"{r['duration_s']:.1f}" if r["duration_s"] is not None else "-"
        print(
            f"{r['started_at']:%Y-%m-%d %H:%M:%S}  {r['id']:36}  "
            f"{r['from_number'] or '-':14}  {r['to_number'] or '-':14}  "
            f"{r['scenario'] or '-':16}  {secs:>6}  {r['end_reason'] or '-'}"
        )
