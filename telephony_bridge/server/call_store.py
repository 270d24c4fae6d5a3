"""The call store: every finished call's record (server/call_record.py) in SQL.

SQLAlchemy 2 Core, async: one schema and one query builder for both back ends — SQLite through
aiosqlite (the embedded default, a file under DATA_DIR, nothing to set up) and PostgreSQL through
asyncpg (DATABASE_URL, for several bridges sharing one history) — instead of two hand-written SQL
dialects; Core, not the ORM, because the store is a few tables written in batches and read page by
page. Alembic (SQLAlchemy's own migration tool) brings the schema up to date at start-up
(server/store_migrations/), under an advisory lock on PostgreSQL so that instances starting at once
do not race.

Nothing here is on a call's path: `server/store_writer.py` buffers records and calls `save` from its
own task, retrying when the database is slow or down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from telephony_bridge.server.call_record import CallRecord

log = logging.getLogger("telephony_bridge.store")

SQLITE_FILE = "calls.sqlite3"
MIGRATIONS = Path(__file__).with_name("store_migrations")

metadata = sa.MetaData()

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("carrier", sa.String(32)),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("from_number", sa.String(64)),
    sa.Column("to_number", sa.String(64)),
    sa.Column("scenario", sa.String(128)),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("duration_s", sa.Float),
    sa.Column("end_reason", sa.String(64)),
    sa.Column("end_detail", sa.Text),
    sa.Column("barge_ins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"),
    sa.Column("recording", sa.String(200)),
    sa.Column("recording_offset_s", sa.Float),
    sa.Column("latency", sa.JSON),
    sa.Column("instance", sa.String(200)),
    # The console's filters, each with the list's order (newest first) so a page is an index range.
    sa.Index("ix_calls_started_at", "started_at"),
    sa.Index("ix_calls_from_started", "from_number", "started_at"),
    sa.Index("ix_calls_to_started", "to_number", "started_at"),
    sa.Index("ix_calls_scenario_started", "scenario", "started_at"),
    sa.Index("ix_calls_end_reason_started", "end_reason", "started_at"),
)

call_items = sa.Table(
    "call_items",
    metadata,
    sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("start_s", sa.Float, nullable=False),
    sa.Column("end_s", sa.Float),
    sa.Column("text", sa.Text),
    sa.Column("data", sa.JSON),
)

LIST_COLUMNS = [
    calls.c.id,
    calls.c.carrier,
    calls.c.direction,
    calls.c.from_number,
    calls.c.to_number,
    calls.c.scenario,
    calls.c.started_at,
    calls.c.duration_s,
    calls.c.end_reason,
    calls.c.barge_ins,
    calls.c.tool_calls,
    calls.c.recording,
]


def database_url(data_dir: Path, configured: str | None) -> str:
    """The SQLAlchemy URL: DATABASE_URL with its async driver, or the SQLite file under DATA_DIR."""
    if not configured:
        return f"sqlite+aiosqlite:///{(data_dir / SQLITE_FILE).resolve()}"
    url = make_url(configured)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class CallFilter:
    number: str | None = None  # either end's number
    scenario: str | None = None
    outcome: str | None = None  # end_reason
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.number:
            clauses.append(sa.or_(calls.c.from_number == self.number, calls.c.to_number == self.number))
        if self.scenario:
            clauses.append(calls.c.scenario == self.scenario)
        if self.outcome:
            clauses.append(calls.c.end_reason == self.outcome)
        if self.since:
            clauses.append(calls.c.started_at >= self.since)
        if self.until:
            clauses.append(calls.c.started_at < self.until)
        return clauses


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


class CallStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            Path(make_url(url).database or SQLITE_FILE).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 10}  # several workers share the file: wait for its lock
        else:
            options.update(pool_pre_ping=True, pool_size=2, max_overflow=2)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic, server/store_migrations/)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    async def save(self, records: Sequence[CallRecord]) -> None:
        """Insert the records (a call stored twice — a retry after a lost reply — replaces itself)."""
        if not records:
            return
        ids = [r.call_id for r in records]
        async with self.engine.begin() as conn:
            await conn.execute(call_items.delete().where(call_items.c.call_id.in_(ids)))
            await conn.execute(calls.delete().where(calls.c.id.in_(ids)))
            await conn.execute(calls.insert(), [r.row() for r in records])
            rows = [
                {
                    "call_id": r.call_id,
                    "seq": n,
                    "kind": i.kind,
                    "start_s": i.start_s,
                    "end_s": i.end_s,
                    "text": i.text,
                    "data": i.data,
                }
                for r in records
                for n, i in enumerate(r.items)
            ]
            if rows:
                await conn.execute(call_items.insert(), rows)

    async def list_calls(
        self, where: CallFilter = CallFilter(), *, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(*LIST_COLUMNS)
            .where(*where.where())
            .order_by(calls.c.started_at.desc(), calls.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            return [_aware({str(k): v for k, v in row._mapping.items()}) for row in await conn.execute(query)]

    async def count_calls(self, where: CallFilter = CallFilter(), *, cap: int = 100_000) -> int:
        """How many calls match, counted up to `cap` (a page count need not scan a whole history)."""
        inner = sa.select(calls.c.id).where(*where.where()).limit(cap).subquery()
        async with self.engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(inner))).scalar_one())

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(calls).where(calls.c.id == call_id))).first()
            if row is None:
                return None
            call = _aware({str(k): v for k, v in row._mapping.items()})
            items = await conn.execute(
                sa.select(call_items).where(call_items.c.call_id == call_id).order_by(call_items.c.seq)
            )
            call["items"] = [
                {"kind": i.kind, "start_s": i.start_s, "end_s": i.end_s, "text": i.text, **(i.data or {})}
                for i in items
            ]
        return call

    async def distinct(self, column: str) -> list[str]:
        """The values a filter offers (scenarios, outcomes): few, read through their index."""
        col = calls.c[column]
        async with self.engine.connect() as conn:
            return [
                v
                for (v,) in await conn.execute(
                    sa.select(col).where(col.is_not(None)).distinct().order_by(col).limit(200)
                )
            ]

    async def delete_before(self, cutoff: datetime, batch: int = 500) -> list[dict[str, Any]]:
        """Delete calls that started before `cutoff`, a batch at a time; the deleted (id, recording)."""
        deleted: list[dict[str, Any]] = []
        while True:
            async with self.engine.begin() as conn:
                rows = (
                    await conn.execute(
                        sa.select(calls.c.id, calls.c.recording).where(calls.c.started_at < cutoff).limit(batch)
                    )
                ).all()
                if not rows:
                    return deleted
                ids = [r.id for r in rows]
                await conn.execute(call_items.delete().where(call_items.c.call_id.in_(ids)))
                await conn.execute(calls.delete().where(calls.c.id.in_(ids)))
            deleted.extend({"id": r.id, "recording": r.recording} for r in rows)


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite gives naive datetimes back: every time the store writes is UTC."""
    for key in ("started_at", "answered_at", "ended_at"):
        value = row.get(key)
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")  # readers (the console) never wait for the writer
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-revision INFO lines at every start-up
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":  # instances starting together migrate one at a time
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(4711019)"))
    command.upgrade(config, "head")
