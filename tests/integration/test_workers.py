"""`serve --workers 2`: one port, two processes; calls spread over both and nothing crosses."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import orjson
import pytest

from telephony_bridge.testing.processes import ServerProcess
from tests.integration.conftest import SCENARIOS
from tests.integration.twilio_peer import TwilioPeer

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


async def test_two_workers_take_twenty_calls_between_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(SCENARIOS_DIR=str(SCENARIOS), CALLS_DIR=str(tmp_path / "calls"), REALTIME_URL="ws://127.0.0.1:9/unused",
               PYTHONPATH=os.getcwd(), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    server = ServerProcess(tmp_path / "server.log", env, args=["--workers", "2"])
    try:
        await server.start()

        async def one_call() -> tuple[str, int]:
            peer = await TwilioPeer.open(f"ws://127.0.0.1:{server.port}/media-stream")
            await peer.start({"scenario": "default"})
            for _ in range(10):
                await peer.media()
            await peer.dtmf("1")
            await peer.stop()
            code, _ = await peer.wait_closed()
            return peer.call_sid, code

        results = []
        for _ in range(4):  # 4 waves of 5 concurrent calls: new connections meet both workers
            results += await asyncio.gather(*(one_call() for _ in range(5)))
        assert [code for _, code in results] == [1000] * 20

        async def journals_written() -> list[list[dict]]:
            paths = [tmp_path / "calls" / f"{sid}.json" for sid, _ in results]
            while not all(p.exists() for p in paths):
                await asyncio.sleep(0.05)
            return [orjson.loads(p.read_bytes()) for p in paths]

        journals = await asyncio.wait_for(journals_written(), 10)
        for journal in journals:
            assert journal[-1]["event"] == "call.ended" and journal[-1]["reason"] == "caller hung up"
            assert any(e["event"] == "caller.dtmf" for e in journal)
        pids = {journal[0]["pid"] for journal in journals}
        assert len(pids) == 2, pids  # each worker took some
        # Each worker folds its counters into its file once a second, so a fold can land between a
        # call's start and its last frame: wait for both sums, not the first one seen.
        summed = (
            r"^telephony_bridge_calls_started_total 20\.0$",
            r'^telephony_bridge_carrier_frames_total\{direction="in"\} 200\.0$',
        )

        async def metrics_summed() -> str:
            while True:
                text = await asyncio.to_thread(_get, f"{server.base_url}/metrics")
                if all(re.search(pattern, text, re.MULTILINE) for pattern in summed):
                    return text
                await asyncio.sleep(0.2)

        await asyncio.wait_for(metrics_summed(), 10)  # the sums over both workers' files
    finally:
        await server.stop()
    assert server.process.returncode == 0


async def test_a_worker_restarted_after_a_crash_drains_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(SCENARIOS_DIR=str(SCENARIOS), CALLS_DIR=str(tmp_path / "calls"), REALTIME_URL="ws://127.0.0.1:9/unused",
               PYTHONPATH=os.getcwd(), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), DRAIN_TIMEOUT_S="30")
    (tmp_path / "metrics").mkdir()
    server = ServerProcess(tmp_path / "server.log", env, args=["--workers", "2"])
    try:
        await server.start()
        supervisor = server.process.pid
        first = await asyncio.wait_for(_until(lambda: _workers(supervisor) if len(_workers(supervisor)) == 2 else None), 20)
        os.kill(min(first), signal.SIGKILL)

        def restarted_and_listening() -> int | None:
            new = _workers(supervisor) - first
            return next((pid for pid in new if _listens_on(pid, server.port)), None)

        restarted = await asyncio.wait_for(_until(restarted_and_listening), 30)
        peer = await asyncio.wait_for(_call_held_by(restarted, server.port), 20)
        await peer.start({"scenario": "default"})
        await asyncio.wait_for(_until(lambda: (tmp_path / "calls" / f"{peer.call_sid}.jsonl").exists() or None), 10)

        os.kill(restarted, signal.SIGTERM)
        draining = f"[{restarted}] INFO    telephony_bridge.server: SIGTERM: draining; 1 call(s) in progress"
        try:
            await asyncio.wait_for(_until(lambda: draining in server.log() or None), 10)
        except TimeoutError:
            pytest.fail(f"the restarted worker {restarted} did not drain on SIGTERM:\n{server.log()[-3000:]}")
        for _ in range(5):
            await peer.media()  # the call goes on through the drain
        await peer.dtmf("3")
        await peer.stop()
        code, _ = await peer.wait_closed()
        assert code == 1000
        journal = await asyncio.wait_for(_until(lambda: _journal(tmp_path / "calls" / f"{peer.call_sid}.json")), 10)
        assert journal[0]["pid"] == restarted
        assert journal[-1]["event"] == "call.ended" and journal[-1]["reason"] == "caller hung up"
    finally:
        await server.stop()


async def _until(probe, interval: float = 0.05):
    """The probe's first truthy answer: these are other processes' states, seen only by looking."""
    while not (value := probe()):
        await asyncio.sleep(interval)
    return value


def _workers(supervisor: int) -> set[int]:
    """uvicorn's worker processes (spawned children running `spawn_main`; not the resource tracker)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == supervisor and b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes():
                pids.add(int(entry))
        except (OSError, ValueError):
            continue  # the process ended while we looked
    return pids


def _tcp_sockets_of(pid: int) -> list[tuple[int, int, str]]:
    """(local port, remote port, state) of the IPv4 TCP sockets process `pid` holds."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return []
    sockets = []
    for row in rows:
        fields = row.split()
        if fields[9] in inodes:
            sockets.append((int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16), fields[3]))
    return sockets


def _listens_on(pid: int, port: int) -> bool:
    return (port, 0, "0A") in _tcp_sockets_of(pid)  # 0A: TCP_LISTEN


async def _call_held_by(pid: int, port: int) -> TwilioPeer:
    """A media stream the kernel gave to worker `pid` (SO_REUSEPORT spreads connections by hash)."""
    while True:
        peer = await TwilioPeer.open(f"ws://127.0.0.1:{port}/media-stream")
        if (port, peer.ws.local_address[1], "01") in _tcp_sockets_of(pid):  # 01: TCP_ESTABLISHED
            return peer
        await peer.ws.close()


def _journal(path):
    return orjson.loads(path.read_bytes()) if path.exists() else None


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
