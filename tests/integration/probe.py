"""Test instrumentation: scenarios under tests/integration/scenarios report what they saw here,
keyed by call id, so a test can assert on one call without seeing another's events."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any


class Probe:
    def __init__(self) -> None:
        self.events: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        self.media_bytes: dict[str, int] = defaultdict(int)
        self._waiters: list[tuple[Any, asyncio.Future[None]]] = []

    def record(self, call_id: str, kind: str, detail: Any = None) -> None:
        self.events[call_id].append((kind, detail))
        self._wake()

    def media(self, call_id: str, size: int) -> None:
        self.media_bytes[call_id] += size
        self._wake()

    def kinds(self, call_id: str) -> list[str]:
        return [kind for kind, _ in self.events[call_id]]

    def _wake(self) -> None:
        for predicate, future in list(self._waiters):
            if not future.done() and predicate():
                future.set_result(None)

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        if predicate():
            return
        future = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.remove(entry)

    def reset(self) -> None:
        self.events.clear()
        self.media_bytes.clear()


PROBE = Probe()
