"""Load benchmark: N simulated Twilio calls through one bridge process, next to a pass-through floor.

    python -m bench.load                          # sweep 10, 50 calls; bridge and relay; table
    python -m bench.load --calls 10,50,100,200    # a bigger sweep
    python -m bench.load --calls 100 --json       # JSON on stdout (--out FILE writes it too)
    python -m bench.load --soak --minutes 10      # 50 calls hanging up and redialling; RSS over time

Each measurement runs three fresh processes (four with this driver): the bench engine
(bench/engine.py), the target — the bridge (`telephony-bridge serve` with bench/scenarios) or the
relay (bench/relay.py, the floor) — and the load generator (bench/loadgen.py). Caller audio flows
at 50 frames/s per call and the engine answers with model audio deltas, so both directions carry
traffic. This driver samples the target from the outside: /proc/<pid>/stat (CPU), /proc/<pid>/status
(RSS), and the round trip of GET /healthz every 100 ms on a kept-alive connection (a proxy for the
event loop's lag: a request waits for the loop like any frame; it includes ~0.2 ms of HTTP work).

Latency joins timestamps taken in different processes on CLOCK_MONOTONIC (one clock machine-wide):
uplink = engine's receive time of the k-th `input_audio_buffer.append` − load generator's send
time of the call's k-th media frame; downlink = load generator's receive time of the j-th media
message carrying a model delta − engine's send time of the j-th delta. Per-call order is the join
key (the bridge sends exactly one append per frame and one media per delta; the resampler's flush
at the end of each response adds a 12-byte tail, recognised by its size and left out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

if __package__ in (None, ""):  # `python bench/load.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    free_port,
    machine_cpu_seconds,
    self_cpu_seconds,
    percentiles,
    proc_cpu_seconds,
    proc_rss_kb,
    unpack_ints,
    unpack_times,
)

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "bench" / "scenarios"
TARGETS = {
    "latency_p99_ms": 10.0,
    "loop_lag_p99_ms": 5.0,
    "cpu_ratio": 1.5,
    "rss_growth_mb_per_call": 1.0,
    "soak_rss_after_pct": 5.0,
}


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Harness:
    """Every process this run started, so `close()` can end them all (and only them)."""

    run_dir: Path
    cpus_target: set[int] | None
    cpus_harness: set[int] | None
    nice: int = 0
    children: list[Child] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)

    async def spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None, target: bool = False,
                    ready_line: bool = False) -> tuple[Child, int | None]:
        cpus = self.cpus_target if target else self.cpus_harness
        log_path = self.run_dir / f"{name}.log"
        log_file = open(log_path, "ab")
        nice = self.nice

        def preexec() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)
            if nice:
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, 0, nice)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=str(REPO), env=env or _child_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if ready_line else log_file, stderr=log_file,
                start_new_session=True, preexec_fn=preexec,
            )
        finally:
            log_file.close()
        child = Child(name, proc, log_path)
        self.children.append(child)
        self.pids.append(proc.pid)
        port = None
        if ready_line:
            assert proc.stdout is not None
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
            except TimeoutError:
                line = b""
            text = line.decode(errors="replace").strip()
            if not text.startswith("READY port="):
                raise BenchError(f"{name} did not start: {text!r}\n{child.log_tail()}")
            port = int(text.split("=", 1)[1])
        return child, port

    async def stop(self, child: Child, timeout_s: float = 5.0) -> None:
        proc = child.proc
        if proc.returncode is None:
            # The bridge drains on SIGTERM and stops at once on a second one.
            for sig, wait_s in ((signal.SIGTERM, timeout_s / 2), (signal.SIGTERM, timeout_s / 2)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    await asyncio.wait_for(proc.wait(), wait_s)
                    break
                except TimeoutError:
                    pass
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc.stdout is not None:
            with contextlib.suppress(Exception):
                await proc.stdout.read()
        if child in self.children:
            self.children.remove(child)

    async def close(self) -> None:
        for child in list(reversed(self.children)):
            await self.stop(child, timeout_s=3.0)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The bridge must talk to the bench engine only, unsigned from loopback, with no journal files.
    for name in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "CALLS_DIR", "PUBLIC_URL", "LOCAL_ENGINE_SCRIPT", "SCENARIOS_DIR"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _bridge_argv(cfg: argparse.Namespace) -> list[str]:
    if cfg.bridge_cmd:
        return shlex.split(cfg.bridge_cmd)
    script = Path(sys.executable).parent / "telephony-bridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "telephony_bridge.cli"]


async def _http_get(url: str, timeout_s: float = 5.0) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback only)
            return response.read()

    return await asyncio.to_thread(get)


async def _wait_healthy(child: Child, port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.returncode is not None:
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
        try:
            await _http_get(f"http://127.0.0.1:{port}/healthz", 1.0)
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise BenchError(f"{child.name} not healthy after {timeout_s:.0f} s:\n{child.log_tail()}")


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


# --------------------------------------------------------------------------------------------
# one measurement


async def _start_target(h: Harness, cfg: argparse.Namespace, target: str, engine_url: str) -> tuple[Child, int]:
    for attempt in range(3):
        port = free_port()
        if target == "bridge":
            env = _child_env()
            env["REALTIME_URL"] = env["BENCH_ENGINE_URL"] = engine_url
            env["BENCH_CODEC"] = cfg.bridge_codec
            argv = _bridge_argv(cfg) + ["serve", "--host", "127.0.0.1", "--port", str(port), "--scenarios", str(SCENARIOS)]
            child, _ = await h.spawn("bridge", argv, env=env, target=True)
        else:
            argv = [sys.executable, "-m", "bench.relay", "--port", str(port), "--engine-url", engine_url, "--server", cfg.relay_server]
            child, _ = await h.spawn("relay", argv, target=True)
        try:
            await _wait_healthy(child, port)
            return child, port
        except BenchError:
            await h.stop(child)
            if attempt == 2 or "address already in use" not in child.log_tail().lower():
                raise
    raise AssertionError("unreachable")


async def _run_loadgen(h: Harness, cfg: argparse.Namespace, target: str, port: int, calls: int, *, duration: float,
                       ramp: float, soak_s: float = 0.0, tag: str) -> tuple[dict, Child]:
    out = h.run_dir / f"loadgen-{tag}.json"
    argv = [sys.executable, "-m", "bench.loadgen", "--url", f"http://127.0.0.1:{port}", "--calls", str(calls),
            "--duration", str(duration), "--ramp", str(ramp), "--echo-marks", cfg.echo_marks, "--out", str(out)]
    if target == "relay" and cfg.relay_server == "websockets":
        argv += ["--stream-url", f"ws://127.0.0.1:{port}/media-stream"]
    if soak_s:
        argv += ["--soak-seconds", str(soak_s), "--call-seconds", cfg.call_seconds]
    child, _ = await h.spawn(f"loadgen-{tag}", argv)
    return {"out": out}, child


async def _await_loadgen(h: Harness, child: Child, out: Path, timeout_s: float) -> dict:
    try:
        await asyncio.wait_for(child.proc.wait(), timeout_s)
    except TimeoutError:
        await h.stop(child)
        raise BenchError(f"load generator did not finish in {timeout_s:.0f} s:\n{child.log_tail()}") from None
    h.children.remove(child)
    if child.proc.returncode != 0 or not out.exists():
        raise BenchError(f"load generator failed ({child.proc.returncode}):\n{child.log_tail()}")
    return orjson.loads(out.read_bytes())


def progress(message: str) -> None:
    """Long runs say what they are doing, on stderr (stdout carries the table or the JSON)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def _report_soak_progress(sampler: Sampler, soak_s: float, every_s: float = 30.0) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        s = sampler.samples
        active = next((a for a in reversed(s.active) if a is not None), None)
        rss = f"{s.rss_kb[-1] / 1024:.1f} MB" if s.rss_kb else "?"
        progress(f"soak {time.monotonic() - start:.0f}/{soak_s:.0f} s: {active} calls in progress, RSS {rss}")


