"""`telephony-bridge dial` starts a scenario through the start API and prints its session id."""

from __future__ import annotations

import asyncio

import pytest

from telephony_bridge import cli

pytestmark = pytest.mark.timeout(60)


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
