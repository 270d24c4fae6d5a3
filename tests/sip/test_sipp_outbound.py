"""VoxEngine.callSIP against SIPp as the callee (UAS): the call rings, connects, audio flows both
ways (SIPp echoes the bridge's RTP back: what arrives was sent — `sendDigits`' RFC 4733 events
too, read back as one key press), and the callee's BYE ends it."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from telephony_bridge.server.scenario_sessions import start_scenario_session
from telephony_bridge.testing.processes import free_port
from tests.sip.harness import Bridge, sip_settings, start_bridge
from tests.sip.probe import PROBE, wait_until
from tests.sip.sipp import SCENARIOS, SIPP, needs_sipp

pytestmark = [pytest.mark.timeout(60), needs_sipp]


async def test_callsip_connects_exchanges_audio_and_ends_on_the_callees_bye(bridge: Bridge, tmp_path: Path) -> None:
    await place_call_to_sipp(bridge, tmp_path, "uas_answer")


async def test_callsip_answers_the_trunks_digest_challenge(tmp_path: Path) -> None:
    settings = sip_settings(SIP_OUTBOUND="sip:alice:wonderland@127.0.0.1")
    async with start_bridge(settings) as bridge:
        await place_call_to_sipp(bridge, tmp_path, "uas_challenge")


async def test_callsip_to_a_busy_callee_fails_486(bridge: Bridge, tmp_path: Path) -> None:
    output = await run_uas(bridge, tmp_path, "uas_busy", {}, until=("failed",))
    assert ("failed", 486) in PROBE.events["outbound"], (PROBE.events["outbound"], output)
    assert "connected" not in PROBE.names("outbound")
    await wait_until(bridge.empty)


async def test_hanging_up_a_ringing_callsip_cancels_it(bridge: Bridge, tmp_path: Path) -> None:
    await run_uas(bridge, tmp_path, "uas_cancelled", {"hangup_while_ringing": True}, until=("disconnected",))
    names = PROBE.names("outbound")
    assert names[:2] == ["ringing", "disconnected"] and "connected" not in names, names
    await wait_until(bridge.empty)


async def run_uas(
    bridge: Bridge, tmp_path: Path, uas_scenario: str, data: dict[str, object], until: tuple[str, ...]
) -> str:
    """SIPp as the callee of one callSIP; its exit status checked; its output returned."""
    assert SIPP is not None
    sip_port = free_port(socket.SOCK_DGRAM)
    uas = await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(SCENARIOS / f"{uas_scenario}.xml"), "-i", "127.0.0.1", "-p", str(sip_port), "-m", "1",
        "-nostdin", "-timeout", "20s", "-timeout_error", cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        data = {"uri": f"sip:+15550100@127.0.0.1:{sip_port}", **data}
        start_scenario_session(bridge.runtime, bridge.runtime.scenarios["outbound_sip"], json.dumps(data))
        await PROBE.wait_for(lambda: any(name in PROBE.names("outbound") for name in until), timeout_s=20)
        async with asyncio.timeout(25):
            output, _ = await uas.communicate()
    finally:
        if uas.returncode is None:
            uas.kill()
            await uas.wait()
    text = output.decode("utf-8", "replace")
    assert uas.returncode == 0, text[-3000:]
    return text


async def place_call_to_sipp(bridge: Bridge, tmp_path: Path, uas_scenario: str) -> None:
    assert SIPP is not None
    sip_port, media_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    uas = await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(SCENARIOS / f"{uas_scenario}.xml"), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(sip_port),
        "-mp", str(media_port), "-rtp_echo", "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error",
        "-s", "+15550100", cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        scenario = bridge.runtime.scenarios["outbound_sip"]
        start_scenario_session(bridge.runtime, scenario, json.dumps({"uri": f"sip:+15550100@127.0.0.1:{sip_port}"}))
        await PROBE.wait_for(lambda: "disconnected" in PROBE.names("outbound") or "failed" in PROBE.names("outbound"),
                             timeout_s=20)  # fmt: skip
        async with asyncio.timeout(25):
            output, _ = await uas.communicate()
    finally:
        if uas.returncode is None:
            uas.kill()
            await uas.wait()
    assert uas.returncode == 0, output.decode("utf-8", "replace")[-3000:]
    names = PROBE.names("outbound")
    assert names[:2] == ["ringing", "connected"] and names[-1] == "disconnected", names
    assert ("tone", "7") in PROBE.events["outbound"]  # sendDigits' RFC 4733 events, echoed: one digit
    # Half a second or more of the bridge's own RTP came back through SIPp's echo: sent and received.
    assert PROBE.audio_bytes["outbound"] >= 4000
    await wait_until(bridge.empty)
