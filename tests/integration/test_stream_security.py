"""Live holes found by attacking the bridge (issue 13, pitfalls 18, 19, 25), each shown over real
sockets: a replayed stream, a stream that names its own scenario, a CallSid that is a path, too
many calls, and clients that trickle their request."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import httpx
import pytest
from twilio.request_validator import RequestValidator

from telephony_bridge.server.stream_tokens import TOKEN_PARAMETER
from telephony_bridge.testing.servers import running_bridge
from tests.integration.hostile_peers import Bystander, form_request, raw_http, ws_url
from tests.integration.twilio_peer import TwilioPeer, sid

pytestmark = pytest.mark.timeout(60)


async def test_a_captured_stream_token_and_signature_open_no_second_stream(signed_settings, probe, caplog):
    """Pitfall 18: the upgrade signature is over a constant URL, so it is no proof of a call. Five
    parallel replays of one captured start (signature, token, CallSid) get nothing: no scenario
    runs and no model session opens for any of them."""
    async with running_bridge(signed_settings) as runtime:
        signature = RequestValidator(signed_settings.twilio_auth_token).compute_signature(ws_url(runtime), {})
        headers = {"X-Twilio-Signature": signature}
        genuine = await TwilioPeer.open(ws_url(runtime), headers)
        captured = await genuine.answer(auth_token=signed_settings.twilio_auth_token)
        await genuine.start(captured)
        await probe.wait_for(lambda: "connected" in probe.kinds(genuine.call_sid))

        async def replay() -> tuple[int | None, str | None]:
            attacker = await TwilioPeer.open(ws_url(runtime), headers)
            attacker.call_sid, attacker.stream_sid = genuine.call_sid, sid("MZ")
            await attacker.start({**captured, "scenario": "admin"})
            return await attacker.wait_closed()

        with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
            closes = await asyncio.gather(*(replay() for _ in range(5)))
        assert closes == [(1008, "stream refused: stream token already used")] * 5
        assert runtime.metrics.streams_unbound == 5
        assert runtime.metrics.calls_started == 1
        assert probe.kinds(genuine.call_sid).count("alerting") == 1
        assert caplog.text.count(f"start for call {genuine.call_sid} refused: stream token already used") == 5
        await genuine.stop()
        assert (await genuine.wait_closed())[0] == 1000


async def test_a_stream_without_a_token_runs_nothing(probe_settings, probe):
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        await peer.start({TOKEN_PARAMETER: "", "scenario": "default"})
        assert await peer.wait_closed() == (1008, "stream refused: no stream token: the stream was not opened from the bridge's answer")
        assert probe.kinds(peer.call_sid) == [] and runtime.metrics.calls_started == 0


async def test_a_token_opens_only_the_call_it_was_issued_for(probe_settings, probe):
    async with running_bridge(probe_settings) as runtime:
        first = await TwilioPeer.open(ws_url(runtime))
        token_of_first = await first.answer()
        second = await TwilioPeer.open(ws_url(runtime))  # another CallSid
        await second.start(token_of_first)
        assert await second.wait_closed() == (1008, "stream refused: stream token issued for another call")
        await first.start(token_of_first)  # the token is still good for its own call
        await probe.wait_for(lambda: "connected" in probe.kinds(first.call_sid))
        await first.stop()
        await first.wait_closed()


async def test_the_scenario_and_numbers_come_from_the_answer_not_the_stream(probe_settings, probe):
    """A stream naming another scenario and other numbers still runs what the webhook routed
    (`default`), for the numbers Twilio posted; its other parameters are the custom data."""
    async with running_bridge(probe_settings) as runtime:
        peer = await TwilioPeer.open(ws_url(runtime))
        answered = await peer.answer(to="+15550100", caller="+15550199")
        await peer.start({**answered, "scenario": "evil", "From": "+19990000000", "To": "+19990000001", "ticket": "7"})
        await probe.wait_for(lambda: "connected" in probe.kinds(peer.call_sid))
        alerting = probe.events[peer.call_sid][0][1]
        assert alerting == {"callerid": "+15550199", "destination": "+15550100", "customData": {"ticket": "7"}}
        await peer.stop()
        await peer.wait_closed()


@pytest.mark.parametrize("call_sid", ["../escaped", "{absolute}", "CA" + "0" * 31 + "/", "CA../../x" + "0" * 23])
async def test_a_call_sid_that_is_a_path_writes_nothing_anywhere(probe_settings, probe, tmp_path, call_sid):
    """Pitfall 19: the journal's file was named after the unchecked CallSid."""
    call_sid = call_sid.format(absolute=tmp_path / "absolute")
    calls_dir = tmp_path / "calls"
    settings = replace(probe_settings, calls_dir=calls_dir)
    async with running_bridge(settings) as runtime, httpx.AsyncClient(timeout=5) as http:
        form = {"CallSid": call_sid, "AccountSid": sid("AC"), "From": "+15550199", "To": "+15550100"}
        response = await http.post(f"{runtime.settings.base_url}/incoming-call", data=form)
        assert response.status_code == 400 and "CA + 32 hex digits" in response.text
        peer = await TwilioPeer.open(ws_url(runtime))
        peer.call_sid = call_sid
        await peer.start({TOKEN_PARAMETER: "x"})
        await peer.stop()
        assert (await peer.wait_closed())[0] == 1000  # the start was refused as a bad frame; then a hang-up
        assert runtime.metrics.frames_rejected == 1 and runtime.metrics.calls_started == 0
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


