"""Small helpers shared by the load benchmark's processes (engine, relay, load generator, driver).

Times are `time.monotonic()` seconds everywhere: CLOCK_MONOTONIC is one clock for every process on
the machine, so a send time taken in one process and a receive time taken in another subtract.
Per-frame timestamps travel between processes as base64 of little-endian float64 arrays: compact,
and cheap to turn back into numpy arrays.
"""

from __future__ import annotations

import asyncio
import base64
import os
from array import array
from typing import Any

import numpy as np

from telephony_bridge.testing.processes import free_port  # noqa: F401  (re-exported for bench.load)

FRAME_MS = 20
FRAME_S = FRAME_MS / 1000
ULAW_FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz
REALTIME_PATH = "/v1/realtime"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def pack_times(values: array | list[float]) -> str:
    if not isinstance(values, array):
        values = array("d", values)
    return base64.b64encode(values.tobytes()).decode("ascii")


def unpack_times(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8")


def pack_ints(values: array | list[int]) -> str:
    if not isinstance(values, array):
        values = array("i", values)
    return base64.b64encode(values.tobytes()).decode("ascii")


def unpack_ints(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<i4")


def install_fast_loop() -> str:
    """uvloop when installed (as the bridge uses it), else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def children(pid: int) -> list[int]:
    """The process's direct children (all its threads'), e.g. `serve --workers N`'s workers."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat (all CPUs added up).

    Busy counts user, nice, system, irq, softirq and steal; steal alone is time the hypervisor gave
    to other guests — both say how much the run was disturbed by work that is not the benchmark's."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def percentiles(values: Any, qs: tuple[float, ...] = (50, 99)) -> dict[str, float | None]:
    data = np.asarray(values, dtype=float)
    out: dict[str, float | None] = {}
    for q in qs:
        out[f"p{q:g}"] = float(np.percentile(data, q)) if data.size else None
    out["max"] = float(data.max()) if data.size else None
    return out
