"""What the SIP tests' scenarios saw, by call id (the scenarios run in the test's process)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any


class Probe:
    def __init__(self) -> None:
        self.events: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        self.changed = asyncio.Event()
        self.audio_bytes: dict[str, int] = defaultdict(int)  # caller audio the scenario's unit took

    def record(self, call_id: str, name: str, value: Any = None) -> None:
        self.events[call_id].append((name, value))
        self.changed.set()

    def names(self, call_id: str) -> list[str]:
        return [name for name, _ in self.events.get(call_id, [])]

    def any_call(self) -> list[tuple[str, Any]]:
        return [event for events in self.events.values() for event in events]

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def clear(self) -> None:
        self.events.clear()
        self.audio_bytes.clear()
        self.changed = asyncio.Event()  # each test runs its own event loop


PROBE = Probe()


async def wait_until(predicate: Any, timeout_s: float = 10.0) -> None:
    """Poll a condition of the bridge's state (its tables have no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)