async def wait_until_quiet(max_wait_s: float, threshold_pct: float = 15.0) -> float:
    """On a shared machine, wait (up to max_wait_s) for a second in which other processes use less
    than threshold_pct of one core; returns that share as last seen (our processes are all stopped here)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, own0, t0 = machine_cpu_seconds()[0], self_cpu_seconds(), time.monotonic()
        await asyncio.sleep(1.0)
        busy1, own1, t1 = machine_cpu_seconds()[0], self_cpu_seconds(), time.monotonic()
        pct = 100 * max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)
        if pct < threshold_pct or time.monotonic() >= deadline:
            return round(pct, 1)


async def measure(h: Harness, cfg: argparse.Namespace, target: str, calls: int, *, soak_s: float = 0.0) -> dict[str, Any]:
    background = await wait_until_quiet(cfg.quiet_wait) if cfg.quiet_wait > 0 else None
    engine, engine_port = await h.spawn(
        f"engine-{target}-{calls}",
        [sys.executable, "-m", "bench.engine", "--port", "0", "--delta-ms", str(cfg.delta_ms),
         "--response-ms", str(cfg.response_ms), "--speed", str(cfg.speed)],
        ready_line=True,
    )
    engine_url = f"ws://127.0.0.1:{engine_port}/v1/realtime"
    server, port = await _start_target(h, cfg, target, engine_url)
    try:
        rss_start = proc_rss_kb(server.pid)
        if cfg.warmup > 0:  # first-call imports and caches are not per-call memory
            _, warm = await _run_loadgen(h, cfg, target, port, 1, duration=cfg.warmup, ramp=0, tag=f"{target}-{calls}-warmup")
            warm_result = await _await_loadgen(h, warm, h.run_dir / f"loadgen-{target}-{calls}-warmup.json", 60)
            if any(c["error"] for c in warm_result["calls"]):
                raise BenchError(f"{target}: warm-up call failed: {warm_result['calls'][0]['error']}\n{server.log_tail()}")
            await _http_get(f"http://127.0.0.1:{engine_port}/stats?reset=1")
        sampler = Sampler(server.pid, [engine.pid], port, cfg.probe_interval, 0.25 if not soak_s else 1.0)
        sampler.start()
        await asyncio.sleep(cfg.rest)
        t_rest_end = time.monotonic()
        info, loadgen = await _run_loadgen(h, cfg, target, port, calls, duration=cfg.duration, ramp=cfg.ramp,
                                           soak_s=soak_s, tag=f"{target}-{calls}")
        sampler.harness_pids.append(loadgen.pid)
        progress(f"{calls} calls through the {target}: " + (f"soaking for {soak_s:.0f} s" if soak_s else f"{cfg.duration:g} s of audio each"))
        ticker = asyncio.create_task(_report_soak_progress(sampler, soak_s)) if soak_s else None
        budget = cfg.ramp + (soak_s or cfg.duration) + 60 + 0.2 * calls + (max(float(x) for x in cfg.call_seconds.split(":")) if soak_s else 0)
        try:
            loadgen_result = await _await_loadgen(h, loadgen, info["out"], budget)
        finally:
            if ticker is not None:
                ticker.cancel()
        t_calls_end = time.monotonic()
        await asyncio.sleep(cfg.settle)
        await sampler.stop()
        raw_stats = await _http_get(f"http://127.0.0.1:{engine_port}/stats")
        engine_stats = orjson.loads(raw_stats)
        if cfg.keep:
            (h.run_dir / f"engine-{target}-{calls}.json").write_bytes(raw_stats)
        if server.proc.returncode is not None:
            raise BenchError(f"{target} exited during the run:\n{server.log_tail()}")
    finally:
        await h.stop(server)
        await h.stop(engine)
    result = analyze(cfg, target, calls, loadgen_result, engine_stats, sampler.samples, t_rest_end=t_rest_end,
                     t_calls_end=t_calls_end, rss_start_kb=rss_start)
    result["pids"] = {"engine": engine.pid, target: server.pid, "loadgen": loadgen.pid}
    result["harness"]["background_before_pct"] = background
    up, down = result["uplink"]["latency_ms"]["p99"], result["downlink"]["latency_ms"]["p99"]
    progress(f"{calls} calls through the {target}: done; {_f(result['cpu'].get('cpu_ms_per_call_s'))} ms CPU per "
             f"call-second, p99 latency {_f(up)} ms up, {_f(down)} ms down")
    return result


# --------------------------------------------------------------------------------------------
# analysis


def _ms(values: np.ndarray) -> np.ndarray:
    return values * 1000.0


def _pct(values: list[float] | np.ndarray) -> dict[str, float | None]:
    return {k: (round(v, 3) if v is not None else None) for k, v in percentiles(values).items()}


def analyze(cfg: argparse.Namespace, target: str, n_calls: int, loadgen: dict, engine: dict, samples: Samples, *,
            t_rest_end: float, t_calls_end: float, rss_start_kb: int) -> dict[str, Any]:
    engine_calls = {c["call"]: c for c in engine["calls"]}
    min_media = cfg.delta_ms * 8 // 2  # a delta's μ-law is delta_ms*8 bytes; the resampler's flush tail is 12
    up_lat: list[np.ndarray] = []
    down_lat: list[np.ndarray] = []
    up_at: list[np.ndarray] = []  # send times of the uplink frames, for the late-frame timeline
    down_at: list[np.ndarray] = []
    up = {"sent": 0, "received": 0, "lost": 0, "late": 0}
    down = {"sent": 0, "received": 0, "lost": 0, "late": 0, "in_flight_at_hangup": 0, "tails": 0}
    errors: list[str] = []
    first_audio_ms, slips = [], []
    ok_calls = []
    marks = {"received": 0, "echoed": 0}
    for call in loadgen["calls"]:
        if call["error"]:
            errors.append(f"{call['sid']}: {call['error']}")
        rec = engine_calls.get(call["sid"])
        if rec is None:
            if not call["error"]:
                errors.append(f"{call['sid']}: the engine never saw this call")
            continue
        send_t, sched_t = unpack_times(call["send_t"]), unpack_times(call["sched_t"])
        append_t = unpack_times(rec["append_t"])
        k = min(send_t.size, append_t.size)
        up["sent"] += int(send_t.size)
        up["received"] += int(append_t.size)
        up["lost"] += max(0, int(send_t.size - append_t.size))
        lat = _ms(append_t[:k] - send_t[:k])
        up_lat.append(lat)
        up_at.append(send_t[:k])
        up["late"] += int((lat > cfg.late_ms).sum())
        if sched_t.size:
            slips.append(_ms(send_t - sched_t))
        recv_t, recv_len = unpack_times(call["recv_t"]), unpack_ints(call["recv_len"])
        main = recv_t[recv_len >= min_media]
        down["tails"] += int((recv_len < min_media).sum())
        delta_t = unpack_times(rec["delta_t"])
        j = min(main.size, delta_t.size)
        lat = _ms(main[:j] - delta_t[:j])
        down_lat.append(lat)
        down_at.append(delta_t[:j])
        down["late"] += int((lat > cfg.late_ms).sum())
        down["sent"] += int(delta_t.size)
        down["received"] += int(main.size)
        hangup = call["t_stop"] if not math.isnan(call["t_stop"]) else (rec["closed_at"] or math.inf)
        unreceived = delta_t[j:]
        lost = int((unreceived < hangup - cfg.hangup_grace).sum())
        down["lost"] += lost
        down["in_flight_at_hangup"] += int(unreceived.size) - lost
        marks["received"] += call["marks_received"]
        marks["echoed"] += call["marks_echoed"]
        if not math.isnan(call["t_media_start"]):
            first_audio_ms.append((call["t_media_start"] - call["t_webhook"]) * 1000)
        if not call["error"]:
            ok_calls.append(call)
    up_all = np.concatenate(up_lat) if up_lat else np.array([])
    down_all = np.concatenate(down_lat) if down_lat else np.array([])
    slip_all = np.concatenate(slips) if slips else np.array([])
    t_first = min((c["t_webhook"] for c in loadgen["calls"]), default=0.0)
    late_timeline = _late_timeline(up_all, np.concatenate(up_at) if up_at else np.array([]),
                                   down_all, np.concatenate(down_at) if down_at else np.array([]), t_first, cfg.late_ms)

    # Steady state: every call streaming. CPU per call-second and RSS at N come from this window.
    result: dict[str, Any] = {"target": target, "calls": n_calls, "calls_placed": len(loadgen["calls"]),
                              "calls_ok": len(ok_calls), "errors": errors[:20],
                              "errors_total": len(errors)}
    starts = [c["t_media_start"] for c in ok_calls]
    stops = [c["t_stop"] for c in ok_calls]
    window = None
    if ok_calls:
        a, b = max(starts) + 1.0, min(stops)
        if b - a < 2.0:  # soak (calls come and go) or a very short run: the middle half of the traffic
            a, b = float(np.percentile(starts, 50)), float(np.percentile(stops, 50))
            a, b = (a, b) if b - a >= 1.0 else (min(starts), max(stops))
        window = (a, b)
    cpu: dict[str, Any] = {}
    rss: dict[str, Any] = {}
    loop: dict[str, Any] = {}
    harness: dict[str, Any] = {}
    if window and samples.t:
        a, b = window
        call_seconds = _call_seconds_in(ok_calls, a, b)
        cpu_s = samples.cpu_at(b) - samples.cpu_at(a)
        cpu["window_s"] = round(b - a, 2)
        cpu["cpu_ms_per_call_s"] = round(cpu_s * 1000 / call_seconds, 3) if call_seconds > 0 else None
        cpu["core_pct"] = round(100 * cpu_s / (b - a), 1)
        all_call_s = sum(max(0.0, (c["t_closed"] if not math.isnan(c["t_closed"]) else c["t_stop"]) - c["t_webhook"]) for c in ok_calls)
        t0 = min(c["t_webhook"] for c in ok_calls)
        total_cpu = samples.cpu_at(t_calls_end) - samples.cpu_at(t0)
        cpu["cpu_ms_per_call_s_with_setup"] = round(total_cpu * 1000 / all_call_s, 3) if all_call_s else None
        harness_s = samples.harness_cpu_at(b) - samples.harness_cpu_at(a)
        harness["engine_loadgen_core_pct"] = round(100 * harness_s / (b - a), 1)
        busy_s = samples.at(samples.machine_busy, b) - samples.at(samples.machine_busy, a)
        harness["foreign_core_pct"] = round(100 * max(0.0, busy_s - cpu_s - harness_s) / (b - a), 1)
        harness["steal_core_pct"] = round(100 * (samples.at(samples.machine_steal, b) - samples.at(samples.machine_steal, a)) / (b - a), 1)
        harness["loadgen_cpu_s"] = round(loadgen.get("loadgen_cpu_s", 0.0), 2)
        rest = [r for t, r in zip(samples.t, samples.rss_kb) if t <= t_rest_end] or samples.rss_kb[:1]
        at_n = samples.rss_between(a, b) or [max(samples.rss_kb)]
        after = [r for t, r in zip(samples.t, samples.rss_kb) if t >= t_calls_end + cfg.settle * 0.5] or samples.rss_kb[-1:]
        rest_kb, n_kb, after_kb = statistics.median(rest), statistics.median(at_n), statistics.median(after)
        rss = {
            "start_mb": round(rss_start_kb / 1024, 1),
            "rest_mb": round(rest_kb / 1024, 1),
            "at_n_mb": round(n_kb / 1024, 1),
            "max_mb": round(max(samples.rss_kb) / 1024, 1),
            "after_mb": round(after_kb / 1024, 1),
            "growth_mb_per_call": round((n_kb - rest_kb) / 1024 / max(1, n_calls), 3),
            "after_vs_rest_pct": round(100 * (after_kb - rest_kb) / rest_kb, 2),
        }
        idle = [r for t, r in zip(samples.probe_t, samples.rtt_ms) if t <= t_rest_end]
        busy = samples.rtt_between(a, b)
        loop = {"healthz_rtt_ms": _pct(busy), "healthz_rtt_idle_p50_ms": _pct(idle)["p50"], "samples": len(busy)}
    result.update({
        "uplink": {**up, "latency_ms": _pct(up_all)},
        "downlink": {**down, "latency_ms": _pct(down_all)},
        "marks": marks,
        "cpu": cpu,
        "rss": rss,
        "loop_lag": loop,
        "harness": {**harness, "pacing_slip_ms": _pct(slip_all), "loadgen_loop": loadgen.get("loop")},
        "time_to_first_audio_ms": _pct(first_audio_ms),
        "late_timeline": late_timeline,
    })
    if samples.t:
        step = max(1, len(samples.t) // 400)
        t0 = samples.t[0]
        result["rss_timeline"] = [[round(t - t0, 1), round(r / 1024, 1)] for t, r in list(zip(samples.t, samples.rss_kb))[::step]]
        active = [(t, a) for t, a in zip(samples.probe_t, samples.active) if a is not None]
        result["active_timeline"] = [[round(t - t0, 1), a] for t, a in active[:: max(1, len(active) // 400)]]
    return result


WORST_CASE_KEYS = frozenset({"lost", "errors_total"})


def merge_repeats(results: list[dict]) -> dict:
    """Repeats of one measurement: the median of every figure (the worst for losses and errors)."""
    if len(results) == 1:
        return results[0]

    def merge(values: list[Any], key: str = "") -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: merge([v.get(k) for v in values], k) for k in first}
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            return first
        numbers = [v for v in values if isinstance(v, (int, float))]
        if key in WORST_CASE_KEYS:
            return max(numbers)
        m = statistics.median(numbers)
        return int(round(m)) if isinstance(first, int) else round(m, 3)

    merged = merge(results)
    merged["repeats"] = len(results)
    merged["per_repeat"] = [
        {"cpu_ms_per_call_s": r["cpu"].get("cpu_ms_per_call_s"), "up_p99": r["uplink"]["latency_ms"]["p99"],
         "down_p99": r["downlink"]["latency_ms"]["p99"], "healthz_p99": (r.get("loop_lag") or {}).get("healthz_rtt_ms", {}).get("p99"),
         "foreign_core_pct": r["harness"].get("foreign_core_pct")}
        for r in results
    ]
    return merged


def _late_timeline(up: np.ndarray, up_at: np.ndarray, down: np.ndarray, down_at: np.ndarray, t0: float,
                   late_ms: float) -> list[list[float]]:
    """Seconds of the run (since the first webhook) with late frames: [s, late up, late down, worst ms].
    Tells a few stalls (GC, a neighbour's burst) from a steady overload, and setup from steady state."""
    rows: dict[int, list[float]] = {}
    for lat, at, col in ((up, up_at, 1), (down, down_at, 2)):
        late = lat > late_ms
        for second, value in zip(((at[late] - t0) // 1).astype(int), lat[late]):
            row = rows.setdefault(int(second), [int(second), 0, 0, 0.0])
            row[col] += 1
            row[3] = max(row[3], round(float(value), 1))
    return [rows[k] for k in sorted(rows)][:200]


def _call_seconds_in(calls: list[dict], a: float, b: float) -> float:
    return sum(max(0.0, min(b, c["t_stop"]) - max(a, c["t_media_start"])) for c in calls)


def add_ratios(bridge: dict, relay: dict) -> dict[str, float | None]:
    def ratio(x: float | None, y: float | None) -> float | None:
        return round(x / y, 2) if x is not None and y not in (None, 0) else None

    def get(d: dict, *path: str) -> Any:
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None
        return d

    keys = {
        "uplink_p50": ("uplink", "latency_ms", "p50"), "uplink_p99": ("uplink", "latency_ms", "p99"),
        "downlink_p50": ("downlink", "latency_ms", "p50"), "downlink_p99": ("downlink", "latency_ms", "p99"),
        "cpu_per_call_s": ("cpu", "cpu_ms_per_call_s"), "loop_lag_p99": ("loop_lag", "healthz_rtt_ms", "p99"),
        "rss_at_n": ("rss", "at_n_mb"), "rss_growth_per_call": ("rss", "growth_mb_per_call"),
    }
    return {name: ratio(get(bridge, *path), get(relay, *path)) for name, path in keys.items()}


def verdicts(bridge: dict, relay: dict | None, soak: dict | None = None) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    up, down = bridge["uplink"]["latency_ms"]["p99"], bridge["downlink"]["latency_ms"]["p99"]
    n = bridge["calls"]
    out.append((f"p99 added latency ≤ {TARGETS['latency_p99_ms']:g} ms each way ({n} calls)",
                None if up is None or down is None else (up <= TARGETS["latency_p99_ms"] and down <= TARGETS["latency_p99_ms"]),
                f"up {_f(up)} ms, down {_f(down)} ms"))
    lost = bridge["uplink"]["lost"] + bridge["downlink"]["lost"]
    out.append(("no lost frames", lost == 0 and bridge["errors_total"] == 0,
                f"{bridge['uplink']['lost']} up, {bridge['downlink']['lost']} down lost; {bridge['errors_total']} failed calls"))
    lag = (bridge.get("loop_lag") or {}).get("healthz_rtt_ms", {}).get("p99")
    out.append((f"loop lag p99 ≤ {TARGETS['loop_lag_p99_ms']:g} ms (/healthz RTT)", None if lag is None else lag <= TARGETS["loop_lag_p99_ms"], f"{_f(lag)} ms"))
    if relay is not None:
        b, r = bridge["cpu"].get("cpu_ms_per_call_s"), relay["cpu"].get("cpu_ms_per_call_s")
        ok = None if not b or not r else b / r <= TARGETS["cpu_ratio"]
        out.append((f"CPU per call-second ≤ {TARGETS['cpu_ratio']:g}× relay", ok,
                    f"{_f(b)} vs {_f(r)} ms → {_f(b / r if b and r else None)}×"))
    g = bridge["rss"].get("growth_mb_per_call")
    out.append((f"RSS growth ≤ {TARGETS['rss_growth_mb_per_call']:g} MB per concurrent call", None if g is None else g <= TARGETS["rss_growth_mb_per_call"], f"{_f(g)} MB"))
    if soak is not None:
        p = soak["rss"].get("after_vs_rest_pct")
        out.append((f"RSS after soak within {TARGETS['soak_rss_after_pct']:g} % of rest", None if p is None else abs(p) <= TARGETS["soak_rss_after_pct"], f"{_f(p)} %"))
    return out


def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


# --------------------------------------------------------------------------------------------
# report


def machine_info(cpus_target: set[int] | None, cpus_harness: set[int] | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    import websockets

    return {
        "cpu": model, "nproc": os.cpu_count(), "python": platform.python_version(), "loop": loop,
        "websockets": websockets.__version__, "loadavg": [round(x, 2) for x in os.getloadavg()],
        "pinning": {"target": sorted(cpus_target), "harness": sorted(cpus_harness)} if cpus_target else None,
    }


def format_table(report: dict) -> str:
    m = report["machine"]
    pin = m["pinning"]
    lines = [
        f"machine: {m['cpu']}, {m['nproc']} cores, Python {m['python']}, {m['loop']}; load average at start {m['loadavg']}",
        (f"pinning: target on CPU {pin['target']}, engine + load generator + driver on CPU {pin['harness']}" if pin else "pinning: off")
        + f"; nice {m.get('nice', 0)}",
        f"each call: {(report['config']['call_seconds'] + ' (soak)') if report.get('soak') else format(report['config']['duration'], 'g')} s of caller audio (50 frames/s) + model audio "
        f"({report['config']['delta_ms']} ms deltas, speed {report['config']['speed']:g}×)",
        "",
    ]
    if report["sweep"]:
        head = (f"{'calls':>5} {'target':<7} {'ok':>4} | {'up sent':>8} {'lost':>4} {'late':>5} {'p50':>6} {'p99':>6} {'max':>6} | "
                f"{'dn sent':>7} {'lost':>4} {'late':>5} {'p50':>6} {'p99':>6} {'max':>6} | {'cpu ms/':>7} {'core':>5} | "
                f"{'hz p50':>6} {'hz p99':>6} | {'rss rest':>8} {'at N':>6} {'after':>6} {'MB/call':>7}")
        lines += [head, " " * 19 + "| uplink, latency ms" + " " * 21 + "| downlink, latency ms" + " " * 18 + "| call-s   %    | loop lag ms   | RSS MB", "-" * len(head)]
        for point in report["sweep"]:
            for name in ("relay", "bridge"):
                r = point.get(name)
                if r is None:
                    continue
                u, d = r["uplink"], r["downlink"]
                hz = (r.get("loop_lag") or {}).get("healthz_rtt_ms") or {}
                rss = r.get("rss") or {}
                lines.append(
                    f"{r['calls']:>5} {name:<7} {r['calls_ok']:>4} | {u['sent']:>8} {u['lost']:>4} {u['late']:>5} "
                    f"{_f(u['latency_ms']['p50']):>6} {_f(u['latency_ms']['p99']):>6} {_f(u['latency_ms']['max'], 1):>6} | "
                    f"{d['sent']:>7} {d['lost']:>4} {d['late']:>5} {_f(d['latency_ms']['p50']):>6} {_f(d['latency_ms']['p99']):>6} "
                    f"{_f(d['latency_ms']['max'], 1):>6} | {_f(r['cpu'].get('cpu_ms_per_call_s')):>7} {_f(r['cpu'].get('core_pct'), 0):>5} | "
                    f"{_f(hz.get('p50')):>6} {_f(hz.get('p99')):>6} | {_f(rss.get('rest_mb'), 1):>8} {_f(rss.get('at_n_mb'), 1):>6} "
                    f"{_f(rss.get('after_mb'), 1):>6} {_f(rss.get('growth_mb_per_call'), 3):>7}"
                )
            ratios = point.get("ratios")
            if ratios:
                lines.append(
                    f"{point['calls']:>5} {'÷relay':<7} {'':>4} | {'':>8} {'':>4} {'':>5} {_f(ratios['uplink_p50']):>6} {_f(ratios['uplink_p99']):>6} {'':>6} | "
                    f"{'':>7} {'':>4} {'':>5} {_f(ratios['downlink_p50']):>6} {_f(ratios['downlink_p99']):>6} {'':>6} | "
                    f"{_f(ratios['cpu_per_call_s']):>7} {'':>5} | {'':>6} {_f(ratios['loop_lag_p99']):>6} | {'':>8} "
                    f"{_f(ratios['rss_at_n']):>6} {'':>6} {_f(ratios['rss_growth_per_call']):>7}"
                )
    lines.append("")
    lines.append(f"late = latency > {report['config']['late_ms']:g} ms; lost = sent, never received "
                 f"(downlink: sent > {report['config']['hangup_grace']:g} s before hang-up); hz = GET /healthz round trip")
    if report.get("soak"):
        soak = report["soak"]
        lines.append(f"  soak: harness {_f(soak['harness'].get('engine_loadgen_core_pct'), 0)} % of a core, other processes "
                     f"{_f(soak['harness'].get('foreign_core_pct'), 0)} %, pacing slip p99 {_f(soak['harness']['pacing_slip_ms']['p99'])} ms")
    for point in report["sweep"]:
        for name in ("relay", "bridge"):
            r = point.get(name)
            if r is None:
                continue
            hn = r["harness"]
            lines.append(f"  {r['calls']:>4} {name:<6}: harness {_f(hn.get('engine_loadgen_core_pct'), 0)} % of a core, "
                         f"other processes {_f(hn.get('foreign_core_pct'), 0)} %, steal {_f(hn.get('steal_core_pct'), 0)} %, "
                         f"pacing slip p99 {_f(hn['pacing_slip_ms']['p99'])} ms; first audio p50 {_f(r['time_to_first_audio_ms']['p50'], 1)} ms; "
                         f"CPU incl. call setup {_f(r['cpu'].get('cpu_ms_per_call_s_with_setup'))} ms/call-s"
                         + (f"; ERRORS {r['errors_total']}: {r['errors'][:2]}" if r["errors_total"] else ""))
    if report.get("soak"):
        lines += ["", format_soak(report["soak"])]
    if report.get("verdicts"):
        lines += ["", f"targets (at {report['verdicts_at']} calls):"]
        for text, ok, detail in report["verdicts"]:
            mark = "MET   " if ok else ("MISSED" if ok is False else "n/a   ")
            lines.append(f"  {mark} {text}: {detail}")
    return "\n".join(lines)


def format_soak(soak: dict) -> str:
    rss, u, d = soak["rss"], soak["uplink"], soak["downlink"]
    lines = [
        f"soak: {soak['calls']} concurrent calls for {soak['minutes']:g} min, calls of {soak['call_seconds']} s, "
        f"{len(soak.get('errors', []))} errors; {soak['calls_placed']} calls placed",
        f"  frames up {u['sent']} sent, {u['lost']} lost, p99 {_f(u['latency_ms']['p99'])} ms; "
        f"down {d['sent']} sent, {d['lost']} lost, p99 {_f(d['latency_ms']['p99'])} ms; "
        f"CPU {_f(soak['cpu'].get('cpu_ms_per_call_s_with_setup'))} ms/call-s incl. setup",
        f"  RSS MB: start {_f(rss.get('start_mb'), 1)}, rest {_f(rss.get('rest_mb'), 1)}, max {_f(rss.get('max_mb'), 1)}, "
        f"after {_f(rss.get('after_mb'), 1)} ({_f(rss.get('after_vs_rest_pct'), 1)} % vs rest)",
        "  RSS over time (s → MB, active calls):",
    ]
    timeline = soak.get("rss_timeline") or []
    active = dict((round(t), a) for t, a in soak.get("active_timeline") or [])
    stride = max(1, len(timeline) // 24)
    for t, mb in timeline[::stride]:
        lines.append(f"    {t:>7.0f} s  {mb:>7.1f} MB  {active.get(round(t), '')}")
    if soak.get("rss_slope_mb_per_min") is not None:
        lines.append(f"  RSS slope over the second half of the soak: {soak['rss_slope_mb_per_min']:+.3f} MB/min")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# driver


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", default="10,50", help="comma-separated sweep of concurrent calls (default 10,50)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of caller audio per call (default 20)")
    p.add_argument("--ramp", type=float, default=3.0, help="spread call starts over this many seconds (default 3)")
    p.add_argument("--repeat", type=int, default=1, help="measure each point this many times (alternating targets) and report medians")
    p.add_argument("--targets", default="relay,bridge", help="relay,bridge (default both; ratios need both)")
    p.add_argument("--relay-server", choices=("starlette", "websockets"), default="starlette",
                   help="the floor's stack: starlette (the bridge's: uvicorn+Starlette) or plain websockets")
    p.add_argument("--bridge-codec", choices=("pcm16", "g711_ulaw"), default="pcm16",
                   help="the model's audio format in the bridge: pcm16 (resampled, default) or g711_ulaw (passed through)")
    p.add_argument("--delta-ms", type=int, default=100, help="model audio per delta (default 100)")
    p.add_argument("--response-ms", type=int, default=2000, help="model audio per response (default 2000)")
    p.add_argument("--speed", type=float, default=1.0, help="engine sends each response this much faster than real time, then pauses (default 1: paced)")
    p.add_argument("--echo-marks", choices=("playout", "immediate", "none"), default="playout")
    p.add_argument("--late-ms", type=float, default=20.0, help="a frame later than this counts as late (default 20)")
    p.add_argument("--hangup-grace", type=float, default=1.0, help="model deltas sent this close to hang-up may be lost legitimately")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of one warm-up call before measuring (0: none)")
    p.add_argument("--rest", type=float, default=1.0, help="seconds at rest measured before the calls")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after the calls before 'RSS after'")
    p.add_argument("--probe-interval", type=float, default=0.1, help="GET /healthz every this many seconds")
    p.add_argument("--pin", choices=("auto", "off"), default="auto", help="auto: target on the last CPU, the rest elsewhere")
    p.add_argument("--verdict-at", type=int, default=100, help="judge the targets at this many calls if swept (default 100)")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each measurement wait up to this many seconds for other processes to go quiet (shared machines)")
    p.add_argument("--nice", type=int, default=None,
                   help="scheduling priority of every benchmark process (default -10 as root, so other work on a shared "
                        "machine disturbs the run less; 0 to leave it)")
    p.add_argument("--bridge-cmd", help="command that runs the bridge CLI (default: .venv's telephony-bridge)")
    p.add_argument("--soak", action="store_true", help="soak mode: calls hang up and redial for --minutes")
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--soak-calls", type=int, default=50, help="concurrent calls in the soak (default 50)")
    p.add_argument("--call-seconds", default="10:30", help="soak: each call lasts uniform(A, B) seconds (default 10:30)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.add_argument("--keep", help="keep logs and raw per-process results in this directory")
    return p


def _pinning(mode: str) -> tuple[set[int] | None, set[int] | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "off" or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


async def run(cfg: argparse.Namespace) -> dict[str, Any]:
    targets = [t.strip() for t in cfg.targets.split(",") if t.strip()]
    if not targets or any(t not in ("relay", "bridge") for t in targets):
        raise BenchError(f"--targets takes relay and/or bridge, not {cfg.targets!r}")
    sweep = [int(x) for x in str(cfg.calls).split(",") if x.strip()]
    cpus_target, cpus_harness = _pinning(cfg.pin)
    own_cpus = os.sched_getaffinity(0)
    if cpus_harness:
        os.sched_setaffinity(0, cpus_harness)
    run_dir = Path(cfg.keep) if cfg.keep else Path(tempfile.mkdtemp(prefix="bench-load-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    nice = cfg.nice if cfg.nice is not None else (-10 if os.geteuid() == 0 else 0)
    h = Harness(run_dir, cpus_target, cpus_harness, nice)
    own_nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    report: dict[str, Any] = {
        "machine": {**machine_info(cpus_target, cpus_harness), "nice": nice},
        "config": {k: v for k, v in vars(cfg).items() if k not in ("json", "out", "keep")},
        "sweep": [],
    }
    try:
        if cfg.soak:
            soak_s = cfg.minutes * 60
            target = "bridge" if "bridge" in targets else targets[0]
            r = await measure(h, cfg, target, cfg.soak_calls, soak_s=soak_s)
            r.update({"minutes": cfg.minutes, "call_seconds": cfg.call_seconds})
            r["rss_slope_mb_per_min"] = _second_half_slope(r.get("rss_timeline") or [])
            report["soak"] = r
            report["verdicts"] = [v for v in verdicts(r, None, r) if "soak" in v[0] or "lost" in v[0]]
            report["verdicts_at"] = cfg.soak_calls
        else:
            for n in sweep:
                point: dict[str, Any] = {"calls": n}
                runs: dict[str, list[dict]] = {t: [] for t in targets}
                for rep in range(cfg.repeat):
                    # Alternate the order so a change in background load does not favour one side.
                    for target in (("relay", "bridge") if rep % 2 == 0 else ("bridge", "relay")):
                        if target in targets:
                            runs[target].append(await measure(h, cfg, target, n))
                for target, results in runs.items():
                    point[target] = merge_repeats(results)
                if "relay" in point and "bridge" in point:
                    point["ratios"] = add_ratios(point["bridge"], point["relay"])
                report["sweep"].append(point)
            # Judge at --verdict-at calls (the targets are stated for 100), else at the largest sweep point.
            with_bridge = [p for p in report["sweep"] if "bridge" in p]
            last = next((p for p in with_bridge if p["calls"] == cfg.verdict_at), with_bridge[-1] if with_bridge else None)
            if last is not None:
                report["verdicts"] = verdicts(last["bridge"], last.get("relay"))
                report["verdicts_at"] = last["calls"]
    finally:
        await h.close()
        os.sched_setaffinity(0, own_cpus)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, own_nice)
        if not cfg.keep:
            for path in run_dir.iterdir():
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                run_dir.rmdir()
    report["pids"] = h.pids
    return report


def _second_half_slope(timeline: list[list[float]]) -> float | None:
    if len(timeline) < 8:
        return None
    half = timeline[len(timeline) // 2 :]
    t = np.array([p[0] for p in half])
    mb = np.array([p[1] for p in half])
    if t[-1] - t[0] < 10:
        return None
    return round(float(np.polyfit(t, mb, 1)[0] * 60), 4)


async def _run_until_signalled(cfg: argparse.Namespace) -> dict[str, Any]:
    """SIGTERM/SIGINT cancel the run, so its `finally` still ends every process it started."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)
            installed.append(sig)
    try:
        return await run(cfg)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    cfg = build_parser().parse_args(argv)
    try:
        report = asyncio.run(_run_until_signalled(cfg))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    if cfg.out:
        Path(cfg.out).write_text(text)
    print(text if cfg.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