async def answered_peer(runtime, http: httpx.AsyncClient) -> TwilioPeer:
    """As Twilio does it: the webhook first, then the stream."""
    call_sid = sid("CA")
    form = {"CallSid": call_sid, "AccountSid": sid("AC"), "From": "+15550199", "To": "+15550100"}
    answer = await http.post(f"{runtime.settings.base_url}/incoming-call", data=form)
    assert answer.status_code == 200, answer.text
    token = answer.text.split(f'name="{TOKEN_PARAMETER}" value="')[1].split('"')[0]
    peer = await TwilioPeer.open(ws_url(runtime))
    peer.call_sid = call_sid
    await peer.start({TOKEN_PARAMETER: token})
    return peer


async def test_calls_beyond_max_calls_are_refused_with_a_reason_and_counted(probe_settings, probe):
    settings = replace(probe_settings, max_calls=2)
    async with running_bridge(settings) as runtime, httpx.AsyncClient(timeout=5) as http:
        peers = [await answered_peer(runtime, http) for _ in range(2)]
        await probe.wait_for(lambda: all("connected" in probe.kinds(peer.call_sid) for peer in peers))
        form = {"CallSid": sid("CA"), "AccountSid": sid("AC"), "From": "+15550199", "To": "+15550100"}
        busy = await http.post(f"{runtime.settings.base_url}/incoming-call", data=form)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        third = await TwilioPeer.open(ws_url(runtime))
        assert await third.wait_closed() == (1013, "bridge at capacity (2 calls); try again later")
        assert runtime.metrics.calls_over_capacity == 2
        await peers[0].stop()
        await peers[0].wait_closed()
        await probe.wait_for(lambda: len(runtime.sessions) == 1)
        fourth = await answered_peer(runtime, http)  # room again
        await probe.wait_for(lambda: "connected" in probe.kinds(fourth.call_sid))
        for peer in (peers[1], fourth):
            await peer.stop()
            await peer.wait_closed()


async def test_slow_clients_are_cut_off_while_a_call_goes_on(probe_settings, probe):
    """Pitfall 25: 40 connections trickling a request head, and one trickling a webhook body,
    are all closed at the deadlines; the call in progress does not notice."""
    settings = replace(probe_settings, http_header_timeout_s=0.5, http_body_timeout_s=0.5)
    async with running_bridge(settings) as runtime:
        port = runtime.settings.port
        async with Bystander(ws_url(runtime), probe) as bystander:
            slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
            for _, writer in slow:
                writer.write(b"POST /incoming-call HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
            body_reader, body_writer = await asyncio.open_connection("127.0.0.1", port)
            head = form_request("/incoming-call", b"x" * 100).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            body_writer.write(head + b"CallSid=CA")  # 10 of the 100 bytes it announced
            closed = await asyncio.wait_for(asyncio.gather(*(reader.read() for reader, _ in slow)), 10)
            assert closed == [b""] * 40  # closed by the server, nothing sent
            answer = await asyncio.wait_for(body_reader.read(), 10)
            assert answer.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in answer
            for _, writer in [*slow, (None, body_writer)]:
                writer.close()
            await bystander.finish()
        # A prompt client is unaffected by the deadline.
        status, _ = await raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status == 200
