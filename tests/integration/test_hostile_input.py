"""Hostile input on every entry point, over real sockets, with other calls running alongside.

Each abuse gets a clear error (an HTTP status with a reason, or a WebSocket close code with a reason,
and a log line naming the call) and touches nothing else: a `Bystander` call keeps sending media
during the abuse, every frame of it must reach its scenario, and its DTMF, stop and events complete.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import logging
import os
import socket
import struct
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed

from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.integration.hostile_peers import (
    FRAME,
    Bystander,
    ModelServer,
    form_request,
    open_fds,
    open_peer,
    raw_http,
    rss_bytes,
    start_call,
    uvicorn_ws_protocols,
    ws_url,
)
from tests.integration.scripted_model import eventually

pytestmark = pytest.mark.timeout(60)
SCENARIOS = Path(__file__).parent / "hostile_scenarios"
GOOD_FORM = b"CallSid=CA" + b"0123" * 8 + b"&AccountSid=AC0123&From=%2B15550199&To=%2B15550100"


@pytest.fixture
def hostile_settings():
    # A model URL that is never dialled unless a call asks for a model; it also keeps the server
    # from starting the embedded engine.
    return Settings(scenarios_dir=SCENARIOS, realtime_url="ws://127.0.0.1:9/unused")


def session_of(runtime, call_sid: str):
    return next((s for s in runtime.sessions if s.label == f"call {call_sid}"), None)


# --- the webhook ------------------------------------------------------------------------------

def _chunked(path: str, size: int) -> bytes:
    chunk = b"A" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(size // len(chunk))) + b"0\r\n\r\n"
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)


def _multipart_with_a_file() -> bytes:
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"CallSid\"; filename=\"a.txt\"\r\n\r\nCA1\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"To\"\r\n\r\n+15550100\r\n--XX--\r\n")
    return form_request("/incoming-call", body, b"multipart/form-data; boundary=XX")


WEBHOOK_ABUSE = [
    # (what, request, expected status, a word the answer must contain)
    ("JSON body", form_request("/incoming-call", b'{"CallSid":"CA1","To":"+1"}', b"application/json"), 415, b"x-www-form-urlencoded"),
    ("multipart with a file", _multipart_with_a_file(), 415, b"x-www-form-urlencoded"),
    ("no content type", b"POST /incoming-call HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(GOOD_FORM), GOOD_FORM), 415, b"x-www-form-urlencoded"),
    ("body over 64 KiB", form_request("/incoming-call", GOOD_FORM + b"&Junk=" + b"A" * 70_000), 413, b"too large"),
    ("2 MiB chunked body, no length", _chunked("/incoming-call", 2 << 20), 413, b"too large"),
    ("%-escaped invalid UTF-8", form_request("/incoming-call", GOOD_FORM + b"&CallerName=%FF%FE"), 400, b"UTF-8"),
    ("raw non-ASCII bytes", form_request("/incoming-call", GOOD_FORM + b"&CallerName=\xff\xfe"), 400, b"UTF-8"),
    ("missing CallSid and To", form_request("/incoming-call", b"From=%2B1"), 400, b"CallSid and To"),
    ("5000 fields", form_request("/incoming-call", b"a=&" * 5000), 400, b"fields"),
    ("unparsable Content-Length", b"POST /incoming-call HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, b""),
    ("200 KB header", form_request("/incoming-call", GOOD_FORM, extra_headers=b"X-Junk: " + b"a" * 200_000 + b"\r\n"), 431, b"head over"),
    ("/media-stream/../incoming-call", form_request("/media-stream/../incoming-call", GOOD_FORM), 404, b"Not Found"),
    ("//incoming-call", form_request("//incoming-call", GOOD_FORM), 404, b"Not Found"),
    ("GET on the webhook", b"GET /incoming-call HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, b""),
    ("HTTP GET on the WebSocket path", b"GET /media-stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, b""),
    ("HTTP POST on the WebSocket path", form_request("/media-stream", GOOD_FORM), 404, b""),
]


def _upgrade(path: str, headers: bytes = b"") -> bytes:
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers + b"\r\n")


async def test_webhook_abuse_gets_clear_errors_while_a_call_goes_on(hostile_settings, probe):
    async with running_bridge(hostile_settings) as runtime:
        port = runtime.settings.port
        async with Bystander(ws_url(runtime), probe) as bystander:
            wrong = []
            for what, request, status, word in WEBHOOK_ABUSE:
                got, body = await raw_http(port, request)
                if got != status or word not in body:
                    wrong.append((what, got, body[:80]))
            # A WebSocket upgrade anywhere but /media-stream is refused before any session exists.
            for path in ("/incoming-call", "/healthz", "/media-stream/../incoming-call", "//media-stream"):
                got, body = await raw_http(port, _upgrade(path), timeout=2)
                if got != 403:
                    wrong.append((f"WebSocket upgrade on {path}", got, body[:80]))
            assert wrong == []
            # The webhook still answers a good request, and nothing above became a call.
            got, body = await raw_http(port, form_request("/incoming-call", GOOD_FORM))
            assert got == 200 and b"<Connect>" in body
            assert runtime.metrics.calls_started == 1  # the bystander
            await bystander.finish()


async def test_forged_host_and_forwarded_headers_change_neither_signature_url_nor_stream_url(signed_settings, probe):
    settings = replace(signed_settings, public_url="https://bridge.example.com")
    token = settings.twilio_auth_token
    form = {"CallSid": "CA" + "2" * 32, "AccountSid": "AC" + "1" * 32, "From": "+15550199", "To": "+15550100"}
    body = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in form.items()).encode()
    forged = b"X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8443\r\nX-Original-URL: /evil\r\n"

    def signed(url: str) -> bytes:
        return b"X-Twilio-Signature: " + RequestValidator(token).compute_signature(url, form).encode() + b"\r\n"

    async with running_bridge(settings) as runtime:
        port = runtime.settings.port
        # Signed for the URL the forged headers describe: refused.
        for url in ("https://evil.example/incoming-call", "http://evil.example:8443/incoming-call",
                    f"http://127.0.0.1:{port}/incoming-call"):
            status, _ = await raw_http(port, form_request("/incoming-call", body, host=b"evil.example", extra_headers=forged + signed(url)))
            assert status == 403, url
        # Signed for PUBLIC_URL: accepted whatever Host says, and the stream URL is PUBLIC_URL's.
        status, twiml = await raw_http(port, form_request("/incoming-call", body, host=b"evil.example",
                                                          extra_headers=forged + signed("https://bridge.example.com/incoming-call")))
        assert status == 200
        assert ET.fromstring(twiml).find("./Connect/Stream").get("url") == "wss://bridge.example.com/media-stream"
        # A query string is part of what Twilio signs.
        status, _ = await raw_http(port, form_request("/incoming-call?x=1", body, extra_headers=signed("https://bridge.example.com/incoming-call")))
        assert status == 403
        status, _ = await raw_http(port, form_request("/incoming-call?x=1", body, extra_headers=signed("https://bridge.example.com/incoming-call?x=1")))
        assert status == 200
        assert runtime.metrics.webhooks_forbidden == 4

        # The media WebSocket: the signature covers PUBLIC_URL's wss:// URL, query included.
        def ws_signature(url: str) -> bytes:
            return b"X-Twilio-Signature: " + RequestValidator(token).compute_signature(url, {}).encode() + b"\r\n"

        bare = "wss://bridge.example.com/media-stream"
        for path, url, accepted in [("/media-stream", bare, True),
                                    ("/media-stream", "wss://evil.example/media-stream", False),
                                    ("/media-stream?scenario=other", bare, False),
                                    ("/media-stream?scenario=other", bare + "?scenario=other", True)]:
            close = await _ws_close_after_upgrade(port, path, b"Host: evil.example\r\n" + forged + ws_signature(url), accepted)
            assert close == (None if accepted else (1008, "invalid or missing X-Twilio-Signature")), (path, url)
        assert runtime.metrics.streams_forbidden == 2


async def _ws_close_after_upgrade(port: int, path: str, headers: bytes, accepted: bool) -> tuple[int, str] | None:
    """Upgrade by hand (so Host and friends are exactly ours); the close frame the server sent, or
    None when it kept the stream open (then we close it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = _upgrade(path, headers).replace(b"Host: 127.0.0.1\r\n", b"")
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        first = await asyncio.wait_for(reader.readexactly(2), 0.5 if accepted else 5)
    except TimeoutError:
        writer.close()
        return None
    assert first[0] == 0x88, first  # FIN + close
    payload = await reader.readexactly(first[1] & 0x7F)
    writer.close()
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


# --- WebSocket frames -------------------------------------------------------------------------

async def _send_fragmented(peer, total: int, fragment: int) -> None:
    async def fragments():
        for _ in range(total // fragment):
            yield "x" * fragment
    await peer.ws.send(fragments())


BREAKING_FRAMES = {
    # what: (how to send it, the close code the peer gets, the peer's permessage-deflate)
    "1.5 MiB text frame": (lambda peer: peer.send("x" * (3 << 19)), 1009, None),
    "2 MiB binary frame": (lambda peer: peer.send(b"\x00" * (2 << 20)), 1009, None),
    "2 MiB in 64 KiB fragments": (lambda peer: _send_fragmented(peer, 2 << 20, 1 << 16), 1009, None),
    "invalid UTF-8 in a text frame": (lambda peer: peer.ws.send(b'{"event":"media\xff\xfe"}', text=True), 1007, None),
}


@pytest.mark.parametrize("what", list(BREAKING_FRAMES))
async def test_a_frame_the_websocket_layer_refuses_ends_only_that_call(hostile_settings, probe, caplog, what):
    send, code, compression = BREAKING_FRAMES[what]
    async with running_bridge(hostile_settings) as runtime:
        async with Bystander(ws_url(runtime), probe) as bystander:
            peer = await open_peer(ws_url(runtime), compression=compression)
            await start_call(peer, probe)
            await peer.media()
            await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] == 160)
            with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
                await send(peer)
                got, _ = await peer.wait_closed()
                assert got == code
                await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
            # The call ended as calls end (Disconnected, Terminated), saying why, in a line naming it.
            [reason] = [d for k, d in probe.events[peer.call_sid] if k == "disconnected"]
            assert str(code) in reason
            assert f"call {peer.call_sid}: carrier connection failed ({code}" in caplog.text
            await bystander.finish()
            await eventually(lambda: not runtime.sessions)


