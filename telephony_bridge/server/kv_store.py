"""The file behind `ApplicationStorage`: one SQLite database under DATA_DIR, for every process.

SQLite in WAL mode lets `serve --workers` processes and concurrent calls share the file: readers
never wait for the writer, writers queue on the database's lock (a busy timeout, not an error).
Every statement runs in a worker thread (`asyncio.to_thread`), so a slow disk never stalls a
call's audio; within one process a lock serialises them on one connection (opened on first use,
so a bridge whose scenarios never use storage creates no file). Expired keys are invisible at once
and deleted by the next write that finds some.

This is the interim home of the application's keys (voxengine/storage.py: `KeyValueStore`); they
move to the call store when there is one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from telephony_bridge.voxengine.storage import StorageKey

FILE_NAME = "application_storage.sqlite3"
BUSY_TIMEOUT_MS = 5000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS application_storage "
    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expire_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS application_storage_expiry ON application_storage (expire_at);"
)
_PAST_EVERY_PREFIX = "\U0010ffff"  # sorts after any text that starts with the prefix (keys compare as UTF-8 bytes)


class SqliteKeyValueStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    async def get(self, key: str, now: float) -> StorageKey | None:
        return await asyncio.to_thread(self._get, key, now)

    async def put(self, item: StorageKey, now: float) -> None:
        await asyncio.to_thread(self._put, item, now)

    async def delete(self, key: str, now: float) -> StorageKey | None:
        return await asyncio.to_thread(self._delete, key, now)

    async def keys(self, prefix: str, count: int, now: float) -> list[str]:
        return await asyncio.to_thread(self._keys, prefix, count, now)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- in a worker thread -----------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at each checkpoint, never corrupt
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _get(self, key: str, now: float) -> StorageKey | None:
        with self._lock:
            row = (
                self._connection()
                .execute(
                    "SELECT key, value, expire_at FROM application_storage WHERE key = ? AND expire_at > ?", (key, now)
                )
                .fetchone()
            )
        return StorageKey(*row) if row else None

    def _put(self, item: StorageKey, now: float) -> None:
        with self._lock:
            db = self._connection()
            db.execute(
                "INSERT INTO application_storage (key, value, expire_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expire_at = excluded.expire_at",
                item,
            )
            db.execute("DELETE FROM application_storage WHERE expire_at <= ?", (now,))  # indexed: cheap when none

    def _delete(self, key: str, now: float) -> StorageKey | None:
        with self._lock:
            row = (
                self._connection()
                .execute("DELETE FROM application_storage WHERE key = ? RETURNING key, value, expire_at", (key,))
                .fetchone()
            )
        return StorageKey(*row) if row and row[2] > now else None

    def _keys(self, prefix: str, count: int, now: float) -> list[str]:
        # A range on the primary key, not LIKE: LIKE ignores case and would scan the table.
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT key FROM application_storage WHERE key >= ? AND key < ? AND expire_at > ? "
                    "ORDER BY key LIMIT ?",
                    (prefix, prefix + _PAST_EVERY_PREFIX, now, count),
                )
                .fetchall()
            )
        return [row[0] for row in rows]
