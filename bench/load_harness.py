"""The load benchmark's process harness: the processes it starts (bridge, relay, engine, load
generator), their logs, and ending them all, and only them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

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
