"""`telephony-bridge serve` as a real child process on a free port: for the demo and for tests
that need the real server process (signals, shutdown, workers)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing holds now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 2.0, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(url, data=data, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class ServerProcess:
    """Start with `await start()`; always `stop()` (SIGTERM, then kill) in a finally."""

    def __init__(self, log_path: Path, env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout_s: float = 60) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "telephony_bridge.cli", "serve", "--port", str(self.port), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if await asyncio.to_thread(http_status, self.base_url + "/healthz", 1.0) == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)  # polling a starting process: it has no other way to tell us
        raise RuntimeError(f"server not healthy after {timeout_s:.0f} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, timeout_s)

    async def stop(self, timeout_s: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            await self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await self.wait(5)
