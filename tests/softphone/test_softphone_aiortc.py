"""The softphone carrier end to end with aiortc as the browser (no chromium): the page's signalling
and data channel messages, the media over a real peer connection on 127.0.0.1, the real bridge and
the local engine. The browser itself is tests/softphone/test_softphone_browser.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.testing.kit import CallFlow
from tests.softphone.aiortc_phone import LOOPBACK, AiortcPhone

pytestmark = pytest.mark.timeout(120)

SCENARIOS = Path(__file__).with_name("scenarios")
GREETING = (
    "Hello! Thanks for calling Acme. This greeting is long on purpose, so that the caller has "
    "plenty of time to interrupt it before it ends, which is what this test does."
)


def ended_journals(flow: CallFlow) -> asyncio.Queue[list[dict[str, Any]]]:
    ended: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    flow.runtime.on_session_end.append(lambda session: ended.put_nowait(list(session.journal.entries)))
    return ended


async def test_a_call_hears_the_agent_barges_in_presses_a_key_and_is_hung_up_by_the_scenario():
    async with CallFlow(SCENARIOS, secret_values=LOOPBACK) as flow:
        flow.script([GREETING, "Sure."])
        ended = ended_journals(flow)
        phone = AiortcPhone(flow.url, flow.api_key)
        try:
            response = await phone.call("+15550100")
            assert response.status_code == 200, response.text
            await phone.connected()
            transport = flow.runtime.softphone.transports[phone.call_id]
            async with asyncio.timeout(30):
                await phone.audible.wait()  # the agent's greeting crossed the peer connection

            # The caller speaks: the engine's VAD hears it over the uplink, and the scenario barges in.
            phone.microphone.write(await synthesize_async("Wait, I have a question.", 24000))
            [engine] = flow.engine.model_connections

            def truncated() -> list[dict[str, Any]]:
                return [e for e in engine.received if e.get("type") == "conversation.item.truncate"]

            async with asyncio.timeout(30):
                while not truncated():  # the engine's record has no signal per message: look each frame
                    await asyncio.sleep(0.02)
            cut = truncated()[0]["audio_end_ms"]
            assert 0 < cut <= len(await synthesize_async(GREETING, 24000)) / 48
            # No clear in WebRTC: the browser plays all it was sent, so that is where the answer
            # is cut — everything the Playout wrote, which the track sends out within a frame or
            # two (before the caller's turn ends and the next answer plays).
            async with asyncio.timeout(1.5):
                while transport.sent_ms < cut - 1:
                    await asyncio.sleep(0.01)
            assert transport.sent_ms <= cut + 1, (cut, transport.sent_ms)

            # The page's playout reports: the transport compares them with what it sent.
            phone.send({"type": "playout", "played_ms": cut - 30.0, "delay_ms": 45.0})
            phone.send({"type": "playout", "played_ms": "lots"})  # refused, counted, the call goes on
            phone.send({"type": "dtmf", "digit": "7"})
            phone.send({"type": "dtmf", "digit": "5"})  # the scenario hangs up on 5
            async with asyncio.timeout(15):
                await phone.hung_up.wait()
            journal = await asyncio.wait_for(ended.get(), 15)
        finally:
            await phone.close()
    assert transport.page_played_ms == cut - 30.0 and transport.page_delay_ms == 45.0
    assert transport.bad_reports == transport.control_dropped == 1
    assert flow.runtime.metrics.frames_rejected == 1
    started = next(e for e in journal if e["event"] == "call.started")
    assert (started["scenario"], started["number"], started["caller"]) == ("default", "+15550100", "softphone")
    assert [e["digit"] for e in journal if e["event"] == "caller.dtmf"] == ["7", "5"]
    assert next(e for e in journal if e["event"] == "call.ended")["reason"] == "hangup by scenario"
    assert phone.messages[-1] == {"type": "hangup", "reason": "hangup by scenario"}
    assert flow.runtime.metrics.frames_in > 0 and not flow.runtime.sessions


async def test_the_page_hanging_up_ends_the_call_on_the_server():
    async with CallFlow(SCENARIOS, secret_values=LOOPBACK) as flow:
        flow.script([GREETING])
        ended = ended_journals(flow)
        phone = AiortcPhone(flow.url, flow.api_key)
        try:
            assert (await phone.call("+15550100")).status_code == 200
            await phone.connected()
            phone.send({"type": "not-a-message"})  # refused and counted; the call goes on
            phone.send({"type": "hangup"})
            journal = await asyncio.wait_for(ended.get(), 15)
        finally:
            await phone.close()
    assert next(e for e in journal if e["event"] == "call.ended")["reason"] == "caller hung up"
    assert flow.runtime.metrics.frames_rejected == 1
    assert not flow.runtime.softphone.transports


async def test_offers_are_admitted_like_any_carriers_calls(tmp_path: Path):
    (tmp_path / "default.py").write_text((SCENARIOS / "default.py").read_text())
    (tmp_path / "routes.toml").write_text("[[route]]\npattern = '\\+15550100'\nscenario = \"default\"\n")
    async with CallFlow(tmp_path, secret_values=LOOPBACK) as flow:
        phones = [AiortcPhone(flow.url, token) for token in (None, *[flow.api_key] * 3)]
        try:
            assert (await phones[0].call("+15550100")).status_code == 401  # the console's access rule
            async with httpx.AsyncClient(timeout=10.0) as http:  # a cross-site "simple" POST is refused
                form = await http.post(f"{flow.url}/softphone/offer", headers=phones[1].headers, content=b"{}")
            assert form.status_code == 415
            for number, scenario in (("+1 555", ""), ("", "nope"), ("<b>", "default")):
                refused = await phones[1].call(number, scenario)
                assert refused.status_code == (404 if scenario == "nope" else 400), (number, scenario)
            unrouted = await phones[1].call("+15550199")
            assert (unrouted.status_code, flow.runtime.metrics.calls_rejected) == (404, 1)
            flow.runtime.settings = replace(flow.runtime.settings, max_calls=1)
            in_progress = object()  # a call in progress (of any carrier) fills MAX_CALLS
            flow.runtime.sessions.add(in_progress)
            assert (await phones[2].call("+15550100")).status_code == 503
            assert flow.runtime.metrics.calls_over_capacity == 1
            flow.runtime.sessions.discard(in_progress)
            flow.runtime.draining = True
            assert (await phones[3].call("+15550100")).status_code == 503
        finally:
            for phone in phones:
                await phone.close()
        assert not flow.runtime.sessions and not flow.runtime.softphone.transports


async def test_a_peer_without_opus_talks_pcmu():
    async with CallFlow(SCENARIOS, secret_values=LOOPBACK) as flow:
        flow.script([GREETING])
        ended = ended_journals(flow)
        phone = AiortcPhone(flow.url, flow.api_key, codec="audio/PCMU")
        try:
            response = await phone.call("+15550100")
            assert response.status_code == 200, response.text
            rtpmaps = [line for line in response.json()["sdp"].splitlines() if line.startswith("a=rtpmap:")]
            assert rtpmaps == ["a=rtpmap:0 PCMU/8000"]
            await phone.connected()
            async with asyncio.timeout(30):
                await phone.audible.wait()  # 24 kHz to the wire's 8 kHz μ-law, and back
            phone.microphone.write(await synthesize_async("Wait, I have a question.", 24000))
            [engine] = flow.engine.model_connections
            async with asyncio.timeout(30):  # 8 kHz μ-law to the model's 24 kHz: the engine hears it
                while not any(e.get("type") == "conversation.item.truncate" for e in engine.received):
                    await asyncio.sleep(0.02)
            phone.send({"type": "hangup"})
            journal = await asyncio.wait_for(ended.get(), 15)
        finally:
            await phone.close()
    assert next(e for e in journal if e["event"] == "call.ended")["reason"] == "caller hung up"


async def test_a_page_that_goes_away_ends_the_call():
    async with CallFlow(SCENARIOS, secret_values=LOOPBACK) as flow:
        flow.script([GREETING])
        ended = ended_journals(flow)
        phone = AiortcPhone(flow.url, flow.api_key)
        try:
            assert (await phone.call("+15550100")).status_code == 200
            await phone.connected()
        finally:
            await phone.close()  # no hang-up message: the tab was closed
        journal = await asyncio.wait_for(ended.get(), 15)
    assert next(e for e in journal if e["event"] == "call.ended")["reason"] == "caller hung up"