async def test_the_media_socket_never_negotiates_permessage_deflate(hostile_settings, probe):
    """No carrier compresses its media stream, and a compressed frame costs CPU and memory to
    inflate (8 KiB on the wire can inflate to 8 MiB): the offer is declined."""
    async with running_bridge(hostile_settings) as runtime:
        peer = await open_peer(ws_url(runtime), compression="deflate")
        assert peer.ws.protocol.extensions == []
        await start_call(peer, probe)
        await peer.stop()
        assert (await peer.wait_closed())[0] == 1000


async def test_frames_the_codec_refuses_are_counted_and_the_call_goes_on(hostile_settings, probe, caplog):
    async with running_bridge(hostile_settings) as runtime:
        async with Bystander(ws_url(runtime), probe) as bystander:
            peer = await open_peer(ws_url(runtime))
            await start_call(peer, probe)
            media = orjson.loads(orjson.dumps({"event": "media", "sequenceNumber": "9", "streamSid": peer.stream_sid,
                                               "media": {"track": "inbound", "chunk": "9", "timestamp": "0",
                                                         "payload": base64.b64encode(FRAME).decode()}}))
            bad = [
                "x" * ((1 << 20) - 4096),                # under uvicorn's 1 MiB, over the codec's 64 KiB
                b"\x00\x01binary",                       # binary junk
                orjson.dumps(media),                     # a valid media event, but as a binary frame
                '{"event": "media", "streamSid": 1}',
                '{"event": "start"}',                    # a second, broken start
                "[]", "null", '"media"', "{" * 10_000,   # JSON, but not an event; deep nesting
                '{"event": "media", "streamSid": "%s", "media": {"payload": "%s"}}' % (peer.stream_sid, "A" * 60_000),
            ]
            # Valid, but stamped 30 million years into the call: the gap filler's cap (2 s) applies.
            far_future = ('{"event": "media", "streamSid": "%s", "sequenceNumber": "2", "media": {"track": "inbound", '
                          '"chunk": "2", "timestamp": "999999999999999999", "payload": "/w=="}}' % peer.stream_sid)
            with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
                await peer.media()
                for frame in bad:
                    await peer.send(frame)
                await peer.send(far_future)
                await peer.media()
                await probe.wait_for(lambda: probe.media_bytes[peer.call_sid] == 160 + 16_000 + 1 + 160)
            assert runtime.metrics.frames_rejected == len(bad)
            assert caplog.text.count(f"call {peer.call_sid}: bad carrier frame") == len(bad)
            assert "binary frame" in caplog.text
            await peer.dtmf("7")
            await peer.stop()
            assert (await peer.wait_closed())[0] == 1000
            await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
            assert probe.kinds(peer.call_sid) == ["alerting", "connected", "tone", "disconnected", "terminated"]
            await bystander.finish()


