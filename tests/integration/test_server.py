"""The phone side over real sockets: webhook, media stream, Call surface, hostile frames."""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from dataclasses import replace

import httpx
import pytest
from twilio.request_validator import RequestValidator

from telephony_bridge.server.stream_tokens import TOKEN_PARAMETER, StreamGrant
from telephony_bridge.testing.servers import running_bridge
from tests.integration.scripted_model import eventually
from tests.integration.twilio_peer import TwilioPeer, sid

pytestmark = pytest.mark.timeout(60)


def webhook_form(to: str = "+15550100", call_sid: str | None = None) -> dict[str, str]:
    return {"CallSid": call_sid or sid("CA"), "AccountSid": sid("AC"), "From": "+15550199", "To": to,
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}


def ws_url(runtime) -> str:
    return f"ws://127.0.0.1:{runtime.settings.port}/media-stream"


async def test_unsigned_webhook_from_loopback_answers_connect_stream(probe_settings):
    async with running_bridge(probe_settings) as runtime, httpx.AsyncClient() as http:
        form = webhook_form()
        response = await http.post(f"{runtime.settings.base_url}/incoming-call", data=form)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        stream = ET.fromstring(response.text).find("./Connect/Stream")
        assert stream.get("url") == f"ws://127.0.0.1:{runtime.settings.port}/media-stream"
        params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        assert list(params) == [TOKEN_PARAMETER]  # the scenario and the numbers travel signed, in the token
        grant = runtime.stream_tokens.redeem(params[TOKEN_PARAMETER], form["CallSid"])
        assert grant == StreamGrant(call_id=form["CallSid"], scenario="default", caller="+15550199", number="+15550100")
        health = await http.get(f"{runtime.settings.base_url}/healthz")
        assert health.json() == {"status": "ok", "active_calls": 0}


async def test_signed_webhook_rejects_missing_and_wrong_signatures(signed_settings):
    async with running_bridge(signed_settings) as runtime, httpx.AsyncClient() as http:
        url = f"{runtime.settings.base_url}/incoming-call"
        form = webhook_form()
        good = RequestValidator(signed_settings.twilio_auth_token).compute_signature(url, form)
        assert (await http.post(url, data=form)).status_code == 403
        assert (await http.post(url, data=form, headers={"X-Twilio-Signature": "AAAA" + good[4:]})).status_code == 403
        tampered = {**form, "To": "+19995550000"}
        assert (await http.post(url, data=tampered, headers={"X-Twilio-Signature": good})).status_code == 403
        ok = await http.post(url, data=form, headers={"X-Twilio-Signature": good})
        assert ok.status_code == 200 and "<Connect>" in ok.text
        assert runtime.metrics.webhooks_forbidden == 3


async def test_webhook_without_required_fields_is_400(probe_settings):
    async with running_bridge(probe_settings) as runtime, httpx.AsyncClient() as http:
        response = await http.post(f"{runtime.settings.base_url}/incoming-call", data={"From": "+1"})
        assert response.status_code == 400


async def test_media_stream_upgrade_needs_a_valid_signature(signed_settings, probe):
    async with running_bridge(signed_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        code, reason = await peer.wait_closed()
        assert code == 1008 and "Signature" in reason
        signature = RequestValidator(signed_settings.twilio_auth_token).compute_signature(ws_url(runtime), {})
        peer = await TwilioPeer.open(ws_url(runtime), {"X-Twilio-Signature": signature})
        await peer.start({"From": "+15550199", "To": "+15550100"}, auth_token=signed_settings.twilio_auth_token)
        await probe.wait_for(lambda: "connected" in probe.kinds(peer.call_sid))
        await peer.stop()
        await peer.wait_closed()
        assert runtime.metrics.streams_forbidden == 1


async def test_full_stream_start_media_dtmf_mark_stop(probe_settings, probe):
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({"scenario": "default", "From": "+15550199", "To": "+15550100", "ticket": "42"})
        for _ in range(25):
            await peer.media()
        await peer.dtmf("5")
        await peer.mark("not-ours")
        await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] == 25 * 160 and "tone" in probe.kinds(peer.call_sid))
        await peer.stop()
        code, _ = await peer.wait_closed()
        await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
        events = probe.events[peer.call_sid]
        kinds = [kind for kind, _ in events]
        assert kinds == ["alerting", "connected", "tone", "disconnected", "terminated"]
        assert events[0][1] == {"callerid": "+15550199", "destination": "+15550100", "customData": {"ticket": "42"}}
        assert events[2][1] == "5"
        assert code == 1000
        assert runtime.sessions == set()


async def test_silence_gaps_in_caller_audio_are_filled(probe_settings, probe):
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({"scenario": "default"})
        await peer.media()
        peer.timestamp_ms += 1000  # the carrier sent nothing for a second
        await peer.media()
        await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] >= 2 * 160 + 8000)
        assert probe.media_bytes[peer.call_sid] == 2 * 160 + 8000
        await peer.stop()
        await peer.wait_closed()


async def test_malformed_frames_are_logged_with_call_id_counted_and_the_call_goes_on(probe_settings, probe, caplog):
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({"scenario": "default"})
        await peer.media()
        with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
            await peer.send("not json {")
            await peer.send({"event": "media", "streamSid": peer.stream_sid, "media": {"payload": "%%%"}})
            await peer.send({"event": "launch"})
            await peer.send(b"\x00\x01binary")
            await peer.send("x" * 70_000)
            await peer.media()
            await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] == 2 * 160)
        assert runtime.metrics.frames_rejected == 5
        assert caplog.text.count(f"call {peer.call_sid}: bad carrier frame") == 5
        assert "disconnected" not in probe.kinds(peer.call_sid)
        await peer.stop()
        await peer.wait_closed()


