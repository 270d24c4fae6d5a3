"""Give memory back to the OS when the bridge falls idle.

A busy period leaves the process at its high-water mark: CPython's allocator and glibc's malloc
keep freed pages for reuse, so after a 10-minute, 50-call soak RSS stayed at the working set's
70 MB against 59 MB at rest (bench/README.md, soak). Nothing leaks — the next burst reuses those
pages — but a fleet sized on RSS, or a container near its limit, reads it as one. So when no call
has been in progress for ``idle_s``, the bridge runs one full garbage collection (the few cycles
the libraries leave, such as a websockets protocol and its parser) and asks glibc to return free
pages (``malloc_trim(0)``; a no-op elsewhere): 64 MB after that soak.

Only when idle, because a full collection of the ~50 k long-lived objects takes tens of
milliseconds of the event loop, which a call in progress would hear; and once per idle period,
so an idle bridge does no work at all.

``IdlePolicy`` is the decision alone (plain numbers in, a bool out), tested without a clock;
``release_memory`` does the work; ``release_when_idle`` is the thin loop the server runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("telephony_bridge.memory")

DEFAULT_IDLE_S = 1.0
POLL_S = 0.25


@dataclass(slots=True)
class IdlePolicy:
    """Release once per idle period: after calls were seen, and ``idle_s`` without any since.

    Calls are seen by the count of streams ever opened as well as the count in progress, so a call
    that starts and ends between two looks still counts."""

    idle_s: float = DEFAULT_IDLE_S
    _opened_at_release: int = 0
    _idle_since: float | None = None

    def should_release(self, active_calls: int, streams_opened: int, now: float) -> bool:
        if active_calls or streams_opened == self._opened_at_release:
            self._idle_since = None  # busy, or nothing happened since the last release (or start-up)
            return False
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.idle_s:
            return False
        self._opened_at_release = streams_opened
        self._idle_since = None
        return True


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (musl, macOS, …: nothing to call)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def rss_bytes() -> int | None:
    """Resident set size of this process (Linux), or None where /proc is not there."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class Release:
    collected: int  # unreachable objects the full collection found
    rss_before: int | None
    rss_after: int | None
    trimmed: bool  # malloc_trim ran (glibc)


def release_memory(malloc_trim: Callable[[int], int] | None) -> Release:
    before = rss_bytes()
    collected = gc.collect()
    if malloc_trim is not None:
        malloc_trim(0)
    return Release(collected, before, rss_bytes(), malloc_trim is not None)


def freeze_startup_heap() -> int:
    """Move everything alive after start-up (modules, scenarios, the app: ~50 k objects) out of
    the cyclic GC's reach. A full collection otherwise walks them all, a 15–25 ms stall of every
    call in progress, a few times a minute under load; frozen, the same collections took
    0.1–1.3 ms at 100 calls (bench/README.md). Start-up's own garbage is collected first, since
    frozen objects are never freed. Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def release_when_idle(
    calls: Callable[[], tuple[int, int]],
    idle_s: float = DEFAULT_IDLE_S,
    on_release: Callable[[Release], None] | None = None,
) -> None:
    """Run for the life of the server: release memory once each time the bridge falls idle.
    `calls()` gives (calls in progress, media streams opened so far)."""
    policy = IdlePolicy(idle_s)
    malloc_trim = _glibc_malloc_trim()
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(min(POLL_S, idle_s))
        if policy.should_release(*calls(), loop.time()):
            try:
                released = release_memory(malloc_trim)
            except Exception:  # an optimisation: never let it end the loop, or the server
                log.exception("idle memory release failed; trying again at the next idle period")
                continue
            if released.rss_before is not None and released.rss_after is not None:
                log.debug(
                    "idle: collected %d objects; RSS %.1f → %.1f MB%s",
                    released.collected,
                    released.rss_before / 2**20,
                    released.rss_after / 2**20,
                    "" if released.trimmed else " (no malloc_trim here)",
                )
            if on_release is not None:
                on_release(released)
