"""`serve --workers 2`: one port, two processes; calls spread over both and nothing crosses."""

from __future__ import annotations

import asyncio
import os
import re

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
        async def metrics_summed() -> str:  # each worker folds its counters once a second
            while True:
                text = await asyncio.to_thread(_get, f"{server.base_url}/metrics")
                if re.search(r"^telephony_bridge_calls_started_total 20\.0$", text, re.M):
                    return text
                await asyncio.sleep(0.2)

        metrics = await asyncio.wait_for(metrics_summed(), 10)  # the sum over both workers' files
        assert re.search(r'^telephony_bridge_carrier_frames_total\{direction="in"\} 200\.0$', metrics, re.M)
    finally:
        await server.stop()
    assert server.process.returncode == 0


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