async def test_a_stream_that_never_starts_is_closed(hostile_settings, probe, caplog):
    settings = replace(hostile_settings, start_timeout_s=0.3)
    async with running_bridge(settings) as runtime:
        async with Bystander(ws_url(runtime), probe) as bystander:
            silent = await open_peer(ws_url(runtime))
            chatty = await open_peer(ws_url(runtime))
            await chatty.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
                try:
                    while True:  # frames, but never a start
                        await chatty.send("not a start")
                        await asyncio.sleep(0.02)
                except ConnectionClosed:
                    pass
                assert chatty.ws.close_code == 1008
                assert chatty.ws.close_reason == "no start message within 0.3 s"
                assert await silent.wait_closed() == (1008, "no start message within 0.3 s")
            assert caplog.text.count("no start message within 0.3 s") == 2
            await bystander.finish(min_frames=20)
            await eventually(lambda: not runtime.sessions)


# --- floods -----------------------------------------------------------------------------------

async def test_a_flood_faster_than_real_time_is_absorbed_with_bounded_memory(hostile_settings, probe):
    """5,000 media frames (100 s of audio), 2,000 DTMF and 2,000 marks as fast as one socket takes them.
    uvicorn stops reading a connection after each message until the app has taken it, so the only
    queue between socket and scenario holds what one socket read (≤ 256 KiB) contained."""
    async with running_bridge(hostile_settings) as runtime:
        async with Bystander(ws_url(runtime), probe) as first, Bystander(ws_url(runtime), probe, "6") as second:
            flooder = await open_peer(ws_url(runtime))
            await start_call(flooder, probe)
            protocols = uvicorn_ws_protocols()
            rss_before = rss_bytes()
            peak_queue = 0
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak_queue
                while not done.is_set():
                    peak_queue = max(peak_queue, *(p.queue.qsize() for p in protocols))
                    await asyncio.sleep(0)

            sampler = asyncio.create_task(sample())
            loop = asyncio.get_running_loop()
            started = loop.time()
            for i in range(5000):
                await flooder.media(FRAME)
                if i % 5 == 0:
                    await flooder.dtmf("1")
                    await flooder.mark(f"g0.{i}")
            sent_in = loop.time() - started
            await probe.wait_for(lambda: probe.media_bytes[flooder.call_sid] == 5000 * 160, timeout=30)
            absorbed_in = loop.time() - started
            session = session_of(runtime, flooder.call_sid)
            journal_entries = len(session.journal.entries)
            done.set()
            await sampler
            rss_growth = rss_bytes() - rss_before
            await flooder.stop()
            assert (await flooder.wait_closed())[0] == 1000
            await first.finish()
            await second.finish()
        print(f"\nflood: 5000 media + 1000 dtmf + 1000 marks sent in {sent_in:.2f} s, absorbed in {absorbed_in:.2f} s; "
              f"peak uvicorn queue {peak_queue} messages; RSS growth {rss_growth / 1e6:.1f} MB; journal {journal_entries} entries; "
              f"bystander worst frame latency {max(first.max_wait_ms, second.max_wait_ms):.0f} ms")
        assert peak_queue <= 1000  # one socket read's worth of ~300-byte frames
        assert rss_growth < 20e6
        assert journal_entries < 300  # DTMF beyond the journal's per-call budget are counted, not kept
        assert probe.kinds(flooder.call_sid).count("tone") == 1000  # the scenario still saw every digit


