"""server/store_writer.py: a slow or failing database costs no call anything; records wait and are retried."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telephony_bridge.server import store_writer
from telephony_bridge.server.call_store import CallStore, database_url
from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.store_writer import StoreWriter
from tests.store.journal_samples import record


class FlakyStore(CallStore):
    def __init__(self, url: str, *, fail_opens: int = 0, fail_saves: int = 0, slow_s: float = 0.0) -> None:
        super().__init__(url)
        self.fail_opens, self.fail_saves, self.slow_s = fail_opens, fail_saves, slow_s

    async def migrate(self) -> None:
        if self.fail_opens:
            self.fail_opens -= 1
            raise ConnectionRefusedError("database down")
        await super().migrate()

    async def save(self, records):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.slow_s)
        if self.fail_saves:
            self.fail_saves -= 1
            raise ConnectionResetError("connection lost")
        await super().save(records)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_writer, "RETRY_FIRST_S", 0.01)


async def test_submit_never_waits_and_failures_are_retried_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    metrics = BridgeMetrics()
    store = FlakyStore(database_url(tmp_path, None), fail_opens=2, fail_saves=2, slow_s=0.2)
    writer = StoreWriter(Settings(data_dir=tmp_path), metrics, store)
    writer.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(3):
            writer.submit(record(f"CA{n}"))  # what a call's end hook does: append, return
        assert loop.time() - started < 0.05
        with caplog.at_level(logging.WARNING, "telephony_bridge.store"):
            await writer.flushed(10)
        assert metrics.store_failures == 4 and metrics.store_writes == 3 and metrics.store_dropped == 0
        assert sum("cannot open" in r.message for r in caplog.records) == 2
        assert sum("failed" in r.message and "retrying" in r.message for r in caplog.records) == 2
        assert await store.count_calls() == 3
    finally:
        await writer.stop()


async def test_a_full_buffer_drops_the_oldest_and_counts_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store_writer, "BUFFER_LIMIT", 2)
    metrics = BridgeMetrics()
    writer = StoreWriter(Settings(data_dir=tmp_path), metrics, FlakyStore(database_url(tmp_path, None)))  # not started
    for n in range(3):
        writer.submit(record(f"CA{n}"))
    assert [r.call_id for r in writer.buffer] == ["CA1", "CA2"] and metrics.store_dropped == 1
    await writer.stop()


async def test_retention_deletes_old_calls_and_their_recordings(tmp_path: Path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    old_file, new_file = "20200101-000000-00000000000000000001.wav", "20260101-000000-00000000000000000002.wav"
    (recordings / old_file).write_bytes(b"RIFF")
    (recordings / new_file).write_bytes(b"RIFF")
    settings = replace(Settings(data_dir=tmp_path, recordings_dir=recordings), retention_days=30)
    writer = StoreWriter(settings, BridgeMetrics())
    now = datetime.now(UTC)
    writer.start()
    try:
        writer.submit(record("CAold", started_at=now - timedelta(days=31), recording=old_file))
        writer.submit(record("CAnew", started_at=now - timedelta(days=1), recording=new_file))
        await writer.flushed()
        assert await writer.apply_retention() == 1
        assert [r["id"] for r in await writer.store.list_calls()] == ["CAnew"]
        assert not (recordings / old_file).exists() and (recordings / new_file).exists()
    finally:
        await writer.stop()
