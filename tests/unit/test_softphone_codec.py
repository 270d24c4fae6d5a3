"""The softphone carrier's sans-I/O pieces: its codec, the page's playout reports, the routes the
page offers, and the outgoing track that is silent by sending nothing."""

from __future__ import annotations

import asyncio
import re

import pytest

from telephony_bridge.audio.formats import L16_24K
from telephony_bridge.carriers.base import AudioReceived, CallStarted, DtmfReceived, StreamEnded
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.registry import CARRIERS
from telephony_bridge.carriers.webrtc import (
    PlayoutReport,
    WebRtcCarrier,
    WebRtcCodec,
    hangup_message,
    read_playout_report,
    start_message,
)
from telephony_bridge.server.softphone import literal_numbers
from telephony_bridge.server.softphone_track import FRAMING, TalkTrack
from telephony_bridge.voxengine.routing import Route, Router


def started_codec() -> WebRtcCodec:
    codec = WebRtcCodec()
    assert codec.parse(start_message("softphone-1", "tok", "+15550100", "softphone")) == CallStarted(
        call_id="softphone-1",
        stream_id="softphone-1",
        audio_format=L16_24K,
        caller="softphone",
        number="+15550100",
        token="tok",
    )
    return codec


def test_the_start_is_the_transports_first_message_and_only_once():
    codec = WebRtcCodec()
    for early in (b"\x00\x00", '{"type": "dtmf", "digit": "1"}'):
        with pytest.raises(CarrierProtocolError, match="before the start"):
            codec.parse(early)
    assert not codec.started
    with pytest.raises(CarrierProtocolError, match="call id and token"):
        codec.parse('{"type": "start", "call_id": "x"}')
    codec = started_codec()
    with pytest.raises(CarrierProtocolError, match="unknown control message"):
        codec.parse(start_message("softphone-2", "other", "+1", "x"))  # a page cannot start a second call


def test_audio_dtmf_hangup_and_what_is_refused():
    codec = started_codec()
    assert codec.parse(b"\x01\x00\x02\x00") == AudioReceived(b"\x01\x00\x02\x00")
    assert codec.parse('{"type": "dtmf", "digit": "a"}') == DtmfReceived("A")
    assert isinstance(codec.parse('{"type": "hangup"}'), StreamEnded)
    assert codec.parse('{"type": "playout", "played_ms": 1}') is None  # the transport's business
    for bad, reason in (
        (b"\x01", "whole samples"),
        ('{"type": "dtmf", "digit": "12"}', "one keypad digit"),
        ('{"type": "dtmf", "digit": 5}', "one keypad digit"),
        ("not json", "not JSON"),
        ("[1, 2]", "without a type"),
        ('{"type": "transfer"}', "unknown control message"),
        ('{"type": "dtmf", "digit": "' + "1" * 2000 + '"}', "refused"),
    ):
        with pytest.raises(CarrierProtocolError, match=reason):
            codec.parse(bad)
    assert codec.audio(b"\x01\x00") == b"\x01\x00" and codec.clear() == b""


def test_playout_reports_are_read_apart_and_checked():
    assert read_playout_report('{"type": "dtmf", "digit": "1"}') is None
    assert read_playout_report('{"type": "playout", "played_ms": 1500.5, "delay_ms": 40}') == PlayoutReport(
        1500.5, 40.0
    )
    for bad in (
        '{"type": "playout", "played_ms": -1}',
        '{"type": "playout", "played_ms": true}',
        '{"type": "playout"}',
    ):
        with pytest.raises(CarrierProtocolError, match="bad figures"):
            read_playout_report(bad)
    assert hangup_message("hangup by scenario") == '{"type":"hangup","reason":"hangup by scenario"}'


def test_the_carrier_record():
    assert WebRtcCarrier in CARRIERS and WebRtcCarrier.prefixes == ()
    capabilities = WebRtcCarrier.capabilities
    assert capabilities.audio_formats == (L16_24K,) and capabilities.dtmf_in
    assert not capabilities.marks and not capabilities.clear and capabilities.playout_lead_ms > 0
    assert not WebRtcCarrier({}).secured and WebRtcCarrier({"CONSOLE_TOKEN": "x"}).secured


def test_the_page_offers_the_numbers_routed_one_by_one():
    def route(pattern: str, scenario: str) -> Route:
        return Route(pattern=re.compile(pattern), exclude=None, scenario=scenario)

    router = Router((route(r"\+15550100", "default"), route(r"\+1555\d+", "other"), route(".*", "default")))
    assert literal_numbers(router) == [("+15550100", "default")]
    assert literal_numbers(None) == []


async def test_the_track_sends_only_while_there_is_audio_framed_by_silence():
    now = [100.0]
    track = TalkTrack(24000, clock=lambda: now[0])
    frame_bytes = 960
    audio = bytes(range(256)) * 15  # 3840 bytes: four frames, none of them silent
    track.write(audio)
    frames = [await track.recv() for _ in range(FRAMING + 4)]
    assert [f.pts for f in frames] == [480 * i for i in range(FRAMING + 4)]
    assert all(not any(bytes(f.planes[0])[:frame_bytes]) for f in frames[:FRAMING])  # the leading silence
    assert b"".join(bytes(f.planes[0])[:frame_bytes] for f in frames[FRAMING:]) == audio
    assert track.sent_ms == 80.0
    # No more audio: after a moment, the trailing silence, and then nothing until audio comes.
    trailing = [await track.recv() for _ in range(FRAMING)]
    assert all(not any(bytes(f.planes[0])[:frame_bytes]) for f in trailing)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert not waiting.done()
    now[0] += 5.0  # five seconds of the agent's silence
    track.write(audio[:frame_bytes])
    resumed = await waiting
    assert resumed.pts == 5 * 24000  # the RTP clock jumped by the silence (its leading frame first)
    assert track.stretches == 2
    track.stop()
