"""Writing finished calls to the call store, off every call's path.

A session's end hook hands its record to `StoreWriter.submit`, which only appends to a bounded
buffer: a slow or failing database never delays audio or ends a call. One task opens the store
(migrations included), then saves the buffer in batches; a failed save is logged, counted
(`telephony_bridge_store_failures`) and retried with backoff, the records kept. When the buffer is
full (the database has been down for a long time) the oldest record is dropped, counted and logged.
The same task applies RETENTION_DAYS: once at start and hourly, it deletes older calls and their
recordings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from telephony_bridge.server.call_record import CallRecord, record_from_journal
from telephony_bridge.server.call_store import CallStore, database_url
from telephony_bridge.server.journal import UnsafeFileName, safe_child
from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.settings import Settings

log = logging.getLogger("telephony_bridge.store")

BUFFER_LIMIT = 10_000  # finished calls waiting for the database (a few KiB each)
BATCH = 100
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
RETENTION_EVERY_S = 3600.0
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


class StoreWriter:
    def __init__(self, settings: Settings, metrics: BridgeMetrics, store: CallStore | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store or CallStore(database_url(settings.data_dir, settings.database_url))
        self.ready = asyncio.Event()  # the schema is up to date: the console may read
        self.buffer: deque[CallRecord] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._retention_at = 0.0

    # --- the sessions' side: never waits, never raises ------------------------------------------
    def session_ended(self, session: Any) -> None:
        """runtime.on_session_end: the call's journal is complete; queue its record."""
        journal, call_id = getattr(session, "journal", None), getattr(session, "call_sid", None)
        if journal is None or call_id is None:
            return  # a stream that never became a call
        started_wall = time.time() - (time.monotonic() - journal.started_at)
        record = record_from_journal(
            journal.entries,
            call_id=call_id,
            carrier=session.carrier.name,
            started_at=datetime.fromtimestamp(started_wall, UTC),
            instance=INSTANCE,
        )
        self.submit(record)

    def submit(self, record: CallRecord) -> None:
        if len(self.buffer) >= BUFFER_LIMIT:
            dropped = self.buffer.popleft()
            self.metrics.store_dropped += 1
            log.error(
                "call store: %d calls waiting for the database; call %s dropped from the history",
                BUFFER_LIMIT,
                dropped.call_id,
            )
        self.buffer.append(record)
        self._idle.clear()
        self._wake.set()

    # --- the writer task --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call store writer")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Save what is buffered (for a while), then close the store."""
        if self._task is not None:
            if self.buffer and self.ready.is_set():
                try:
                    await asyncio.wait_for(self._idle.wait(), flush_timeout_s)
                except TimeoutError:
                    log.error("call store: %d calls not saved at shutdown (database unavailable)", len(self.buffer))
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.store.close()

    async def flushed(self, timeout_s: float = 10.0) -> None:
        """Wait until everything submitted so far is saved (tests, `calls` after a call)."""
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def _run(self) -> None:
        delay = RETRY_FIRST_S
        while not self.ready.is_set():
            try:
                await self.store.migrate()
                self.ready.set()
                log.info("call store: %s (%s)", self.store.dialect, _safe_url(self.store.url))
            except Exception as exc:
                self.metrics.store_failures += 1
                log.warning(
                    "call store: cannot open %s (retrying in %g s): %s", _safe_url(self.store.url), delay, _error(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        delay = RETRY_FIRST_S
        while True:
            if self.settings.retention_days > 0 and time.monotonic() >= self._retention_at:
                self._retention_at = time.monotonic() + RETENTION_EVERY_S
                await self.apply_retention()
            if not self.buffer:
                self._idle.set()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETENTION_EVERY_S)
                continue
            batch = [self.buffer[i] for i in range(min(BATCH, len(self.buffer)))]
            try:
                await self.store.save(batch)
            except Exception as exc:
                self.metrics.store_failures += 1
                log.warning(
                    "call store: saving %d call(s) failed (%d waiting; retrying in %g s): %s",
                    len(batch),
                    len(self.buffer),
                    delay,
                    _error(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_FIRST_S
            for _ in batch:
                self.buffer.popleft()
            self.metrics.store_writes += len(batch)

    async def apply_retention(self) -> int:
        """Delete calls older than RETENTION_DAYS and their recordings; how many calls went."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        try:
            deleted = await self.store.delete_before(cutoff)
        except Exception as exc:
            self.metrics.store_failures += 1
            log.warning("call store: retention failed (next try in an hour): %s", _error(exc))
            return 0
        for call in deleted:
            name = call["recording"]
            if not name:
                continue
            stem, dot, suffix = name.rpartition(".")
            try:
                safe_child(self.settings.recordings_dir, stem, dot + suffix).unlink(missing_ok=True)
            except (UnsafeFileName, OSError) as exc:
                log.warning("call store: recording %r of call %s not deleted: %s", name, call["id"], exc)
        if deleted:
            log.info(
                "call store: %d call(s) older than %g days deleted, with their recordings",
                len(deleted),
                self.settings.retention_days,
            )
        return len(deleted)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _error(exc: BaseException) -> str:
    """One line, no credentials (drivers put the DSN in some messages)."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text[:300]
