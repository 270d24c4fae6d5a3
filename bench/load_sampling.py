"""Sampling the target from the outside while it runs: health probes, CPU and RSS over time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import numpy as np

from bench.common import (
    children,
    machine_cpu_seconds,
    proc_cpu_seconds,
    proc_rss_kb,
    self_cpu_seconds,
)

# --------------------------------------------------------------------------------------------
# sampling the target from the outside


class HealthProbe:
    """GET /healthz on one kept-alive connection; the round trip is the loop-lag proxy."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _round_trip(self) -> int | None:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self._reader is not None
        self._writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await self._reader.readuntil(b"\r\n\r\n")
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
        body = await self._reader.readexactly(length)
        if close:
            self.reset()
        with contextlib.suppress(ValueError):
            return int(json.loads(body).get("active_calls", -1))
        return None

    async def sample(self, timeout_s: float) -> tuple[float, int | None]:
        t0 = time.monotonic()
        try:
            active = await asyncio.wait_for(self._round_trip(), timeout_s)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            self.reset()
            return timeout_s * 1000, None
        return (time.monotonic() - t0) * 1000, active

    def reset(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Samples:
    t: list[float] = field(default_factory=list)  # /proc samples
    cpu: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    harness_cpu: list[float] = field(default_factory=list)  # engine + load generator + this driver, CPU seconds
    machine_busy: list[float] = field(default_factory=list)  # all CPUs, all processes
    machine_steal: list[float] = field(default_factory=list)
    probe_t: list[float] = field(default_factory=list)
    rtt_ms: list[float] = field(default_factory=list)
    active: list[int | None] = field(default_factory=list)

    def cpu_at(self, t: float) -> float:
        return float(np.interp(t, self.t, self.cpu))

    def harness_cpu_at(self, t: float) -> float:
        return float(np.interp(t, self.t, self.harness_cpu))

    def at(self, series: list[float], t: float) -> float:
        return float(np.interp(t, self.t, series))

    def rss_between(self, a: float, b: float) -> list[int]:
        return [r for t, r in zip(self.t, self.rss_kb) if a <= t <= b]

    def rtt_between(self, a: float, b: float) -> list[float]:
        return [r for t, r in zip(self.probe_t, self.rtt_ms) if a <= t <= b]


class Sampler:
    def __init__(self, target_pid: int, harness_pids: list[int], port: int, probe_interval_s: float, proc_interval_s: float) -> None:
        self.pid = target_pid
        self.harness_pids = harness_pids
        self.probe = HealthProbe(port)
        self.probe_interval_s = probe_interval_s
        self.proc_every = max(1, round(proc_interval_s / probe_interval_s))
        self.samples = Samples()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def _harness_cpu(self) -> float:
        total = 0.0
        for pid in list(self.harness_pids):
            try:
                total += proc_cpu_seconds(pid)
            except OSError:
                self.harness_pids.remove(pid)  # exited; its last reading stays in the series below
        return total

    def sample_proc(self) -> None:
        s = self.samples
        try:
            cpu, rss = proc_cpu_seconds(self.pid), proc_rss_kb(self.pid)
            for child in children(self.pid):  # `serve --workers N`: the workers do the work
                with contextlib.suppress(OSError):
                    cpu, rss = cpu + proc_cpu_seconds(child), rss + proc_rss_kb(child)
        except OSError:
            return
        harness = self._harness_cpu() + self_cpu_seconds()
        busy, steal = machine_cpu_seconds()
        s.t.append(time.monotonic())
        s.cpu.append(cpu)
        s.rss_kb.append(rss)
        s.harness_cpu.append(max(harness, s.harness_cpu[-1]) if s.harness_cpu else harness)
        s.machine_busy.append(busy)
        s.machine_steal.append(steal)

    async def _run(self) -> None:
        due, n = time.monotonic(), 0
        while not self._stopping:
            rtt, active = await self.probe.sample(timeout_s=2.0)
            self.samples.probe_t.append(time.monotonic())
            self.samples.rtt_ms.append(rtt)
            self.samples.active.append(active)
            if n % self.proc_every == 0:
                self.sample_proc()
            n += 1
            due += self.probe_interval_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    def start(self) -> None:
        self.sample_proc()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        # A flag, not only cancel(): on Python 3.11 asyncio.wait_for can swallow a cancellation
        # that lands as its inner call completes, and the loop would then poll forever.
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self.sample_proc()
        self.probe.reset()
