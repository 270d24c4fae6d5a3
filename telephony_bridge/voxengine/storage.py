"""`ApplicationStorage`: the durable key-value store of the application, as Voximplant shapes it.

Keys are shared by every scenario and call of the bridge (one Voximplant application), and
outlive calls and restarts. The front here checks Voximplant's limits and returns its shapes; the
store behind it is anything with the four coroutines of `KeyValueStore` (server/kv_store.py: a
SQLite file under DATA_DIR today; the call store later), so it can move without touching scenarios.

- `await ApplicationStorage.put(key, value, ttl=2592000)` → `StorageKey(key, value, expireAt)`
  (ttl in seconds, 0..7,776,000 = 90 days; default 30 days as on Voximplant's HTTP API).
- `await ApplicationStorage.get(key)` → the `StorageKey`, or `None` (unknown or expired).
- `await ApplicationStorage.delete(key)` → the deleted `StorageKey`, or `None` if there was none.
- `await ApplicationStorage.keys(pattern=None, count=1000)` → `StoragePage(keys=[...])`: keys
  starting with `pattern` (a namespace such as `"caller"` for `caller:+1555…`), sorted.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol

MAX_KEY_CHARS = 200
MAX_VALUE_CHARS = 2000
MAX_TTL_S = 7_776_000  # 90 days
DEFAULT_TTL_S = 2_592_000  # 30 days
MAX_KEYS_PAGE = 1000


class StorageKey(NamedTuple):
    """Voximplant's StorageKey; `expireAt` is a Unix timestamp in seconds."""

    key: str
    value: str
    expireAt: int  # Voximplant's name


class StoragePage(NamedTuple):
    keys: list[str]


class KeyValueStore(Protocol):
    """Where ApplicationStorage keeps its keys. Each method may run off the event loop; none blocks it."""

    async def get(self, key: str, now: float) -> StorageKey | None: ...
    async def put(self, item: StorageKey, now: float) -> None: ...
    async def delete(self, key: str, now: float) -> StorageKey | None: ...
    async def keys(self, prefix: str, count: int, now: float) -> list[str]: ...


class ApplicationStorage:
    """The `ApplicationStorage` global of a scenario (`require(Modules.ApplicationStorage)` in JS)."""

    def __init__(self, store: KeyValueStore | None, clock: Any = time.time) -> None:
        self._store = store
        self._clock = clock

    async def put(self, key: str, value: Any, ttl: float = DEFAULT_TTL_S) -> StorageKey:
        key = _key(key)
        if not isinstance(value, str):
            raise TypeError(f"ApplicationStorage values are strings (json.dumps the rest), got {type(value).__name__}")
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(
                f"ApplicationStorage value for {key!r} is {len(value)} characters; the limit is {MAX_VALUE_CHARS}"
            )
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl <= MAX_TTL_S:
            raise ValueError(f"ApplicationStorage ttl must be 0..{MAX_TTL_S} seconds (90 days), got {ttl!r}")
        now = self._clock()
        item = StorageKey(key, value, int(now + ttl))
        await self._backend().put(item, now)
        return item

    async def get(self, key: str) -> StorageKey | None:
        return await self._backend().get(_key(key), self._clock())

    async def delete(self, key: str) -> StorageKey | None:
        return await self._backend().delete(_key(key), self._clock())

    async def keys(self, pattern: str | None = None, count: int = MAX_KEYS_PAGE) -> StoragePage:
        if pattern is not None and not isinstance(pattern, str):
            raise TypeError(f"ApplicationStorage.keys pattern must be a string, got {type(pattern).__name__}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"ApplicationStorage.keys count must be a positive whole number, got {count!r}")
        return StoragePage(await self._backend().keys(pattern or "", min(count, MAX_KEYS_PAGE), self._clock()))

    def _backend(self) -> KeyValueStore:
        if self._store is None:
            raise RuntimeError("ApplicationStorage is not available here (no store: a scenario's start-up check)")
        return self._store


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"ApplicationStorage keys are non-empty strings, got {key!r}")
    if len(key) > MAX_KEY_CHARS:
        raise ValueError(f"ApplicationStorage key is {len(key)} characters; the limit is {MAX_KEY_CHARS}")
    return key
