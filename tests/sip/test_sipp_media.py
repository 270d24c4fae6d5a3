"""SIP calls with RTP against SIPp: a pcap's audio and RFC 4733 digits reach the scenario, and the
port pool's limit answers 503. The bridge and its real RTP streams run in this process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip.harness import Bridge, sip_settings, start_bridge
from tests.sip.pcap import tone_ulaw, write_rtp_pcap
from tests.sip.probe import PROBE, wait_until
from tests.sip.recording_pool import RecordingPool
from tests.sip.sipp import SCENARIOS, needs_sipp, run_sipp
from tests.sip.test_sipp_signalling import refused_scenario

pytestmark = [pytest.mark.timeout(60), needs_sipp]


def audio_scenario(tmp_path: Path) -> tuple[Path, int]:
    pcap = tmp_path / "caller.pcap"
    packets = write_rtp_pcap(pcap, tone_ulaw(1.0))
    scenario = tmp_path / "uac_audio.xml"
    scenario.write_text((SCENARIOS / "uac_audio.xml").read_text().replace("CALLER_PCAP", str(pcap)))
    return scenario, packets


async def test_caller_rtp_and_rfc4733_digits_reach_the_scenario(bridge: Bridge, tmp_path: Path) -> None:
    scenario, packets = audio_scenario(tmp_path)
    run = await run_sipp(scenario, bridge.port, "+15550100", tmp_path)
    assert run.returncode == 0, run.explain()
    await PROBE.wait_for(lambda: "disconnected" in [name for name, _ in PROBE.any_call()])
    ((call_id, events),) = PROBE.events.items()
    tones = [value for name, value in events if name == "tone"]
    assert tones == ["1", "5"]  # RFC 4733 from the pcap (its three end packets: one digit), then SIP INFO
    # The pcap's second of tone, 160 bytes a packet, arrived as caller audio (the stream conceals
    # losses with silence and may add some before the first packet; a loaded machine may lose a few).
    assert PROBE.audio_bytes[call_id] >= packets * 160 * 0.8
    assert bridge.runtime.metrics.rtp_packets_foreign == 0
    await wait_until(bridge.empty)


async def test_no_rtp_port_left_answers_503(tmp_path: Path) -> None:
    async with start_bridge(sip_settings()) as bridge:
        bridge.media = RecordingPool(31000, 31001, "127.0.0.1", bridge.runtime.metrics)  # one pair
        bridge.runtime.sip.media = bridge.media
        blocker = bridge.media.open("someone else's call")
        assert blocker is not None
        run = await run_sipp(refused_scenario(tmp_path, 503), bridge.port, "+15550100", tmp_path)
        assert run.returncode == 0, run.explain()
        assert bridge.runtime.metrics.rtp_ports_exhausted == 1
        await blocker.aclose()