# --- stalls -----------------------------------------------------------------------------------

async def _stalled_carrier(runtime, probe, model: ModelServer):
    """A call whose peer has a tiny receive buffer and stops reading while the model streams an answer."""
    peer = await open_peer(ws_url(runtime), rcvbuf=4096, max_queue=1)
    await start_call(peer, probe, model="1")
    await probe.wait_for(lambda: "client" in probe.kinds(peer.call_sid))
    streaming = asyncio.create_task(model.audio(0, "resp_1", "item_1", seconds=600))
    return peer, streaming


async def test_a_carrier_that_stops_reading_is_closed_with_1011_after_the_timeout(hostile_settings, probe, caplog):
    async with ModelServer() as model:
        settings = replace(hostile_settings, realtime_url=model.url, peer_stall_timeout_s=1.0)
        async with running_bridge(settings) as runtime:
            async with Bystander(ws_url(runtime), probe) as bystander:
                with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
                    peer, streaming = await _stalled_carrier(runtime, probe, model)
                    await eventually(lambda: "the carrier has not read" in caplog.text, timeout=20)
                    # The peer reads again: the audio still in flight, then the close with its reason.
                    code, reason = await peer.wait_closed()
                assert (code, reason) == (1011, "carrier stopped reading for 1 s")
                assert f"call {peer.call_sid}: the carrier has not read for 1 s" in caplog.text
                await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
                await eventually(lambda: model.open_connections() == 0)  # pitfall 13: its model went too
                await asyncio.gather(streaming, return_exceptions=True)
                await bystander.finish()
                await eventually(lambda: not runtime.sessions)


