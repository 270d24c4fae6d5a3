"""Fault injection between bridge and engine: every call survives every fault."""

import pytest

from tests.integration.faults import run_all, table

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


async def test_calls_survive_delay_drop_half_open_and_engine_outage():
    rows = {row.fault: row for row in await run_all(calls=2)}
    print(table(list(rows.values())))
    for row in rows.values():
        assert row.calls_kept == row.calls, row  # no fault ends a call
        assert row.answered_after_fault == row.calls, row  # the agent still answers after it
    assert rows["none"].recovery_ms == [] and rows["delay 80±40 ms"].recovery_ms == []
    for fault in ("connection dropped", "half-open socket", "engine down 2 s"):
        assert len(rows[fault].recovery_ms) == 2, rows[fault]  # one reconnect per call
    assert max(rows["connection dropped"].recovery_ms) < 1000
    assert max(rows["half-open socket"].recovery_ms) < 1000  # downtime counts from detection (pings)
    assert min(rows["engine down 2 s"].recovery_ms) > 1500  # it cannot come back before the engine does
