"""`telephony-bridge serve` as a real process says where it listens, with the real port for --port 0,
and refuses a port in use with a clear message."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import urllib.request

import pytest

from tests.integration.conftest import SCENARIOS

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

LISTENING = re.compile(
    r"telephony_bridge listening on http://127\.0\.0\.1:(\d+) — Twilio webhook: POST (\S+), media stream: (\S+)"
)


def serve_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_URL")}
    env.update(SCENARIOS_DIR=str(SCENARIOS), REALTIME_URL="ws://127.0.0.1:9/unused", PYTHONPATH=os.getcwd())
    return env


async def start_serve(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telephony_bridge.cli", "serve", *args, env=serve_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def line_matching(process: asyncio.subprocess.Process, pattern: re.Pattern[str], seen: list[str]) -> re.Match[str]:
    assert process.stdout is not None
    while raw := await process.stdout.readline():
        seen.append(raw.decode())
        if match := pattern.search(seen[-1]):
            return match
    raise AssertionError("serve exited without the line:\n" + "".join(seen))


def post_webhook(url: str) -> str:
    form = b"CallSid=CA" + b"0123" * 8 + b"&To=%2B15550100&From=%2B15550199"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, data=form, method="POST"), timeout=5) as response:
        return response.read().decode()


async def test_port_0_is_announced_with_the_real_port_and_the_twiml_uses_it():
    process = await start_serve("--port", "0")
    seen: list[str] = []
    try:
        match = await asyncio.wait_for(line_matching(process, LISTENING, seen), 30)
        port = int(match[1])
        assert port != 0
        assert match[2] == f"http://127.0.0.1:{port}/incoming-call"
        assert match[3] == f"ws://127.0.0.1:{port}/media-stream"
        # The address printed is the one that answers, and the TwiML sends the stream there too.
        twiml = await asyncio.to_thread(post_webhook, match[2])
        assert f'url="ws://127.0.0.1:{port}/media-stream"' in twiml
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
    assert "PUBLIC_URL is not set" in "".join(seen) + (await process.stdout.read()).decode()


async def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await start_serve("--port", str(port))
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in output.decode()