async def test_a_carrier_that_never_reads_again_is_dropped_and_its_socket_freed(hostile_settings, probe, caplog):
    async with ModelServer() as model:
        settings = replace(hostile_settings, realtime_url=model.url, peer_stall_timeout_s=1.0)
        async with running_bridge(settings) as runtime:
            fds_before = open_fds()
            async with Bystander(ws_url(runtime), probe) as bystander:
                with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
                    peer, streaming = await _stalled_carrier(runtime, probe, model)
                    [server_side] = [p for p in uvicorn_ws_protocols() if p.client == peer.ws.local_address]
                    await eventually(lambda: "the carrier has not read" in caplog.text, timeout=20)
                    # Not reading at all, so the close frame cannot get through either: after as long
                    # again the bridge resets the connection, freeing its socket and send buffer.
                    await eventually(lambda: "connection dropped" in caplog.text, timeout=5)
                await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
                await eventually(lambda: len(runtime.sessions) == 1, timeout=5)  # only the bystander
                assert server_side.transport.get_extra_info("socket").fileno() == -1
                peer_socket = peer.ws.transport.get_extra_info("socket")
                assert peer_socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
                await eventually(lambda: model.open_connections() == 0)
                await asyncio.gather(streaming, return_exceptions=True)
                await bystander.finish()
            await peer.ws.close()
            await eventually(lambda: open_fds() <= fds_before, timeout=5)


async def test_a_stalled_model_does_not_hold_up_the_carrier_reader(hostile_settings, probe):
    """The model stops reading (its socket backs up). Caller audio must not block the carrier reader:
    the caller's DTMF and hang-up still arrive at once, and the model connection is gone afterwards."""
    async with ModelServer(stall_after=3) as model:
        settings = replace(hostile_settings, realtime_url=model.url)
        async with running_bridge(settings) as runtime:
            async with Bystander(ws_url(runtime), probe) as bystander:
                peer = await open_peer(ws_url(runtime))
                await start_call(peer, probe, model="1")
                await probe.wait_for(lambda: "client" in probe.kinds(peer.call_sid))
                for _ in range(3000):  # 60 s of caller audio, far more than the stalled socket takes
                    await peer.media(os.urandom(160))
                await model.stalled.wait()
                await peer.dtmf("3")
                await probe.wait_for(lambda: "tone" in probe.kinds(peer.call_sid), timeout=5)
                await peer.stop()
                assert (await peer.wait_closed(timeout=10))[0] == 1000
                await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
                assert probe.media_bytes[peer.call_sid] == 3000 * 160  # every frame went past the model
                model.resume()  # it reads again, and finds the bridge gone
                await eventually(lambda: model.open_connections() == 0, timeout=10)
                await bystander.finish()


async def test_a_media_unit_that_never_returns_ends_its_call_only(hostile_settings, probe, caplog):
    settings = replace(hostile_settings, media_stall_timeout_s=0.3)
    async with running_bridge(settings) as runtime:
        async with Bystander(ws_url(runtime), probe) as bystander:
            peer = await open_peer(ws_url(runtime))
            with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
                await start_call(peer, probe, unit="stuck")
                for _ in range(5):
                    await peer.media()
                await peer.dtmf("4")
                code, reason = await peer.wait_closed()
            assert (code, reason) == (1011, "caller audio stalled: a media unit took no audio for 0.3 s")
            assert f"call {peer.call_sid}: a media unit has not taken caller audio for 0.3 s" in caplog.text
            await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
            await bystander.finish()
            await eventually(lambda: not runtime.sessions)


async def test_a_media_unit_that_raises_is_logged_and_the_call_goes_on(hostile_settings, probe, caplog):
    async with running_bridge(hostile_settings) as runtime:
        peer = await open_peer(ws_url(runtime))
        with caplog.at_level(logging.WARNING, logger="telephony_bridge.call"):
            await start_call(peer, probe, unit="raises")
            for _ in range(300):
                await peer.media()
            await peer.dtmf("8")
            await probe.wait_for(lambda: "tone" in probe.kinds(peer.call_sid))
            await peer.stop()
            assert (await peer.wait_closed())[0] == 1000
        await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))
        assert probe.media_bytes[peer.call_sid] == 300 * 160
        failures = [r for r in caplog.records if "media unit failed" in r.getMessage()]
        assert 1 <= len(failures) <= 15 and peer.call_sid in failures[0].getMessage()
        assert "media unit bug on purpose" in caplog.text
