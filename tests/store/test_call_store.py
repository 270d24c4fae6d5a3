"""server/call_store.py against SQLite (always) and a real PostgreSQL server (Debian's package)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from telephony_bridge.server.call_store import CallFilter, CallStore, database_url, day_bounds
from tests.store.journal_samples import many, record

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def _exercise(store: CallStore) -> None:
    await store.migrate()
    await store.migrate()  # at every start-up: nothing to do the second time
    await store.save([record("CA1"), *many(30, T0 + timedelta(hours=1))])
    await store.save([record("CA1")])  # a retried batch replaces, never duplicates

    call = await store.get_call("CA1")
    assert call is not None and call["started_at"] == T0 and call["from_number"] == "+15550199"
    assert call["latency"]["turns_ms"] == [800]
    assert [i["kind"] for i in call["items"]] == ["agent", "caller", "barge_in", "tool_call", "agent", "dtmf"]
    assert call["items"][2]["heard_ms"] == 1500 and call["items"][3]["duration_ms"] == 250
    assert await store.get_call("nope") is None

    rows = await store.list_calls(limit=10)
    assert len(rows) == 10 and rows[0]["id"] == "CA000029" and rows[0]["started_at"] > rows[-1]["started_at"]
    assert await store.count_calls() == 31
    assert [r["id"] for r in await store.list_calls(limit=2, offset=29)] == ["CA000000", "CA1"]
    assert {r["id"] for r in await store.list_calls(CallFilter(number="+15550199"))} == {"CA1"}
    assert {r["id"] for r in await store.list_calls(CallFilter(number="+15550600"), limit=100)} >= {"CA1", "CA000003"}
    assert await store.count_calls(CallFilter(scenario="default")) == 15
    assert await store.count_calls(CallFilter(outcome="caller_hung_up")) == 31
    since, until = day_bounds(T0.date())
    assert await store.count_calls(CallFilter(since=since, until=until)) == 31
    assert await store.count_calls(CallFilter(since=since + timedelta(days=1))) == 0
    assert await store.distinct("scenario") == ["default", "recording"]

    deleted = await store.delete_before(T0 + timedelta(hours=1, minutes=10))
    assert {d["id"] for d in deleted} == {"CA1", *(f"CA{i:06d}" for i in range(10))}
    assert await store.count_calls() == 20 and await store.get_call("CA1") is None


async def test_sqlite_under_data_dir(tmp_path: Path):
    url = database_url(tmp_path / "data", None)
    assert url.startswith("sqlite+aiosqlite:///") and url.endswith("/data/calls.sqlite3")
    store = CallStore(url)
    try:
        await _exercise(store)
    finally:
        await store.close()


async def test_postgresql(postgres_url: str):
    url = database_url(Path("unused"), postgres_url)
    assert url.startswith("postgresql+asyncpg://")
    first, second = CallStore(url), CallStore(url)
    try:
        import asyncio

        await asyncio.gather(first.migrate(), second.migrate())  # two instances starting at once
        await _exercise(first)
        assert await second.count_calls() == 20  # one shared history
    finally:
        async with first.engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE call_items, calls, alembic_version"))
        await first.close()
        await second.close()


async def test_the_list_and_its_filters_read_through_indexes(tmp_path: Path):
    """The console must stay fast with 100,000 calls: no filter may scan the table (SQLite's plan)."""
    store = CallStore(database_url(tmp_path, None))
    try:
        await store.migrate()
        await store.save(many(50, T0))
        async with store.engine.connect() as conn:
            for where in (CallFilter(), CallFilter(number="+15550000001"), CallFilter(scenario="default"),
                          CallFilter(outcome="caller_hung_up"), CallFilter(since=T0, until=T0 + timedelta(days=1))):
                from telephony_bridge.server.call_store import LIST_COLUMNS, calls

                query = sa.select(*LIST_COLUMNS).where(*where.where()).order_by(calls.c.started_at.desc()).limit(50)
                compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})  # type: ignore[union-attr]
                plan = [str(row[-1]) for row in await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))]
                # A whole-table scan is "SCAN calls" alone; walking an index in order is fine.
                assert "USING" in " ".join(plan), (where, plan)
                assert not [step for step in plan if step.startswith("SCAN calls") and "INDEX" not in step], (where, plan)
    finally:
        await store.close()


@pytest.mark.parametrize("configured, driver", [("postgresql://u:p@db/h", "postgresql+asyncpg"),
                                                 ("postgres://u@db/h", "postgresql+asyncpg"),
                                                 ("sqlite:////tmp/x.db", "sqlite+aiosqlite")])
def test_database_url_gets_its_async_driver(configured: str, driver: str):
    assert database_url(Path("data"), configured).startswith(driver + "://")
