"""The SIP listener's signalling against SIPp UAC scenarios (tests/sip/scenarios/*.xml).

The bridge runs in this process (the real app, its lifespan, the real SIP sockets on 127.0.0.1);
SIPp is the trunk; each call's media is the real RTP stream (server/sip_media.py) from a pool that
remembers what the signalling configured (tests/sip/recording_pool.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip.harness import Bridge, sip_settings, start_bridge
from tests.sip.probe import PROBE, wait_until
from tests.sip.sipp import SCENARIOS, needs_sipp, run_sipp

pytestmark = [pytest.mark.timeout(60), needs_sipp]


def refused_scenario(tmp_path: Path, status: int) -> Path:
    path = tmp_path / f"refused_{status}.xml"
    path.write_text((SCENARIOS / "uac_refused.xml").read_text().replace("EXPECTED", str(status)))
    return path


async def test_basic_call_routes_reports_and_ends_on_the_trunks_bye(bridge: Bridge, tmp_path: Path) -> None:
    run = await run_sipp("uac_basic", bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()
    await PROBE.wait_for(lambda: "disconnected" in [name for name, _ in PROBE.any_call()])
    ((call_id, events),) = PROBE.events.items()
    names = [name for name, _ in events]
    assert names[:2] == ["alerting", "connected"] and ("tone", "5") in events
    alerting = dict(events)["alerting"]
    assert alerting["callerid"] == "+15551234" and alerting["destination"] == "+15550100"
    assert alerting["customData"] == {"X-Account": "acme"}
    assert dict(events)["disconnected"] == "caller hung up"
    configured = bridge.media.configured[call_id]
    assert configured[0]["payload_type"] == 0 and configured[0]["event"] == 101
    await wait_until(bridge.empty)  # dialog, transactions, port: all released


async def test_bye_from_the_bridge_when_the_scenario_hangs_up(bridge: Bridge, tmp_path: Path) -> None:
    run = await run_sipp("uac_bye_from_bridge", bridge.port, "+15550101", tmp_path)
    assert run.returncode == 0, run.explain()
    await PROBE.wait_for(lambda: bool(PROBE.any_call()))
    assert PROBE.any_call() == [("disconnected", "hangup by scenario")]


async def test_cancel_before_answer_gets_487(bridge: Bridge, tmp_path: Path) -> None:
    run = await run_sipp("uac_cancel", bridge.port, "+15550103", tmp_path)
    assert run.returncode == 0, run.explain()
    await PROBE.wait_for(lambda: "disconnected" in [name for name, _ in PROBE.any_call()])
    await wait_until(bridge.empty)


@pytest.mark.parametrize(("number", "status"), [("+15550102", 603), ("+15559999", 404)])
async def test_refusals_by_scenario_and_by_routing(bridge: Bridge, tmp_path: Path, number: str, status: int) -> None:
    run = await run_sipp(refused_scenario(tmp_path, status), bridge.port, number, tmp_path)
    assert run.returncode == 0, run.explain()
    await wait_until(bridge.empty)


async def test_options_answered_with_allow(bridge: Bridge, tmp_path: Path) -> None:
    run = await run_sipp("uac_options", bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()


async def test_hold_and_resume_by_reinvite(bridge: Bridge, tmp_path: Path) -> None:
    run = await run_sipp("uac_hold", bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()
    (configured,) = bridge.media.configured.values()
    assert [config["direction"] for config in configured] == ["sendrecv", "recvonly", "sendrecv"]


async def test_malformed_invite_gets_400_and_the_next_call_works(bridge: Bridge, tmp_path: Path) -> None:
    rejected = bridge.runtime.metrics.frames_rejected
    run = await run_sipp("uac_malformed", bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()
    assert bridge.runtime.metrics.frames_rejected == rejected + 1
    run = await run_sipp("uac_basic", bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()


async def test_source_not_allowed_gets_403(tmp_path: Path) -> None:
    async with start_bridge(sip_settings(SIP_ALLOW="10.0.0.0/8")) as bridge:
        run = await run_sipp(refused_scenario(tmp_path, 403), bridge.port, "+15550100", tmp_path)
        assert run.returncode == 0, run.explain()
        assert bridge.runtime.metrics.streams_forbidden == 1
        assert not bridge.media.opened  # no port was taken


async def test_digest_challenge_then_the_call(tmp_path: Path) -> None:
    async with start_bridge(
        sip_settings(SIP_ALLOW="", SIP_USERS="alice:wonderland", SIP_DIGEST_ALGORITHMS="MD5")
    ) as bridge:
        run = await run_sipp("uac_digest", bridge.port, "+15550100", tmp_path)
        assert run.returncode == 0, run.explain()
        assert len(bridge.media.opened) == 1


async def test_digest_with_a_wrong_password_is_refused(tmp_path: Path) -> None:
    async with start_bridge(sip_settings(SIP_ALLOW="", SIP_USERS="alice:other", SIP_DIGEST_ALGORITHMS="MD5")) as bridge:
        run = await run_sipp("uac_digest", bridge.port, "+15550100", tmp_path)
        assert run.returncode != 0
        assert not bridge.media.opened and bridge.runtime.metrics.streams_forbidden == 1


@pytest.mark.parametrize(
    ("sipfrag", "outcome"), [("200 OK", "transfer_complete"), ("486 Busy Here", "transfer_failed")]
)
async def test_blind_transfer_by_refer_follows_the_notify(
    bridge: Bridge, tmp_path: Path, sipfrag: str, outcome: str
) -> None:
    scenario = tmp_path / "uac_transfer.xml"
    scenario.write_text((SCENARIOS / "uac_transfer.xml").read_text().replace("SIPFRAG_STATUS", sipfrag))
    run = await run_sipp(scenario, bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()
    await PROBE.wait_for(lambda: outcome in [name for name, _ in PROBE.any_call()])
    (events,) = PROBE.events.values()
    assert ("tone", "0") in events
    if outcome == "transfer_complete":
        assert (outcome, "+15550123") in events


async def test_without_allow_or_users_nothing_is_accepted_and_start_up_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with start_bridge(sip_settings(SIP_ALLOW="")) as bridge:
        assert any("refuses every INVITE" in record.getMessage() for record in caplog.records)
        run = await run_sipp(refused_scenario(tmp_path, 403), bridge.port, "+15550100", tmp_path)
        assert run.returncode == 0, run.explain()
        assert not bridge.media.opened
