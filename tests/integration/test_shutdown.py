"""Graceful shutdown of the real server process: SIGTERM drains calls instead of cutting them."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest

from telephony_bridge.testing.processes import ServerProcess, http_status
from tests.integration.conftest import SCENARIOS
from tests.integration.twilio_peer import TwilioPeer

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]


def server_env(tmp_path, drain_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_URL")}
    env.update(SCENARIOS_DIR=str(SCENARIOS), CALLS_DIR=str(tmp_path / "calls"), DRAIN_TIMEOUT_S=str(drain_s),
               REALTIME_URL="ws://127.0.0.1:9/unused", PYTHONPATH=os.getcwd())
    return env


async def status(server: ServerProcess, path: str, data: bytes | None = None) -> int:
    return await asyncio.to_thread(http_status, server.base_url + path, 2.0, data)


async def test_sigterm_lets_calls_finish_and_refuses_new_ones(tmp_path):
    server = ServerProcess(tmp_path / "server.log", server_env(tmp_path, drain_s=30))
    try:
        await server.start()
        peer = await TwilioPeer.open(f"ws://127.0.0.1:{server.port}/media-stream")
        await peer.start({"scenario": "default"})
        for _ in range(5):
            await peer.media()
        server.terminate()
        await asyncio.wait_for(_until(lambda: status(server, "/readyz"), 503), 10)
        assert await status(server, "/healthz") == 200  # alive, just not taking calls
        webhook = b"CallSid=CA1&To=%2B15550100&From=%2B15550199"
        assert await status(server, "/incoming-call", webhook) == 503  # the carrier fails over
        for _ in range(5):
            await peer.media()  # the call in progress goes on
        await peer.dtmf("3")
        await peer.stop()
        code, _ = await peer.wait_closed()
        assert code == 1000
        assert await server.wait(15) == 0  # exits by itself once the last call ended, long before 30 s
        journal = orjson.loads((tmp_path / "calls" / f"{peer.call_sid}.json").read_bytes())
        assert journal[-1]["event"] == "call.ended" and journal[-1]["reason"] == "caller hung up"
        assert "draining; 1 call(s) in progress" in server.log()
    finally:
        await server.stop()


async def test_drain_timeout_ends_remaining_calls_cleanly(tmp_path):
    server = ServerProcess(tmp_path / "server.log", server_env(tmp_path, drain_s=1))
    try:
        await server.start()
        peer = await TwilioPeer.open(f"ws://127.0.0.1:{server.port}/media-stream")
        await peer.start({"scenario": "default"})
        await peer.media()
        server.terminate()
        code, reason = await peer.wait_closed(timeout=15)
        assert (code, reason) == (1001, "server shutting down")
        assert await server.wait(15) == 0
        journal = orjson.loads((tmp_path / "calls" / f"{peer.call_sid}.json").read_bytes())
        assert journal[-1]["event"] == "call.ended" and journal[-1]["reason"] == "server shutting down"
        assert "Traceback" not in server.log()
    finally:
        await server.stop()


async def _until(probe, expected, interval: float = 0.05):
    while await probe() != expected:
        await asyncio.sleep(interval)