async def test_scenario_handler_error_does_not_end_the_call(probe_settings, probe, caplog):
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({"scenario": "default"})
        with caplog.at_level(logging.ERROR):
            await peer.dtmf("*")
            await peer.dtmf("1")
            await probe.wait_for(lambda: probe.kinds(peer.call_sid).count("tone") == 2)
        assert "scenario bug on purpose" in caplog.text and peer.call_sid in caplog.text
        await peer.stop()
        await peer.wait_closed()


async def test_ten_parallel_calls_do_not_disturb_each_other(probe_settings, probe):
    async with running_bridge(probe_settings) as runtime:
        peers = [await TwilioPeer.open(ws_url(runtime)) for _ in range(10)]

        async def run_call(index: int, peer: TwilioPeer) -> None:
            await peer.start({"scenario": "default", "To": f"+1555000{index:04d}"})
            for frame in range(10 + index):
                await peer.media()
                if frame == 3:
                    await peer.send("garbage")  # every call has a bad frame; none may notice another's
            await peer.dtmf(str(index % 9))
            await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] == (10 + index) * 160 and "tone" in probe.kinds(peer.call_sid))
            await peer.stop()
            await peer.wait_closed()

        await asyncio.gather(*(run_call(i, p) for i, p in enumerate(peers)))
        for index, peer in enumerate(peers):
            events = probe.events[peer.call_sid]
            assert [d for k, d in events if k == "tone"] == [str(index % 9)]
            assert events[0][1]["destination"] == f"+1555000{index:04d}"
        assert runtime.metrics.frames_rejected == 10
        await probe.wait_for(lambda: not runtime.sessions)


async def test_memory_is_released_once_the_bridge_falls_idle(probe_settings, probe):
    settings = replace(probe_settings, idle_release_s=0.05)
    async with running_bridge(settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({"scenario": "default"})
        for _ in range(5):
            await peer.media()
        await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] == 5 * 160)
        await asyncio.sleep(0.3)  # six idle periods: a release now would be one during the call
        assert runtime.metrics.idle_memory_releases == 0  # never while a call is in progress
        await peer.stop()
        await peer.wait_closed()
        await eventually(lambda: runtime.metrics.idle_memory_releases == 1)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{runtime.settings.port}/metrics")).text
        assert "telephony_bridge_idle_memory_releases_total 1.0" in text


async def test_the_server_freezes_its_startup_heap_only_when_told(probe_settings):
    import gc

    assert gc.get_freeze_count() == 0
    try:
        async with running_bridge(probe_settings):
            assert gc.get_freeze_count() == 0  # Settings() in code: the test process is left alone
        async with running_bridge(replace(probe_settings, gc_freeze=True)):
            assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


async def test_hangup_closes_the_stream_and_ends_the_call_through_rest(signed_settings, probe, twilio_api):
    async with running_bridge(signed_settings) as runtime:
        signature = RequestValidator(signed_settings.twilio_auth_token).compute_signature(ws_url(runtime), {})
        peer = await TwilioPeer.open(ws_url(runtime), {"X-Twilio-Signature": signature})
        await peer.start({}, auth_token=signed_settings.twilio_auth_token)
        await peer.dtmf("9")
        code, _ = await peer.wait_closed()
        assert code == 1000
        await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
        await probe.wait_for(lambda: bool(twilio_api.requests), timeout=5)
        request = twilio_api.requests[0]
        assert request.path == f"/2010-04-01/Accounts/{signed_settings.twilio_account_sid}/Calls/{peer.call_sid}.json"
        assert request.form == {"Status": "completed"}
        assert signed_settings.twilio_auth_token not in str(probe.events)


async def test_transfer_posts_dial_twiml(signed_settings, probe, twilio_api):
    async with running_bridge(signed_settings) as runtime:
        signature = RequestValidator(signed_settings.twilio_auth_token).compute_signature(ws_url(runtime), {})
        peer = await TwilioPeer.open(ws_url(runtime), {"X-Twilio-Signature": signature})
        await peer.start({}, auth_token=signed_settings.twilio_auth_token)
        await peer.dtmf("0")
        await probe.wait_for(lambda: "transfer_complete" in probe.kinds(peer.call_sid))
        twiml = ET.fromstring(twilio_api.requests[0].form["Twiml"])
        assert twiml.find("./Dial/Number").text == "+15550123456"
        await peer.stop()
        await peer.wait_closed()


async def test_transfer_without_credentials_fails_cleanly(probe_settings, probe):
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({"scenario": "default"})
        await peer.dtmf("0")
        await probe.wait_for(lambda: "transfer_failed" in probe.kinds(peer.call_sid))
        await peer.stop()
        await peer.wait_closed()


async def test_the_twilio_prefix_answers_with_its_own_stream_url_and_carries_the_call(probe_settings, probe):
    """/twilio/incoming-call beside /incoming-call (the carrier seam's per-carrier paths)."""
    async with running_bridge(probe_settings) as runtime, httpx.AsyncClient() as http:
        form = webhook_form()
        response = await http.post(f"{runtime.settings.base_url}/twilio/incoming-call", data=form)
        stream = ET.fromstring(response.text).find("./Connect/Stream")
        assert stream.get("url") == f"ws://127.0.0.1:{runtime.settings.port}/twilio/media-stream"
        token = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}[TOKEN_PARAMETER]
        peer = await TwilioPeer.open(stream.get("url"))
        peer.call_sid = form["CallSid"]
        await peer.start({TOKEN_PARAMETER: token})
        await probe.wait_for(lambda: "connected" in probe.kinds(peer.call_sid))
        await peer.stop()
        assert (await peer.wait_closed())[0] == 1000
