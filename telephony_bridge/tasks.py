"""The owner of one call's tasks.

Every task of a call (carrier reader, model reader and writer, handler coroutines, timers) is spawned
through one `TaskOwner`, which sits on the call session's `asyncio.TaskGroup`. Children are guarded:
an exception in one is logged with the call id and does not cancel its siblings (a TaskGroup alone
would tear the whole call down for a scenario bug). Closing the owner cancels and awaits them all,
so nothing of a finished call keeps running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("telephony_bridge.call")


class TaskOwner:
    def __init__(self, label: str, group: asyncio.TaskGroup | None = None) -> None:
        self.label = label
        self._group = group
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.label} has ended; cannot start {name}")
        guarded = self._guard(coro, name)
        task_name = f"{self.label}: {name}"
        task = (
            self._group.create_task(guarded, name=task_name)
            if self._group
            else asyncio.get_running_loop().create_task(guarded, name=task_name)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: task %s failed", self.label, name)
            return None

    def task_count(self) -> int:
        return len(self._tasks)

    def running(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    async def drain(self, timeout_s: float, exclude: frozenset[asyncio.Task[Any]] = frozenset()) -> None:
        """Let running tasks (say, a Terminated handler) finish, up to a deadline; tasks in
        `exclude` (a scenario's long-running timer) are not waited for."""
        current = asyncio.current_task()
        pending = [task for task in self._tasks if task is not current and not task.done() and task not in exclude]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    async def aclose(self) -> None:
        """Cancel every task but the caller's own, and wait for them to finish."""
        self._closed = True
        current = asyncio.current_task()
        pending = [task for task in self._tasks if task is not current and not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
