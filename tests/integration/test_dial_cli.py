"""`telephony-bridge dial` starts a scenario through the start API and prints its session id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from telephony_bridge import cli

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """cli.main configures the process's logging, as an entry point does: here it runs inside
    pytest's process, whose logging the tests after it need as it was (a handler on a closed
    capture stream made every later log line a 'Logging error', and the leak test's RSS grew)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quieted = {name: logging.getLogger(name).level for name in ("websockets.server", "websockets.client", "uvicorn.error")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, previous in quieted.items():
        logging.getLogger(name).setLevel(previous)


async def test_dial_prints_the_session_id(call_flow, capsys):
    argv = ["dial", "--scenario", "outbound_call", "--url", call_flow.url, "--api-key", call_flow.api_key,
            "--custom-data", '{"phone": "+15550123", "callerId": "+15550999", "name": "Ada", "appointment": "now"}']
    assert await asyncio.to_thread(cli.main, argv) == 0
    session_id = capsys.readouterr().out.strip()
    assert len(session_id) == 24
    await call_flow.wait_for_sessions()


async def test_dial_with_a_wrong_key_fails(call_flow, capsys):
    argv = ["dial", "--scenario", "outbound_call", "--url", call_flow.url, "--api-key", "wrong"]
    assert await asyncio.to_thread(cli.main, argv) == 1
    assert "HTTP 401" in capsys.readouterr().err
