"""A thousand short SIP calls from SIPp: afterwards no call, dialog, RTP port, session or pending
transaction is left (only completed transactions absorbing retransmissions until their timers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip.harness import sip_settings, start_bridge
from tests.sip.probe import PROBE, wait_until
from tests.sip.sipp import needs_sipp, run_sipp

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow, needs_sipp]

CALLS = 1000


async def test_a_thousand_calls_leave_nothing_behind(tmp_path: Path) -> None:
    async with start_bridge(sip_settings(SIP_INVITE_RATE="1000")) as bridge:
        run = await run_sipp(
            "uac_short", bridge.port, "+15550100", tmp_path, calls=CALLS, rate=100, extra=("-l", "50"), timeout_s=90
        )
        assert run.returncode == 0, run.explain()
        await wait_until(bridge.empty, timeout_s=30)
        sip = bridge.runtime.sip
        assert not sip.transactions.client  # every BYE we sent was answered or timed out
        assert bridge.media.free == bridge.media.capacity
        assert len(bridge.media.opened) == CALLS
        connected = sum(1 for events in PROBE.events.values() if ("connected", None) in events)
        assert connected == CALLS
