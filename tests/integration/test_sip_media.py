"""RtpStream over real UDP sockets on 127.0.0.1, against a plain socket acting as the far end.

Timing is never asserted: the pacing tests drive the stream's clock by hand (`paced=False`,
`tick(now)`) and count packets; the others wait on what arrives, with timeouts."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony_bridge.audio.formats import ALAW_8K, ULAW_8K, AudioFormat
from telephony_bridge.audio.g711 import alaw_decode, ulaw_encode
from telephony_bridge.carriers.base import AudioReceived, CallStarted, DtmfReceived, MarkEchoed
from telephony_bridge.carriers.sip.codec import SipCodec
from telephony_bridge.carriers.sip.dtmf import digit_train, parse_event
from telephony_bridge.carriers.sip.rtcp import (
    PacketType,
    ReportBlock,
    build_report,
    ntp_middle,
    parse_rtcp,
)
from telephony_bridge.carriers.sip.rtp import build_rtp
from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.sip_media import MAX_INBOUND_FRAMES, RtpPortPool, RtpStream
from tests.integration.rtp_peer import TIMEOUT_S, UdpPeer, peer_pair

pytestmark = pytest.mark.timeout(60)

SSRC = 0x5EED


def free_port_range(pairs: int) -> tuple[int, int]:
    """A run of `pairs` even/odd port pairs free right now (other tests run on this machine too)."""
    for _ in range(200):
        first = random.randrange(30000, 60000 - 2 * pairs) & ~1
        probes: list[socket.socket] = []
        try:
            for port in range(first, first + 2 * pairs):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                probes.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in probes:
                sock.close()
        return first, first + 2 * pairs - 1
    raise RuntimeError("no free port range")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def start(audio_format: AudioFormat = ULAW_8K) -> CallStarted:
    return CallStarted(
        call_id="sip-call-1", stream_id="sip-call-1", audio_format=audio_format, caller="+1555", number="+1666"
    )


async def receive(stream: RtpStream) -> Mapping[str, Any]:
    return await asyncio.wait_for(stream.receive(), TIMEOUT_S)


async def parsed(stream: RtpStream, codec: SipCodec) -> Any:
    message = await receive(stream)
    assert message["type"] == "websocket.receive", message
    return codec.parse(message.get("bytes", message.get("text")))


async def begun(stream: RtpStream, codec: SipCodec, audio_format: AudioFormat = ULAW_8K) -> None:
    stream.begin(start(audio_format))
    started = await parsed(stream, codec)
    assert isinstance(started, CallStarted) and started.call_id == "sip-call-1" and started.audio_format == audio_format


async def started_stream(
    pool: RtpPortPool,
    far_end: tuple[str, int],
    payload_type: int = 0,
    event_type: int | None = None,
    audio_format: AudioFormat = ULAW_8K,
) -> tuple[RtpStream, SipCodec]:
    """Call sip-call-1's stream, configured for `far_end` and begun: what most tests start from."""
    stream = pool.open("sip-call-1")
    assert stream is not None
    stream.configure(far_end, payload_type, event_type)
    codec = SipCodec()
    await begun(stream, codec, audio_format)
    return stream, codec


def rtp(seq: int, payload: bytes, pt: int = 0, ssrc: int = SSRC, marker: bool = False) -> bytes:
    return build_rtp(pt, seq, seq * 160, ssrc, payload, marker)


@pytest.fixture
async def pool():
    first, last = free_port_range(4)
    pool = RtpPortPool(first, last, "127.0.0.1", metrics=BridgeMetrics())
    yield pool
    await pool.aclose()


@pytest.fixture
async def manual_pool():
    """A pool whose streams tick only when told, on a fake clock."""
    first, last = free_port_range(4)
    pool = RtpPortPool(first, last, "127.0.0.1", metrics=BridgeMetrics(), clock=FakeClock(), paced=False)
    yield pool
    await pool.aclose()


async def test_audio_flows_both_ways_paced_with_a_mark_echoed_after_it_played(pool: RtpPortPool):
    phone, _ = await peer_pair()
    stream = pool.open("sip-call-1")
    assert stream is not None and stream.local_port % 2 == 0
    stream.configure(phone.address, 0, 101, "sendrecv")
    codec = SipCodec()
    await begun(stream, codec)
    frames = [bytes([i]) * 160 for i in range(10)]
    for seq, frame in enumerate(frames, 100):
        phone.send(rtp(seq, frame), ("127.0.0.1", stream.local_port))
    for frame in frames:
        event = await parsed(stream, codec)
        assert isinstance(event, AudioReceived) and event.payload == frame

    agent = bytes(range(256)) * 2  # 512 bytes: three frames and a 32-byte tail
    await stream.send_bytes(codec.audio(agent))
    await stream.send_text(codec.mark("g0.0"))
    first, silence = await phone.until_packet(lambda p: p.payload[0] != 0xFF)
    rest = await phone.packets(3)
    voiced = [first, *rest]
    assert all(p.payload == b"\xff" * 160 and not p.marker for p in silence)  # comfort silence before
    assert [p.marker for p in voiced] == [True, False, False, False]  # a talk spurt starts
    assert b"".join(p.payload for p in voiced) == agent + b"\xff" * (4 * 160 - 512)  # the last one padded
    sent = [*silence, *voiced]
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in pairwise(sent))
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 for a, b in pairwise(sent))
    echoed = await parsed(stream, codec)
    assert echoed == MarkEchoed("g0.0")
    phone.close()


async def test_symmetric_rtp_latches_to_the_first_source_and_drops_others(pool: RtpPortPool):
    sdp_says, phone, intruder = await UdpPeer.open(), await UdpPeer.open(), await UdpPeer.open()
    stream = pool.open("sip-call-1")
    assert stream is not None
    stream.configure(sdp_says.address, 0, None)  # behind NAT: packets come from elsewhere
    codec = SipCodec()
    await begun(stream, codec)
    to = ("127.0.0.1", stream.local_port)
    phone.send(rtp(1, b"\x01" * 160), to)
    assert (await parsed(stream, codec)).payload == b"\x01" * 160
    assert stream.latched == phone.address
    intruder.send(rtp(2, b"\x02" * 160), to)
    phone.send(rtp(2, b"\x03" * 160), to)
    assert (await parsed(stream, codec)).payload == b"\x03" * 160  # the intruder's never came through
    assert pool.metrics.rtp_packets_foreign == 1
    await phone.packets(3)  # our RTP goes to where the phone's came from, not to the SDP's address
    while sdp_says.pending():  # (comfort silence went there before the phone's first packet)
        await sdp_says.next()
    await phone.packets(3)
    assert sdp_says.pending() == 0 and intruder.pending() == 0
    stream.configure(intruder.address, 0, None)  # a re-INVITE moved the far end: latch again
    assert stream.latched is None
    for peer in (sdp_says, phone, intruder):
        peer.close()


async def test_reorder_duplicates_loss_and_a_new_ssrc(pool: RtpPortPool):
    phone = await UdpPeer.open()
    stream, codec = await started_stream(pool, phone.address)
    to = ("127.0.0.1", stream.local_port)
    for seq in (1, 3, 2, 2, 3, 5, 6, 7, 8):  # 2 and 3 swapped and repeated, 4 lost
        phone.send(rtp(seq, bytes([seq]) * 160), to)
    payloads = [(await parsed(stream, codec)).payload[0] for _ in range(8)]
    assert payloads == [1, 2, 3, 0xFF, 5, 6, 7, 8]  # 4 concealed with silence
    for seq in (9000, 9001):  # the far end restarted: a new SSRC and sequence
        phone.send(rtp(seq, bytes([seq & 0x7F]) * 160, ssrc=SSRC + 1), to)
    assert [(await parsed(stream, codec)).payload[0] for _ in range(2)] == [9000 & 0x7F, 9001 & 0x7F]
    phone.send(b"\x00garbage", to)  # not RTP: counted, and the call goes on
    phone.send(rtp(7, b"\x07" * 160, pt=8, ssrc=SSRC + 1), to)  # a payload type never negotiated
    phone.send(rtp(9002, b"\x11" * 160, ssrc=SSRC + 1), to)
    assert (await parsed(stream, codec)).payload == b"\x11" * 160
    metrics = pool.metrics
    assert metrics.rtp_packets_lost == 1 and metrics.rtp_packets_malformed == 1
    assert metrics.rtp_packets_discarded == 3  # two duplicates, one wrong payload type
    phone.close()


async def test_dtmf_both_ways_with_the_triple_end_packet(pool: RtpPortPool):
    phone = await UdpPeer.open()
    stream, codec = await started_stream(pool, phone.address, event_type=101)
    to = ("127.0.0.1", stream.local_port)
    events = [tick.payload for tick in digit_train("7") if tick.payload is not None]
    for seq, payload in enumerate(events, 50):
        phone.send(build_rtp(101, seq, 8000, SSRC, payload, marker=seq == 50), to)
    phone.send(build_rtp(101, 57, 8000, SSRC, events[-1]), to)  # a fourth end packet, retransmitted
    phone.send(rtp(58, b"\x42" * 160), to)
    assert await parsed(stream, codec) == DtmfReceived("7")
    assert (await parsed(stream, codec)).payload == b"\x42" * 160  # only one key press came through
    stream.inject_dtmf("#")  # SIP INFO
    assert await parsed(stream, codec) == DtmfReceived("#")

    await stream.send_text(codec.dtmf("1#"))
    first, _ = await phone.until_packet(lambda p: p.payload_type == 101)
    train = [first]
    while len(train) < 14:
        packet = (await phone.packets(1))[0]
        if packet.payload_type == 101:
            train.append(packet)
    events_sent = [parse_event(p.payload) for p in train]
    assert [e.digit for e in events_sent] == ["1"] * 7 + ["#"] * 7
    assert [e.end for e in events_sent[:7]] == [False] * 4 + [True] * 3
    assert [p.marker for p in train] == [True] + [False] * 6 + [True] + [False] * 6
    assert len({p.timestamp for p in train[:7]}) == 1 and len({p.timestamp for p in train[7:]}) == 1
    assert train[7].timestamp - train[0].timestamp >= 160 * 10  # the tone, the end packets, a pause
    phone.close()


async def test_the_clock_sends_one_packet_per_20_ms_without_bursts_and_holds(manual_pool: RtpPortPool):
    clock = manual_pool.clock
    assert isinstance(clock, FakeClock)
    phone = await UdpPeer.open()
    stream = manual_pool.open("sip-call-1")
    assert stream is not None
    stream.configure(phone.address, 0, None)
    await begun(stream, SipCodec())
    start_s = clock.now
    served = wakes = 0
    for step_ms in [3.0, 17.0, 9.5, 11.0, 25.0, 0.5] * 100:  # 6.6 s of uneven wake-ups, some late
        clock.now += step_ms / 1000
        ticks = stream.tick(clock.now)
        served += ticks
        wakes += 1 if ticks else 0
        await asyncio.sleep(0)  # the phone reads as it goes (a socket buffer holds only so many)
    assert served == int((clock.now - start_s) * 1000 + 1) // 20 + 1 == 331  # every 20 ms, none twice
    packets = await phone.packets(wakes)  # one packet per wake-up with a tick due: never a burst
    assert wakes < served  # (a 25 ms step sometimes covered two ticks: one packet went for both)
    await asyncio.sleep(0.05)
    assert phone.pending() == 0
    timestamps = [p.timestamp for p in packets]
    assert (timestamps[-1] - timestamps[0]) & 0xFFFFFFFF == 160 * (served - 1)  # the media clock kept time
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in pairwise(packets))

    clock.now += 0.100  # the loop stalled for five ticks: one packet, the timestamp over all five
    assert stream.tick(clock.now) == 5
    [after_stall] = await phone.packets(1)
    assert (after_stall.timestamp - timestamps[-1]) & 0xFFFFFFFF == 160 * 5
    stream.configure(phone.address, 0, None, "recvonly")  # put on hold: nothing is sent
    await stream.send_bytes(b"\x10" * 320)
    for _ in range(5):
        clock.now += 0.020
        stream.tick(clock.now)
    stream.configure(("0.0.0.0", phone.port), 0, None, "sendrecv")  # an old peer's hold: c=0.0.0.0
    clock.now += 0.020
    stream.tick(clock.now)
    stream.configure(phone.address, 0, None, "sendrecv")
    clock.now += 0.020
    stream.tick(clock.now)
    [resumed] = await phone.packets(1)
    assert resumed.sequence == (after_stall.sequence + 1) & 0xFFFF and resumed.marker
    assert resumed.payload == b"\x10" * 160  # the queue waited through the hold
    assert (resumed.timestamp - after_stall.timestamp) & 0xFFFFFFFF == 160 * 7
    phone.close()


async def test_late_model_audio_leaves_when_it_arrives_in_the_tick_it_missed(manual_pool: RtpPortPool):
    """The answer's next delta comes 7 ms after its tick found the queue empty: it is sent from
    the write, not 13 ms later at the next tick, and in the missed tick's slot (no gap)."""
    clock = manual_pool.clock
    phone = await UdpPeer.open()
    stream, _ = await started_stream(manual_pool, phone.address)
    await stream.send_bytes(b"\x01" * 160)
    stream.tick(clock.now)
    clock.now += 0.020
    stream.tick(clock.now)  # nothing queued in the middle of the answer: no packet
    clock.now += 0.007
    await stream.send_bytes(b"\x02" * 320)
    first, late = await phone.packets(2)  # no tick ran: the write sent it
    assert late.payload == b"\x02" * 160 and not late.marker
    assert (late.timestamp - first.timestamp) & 0xFFFFFFFF == 160 and (late.sequence - first.sequence) & 0xFFFF == 1
    clock.now += 0.013
    stream.tick(clock.now)
    [on_time] = await phone.packets(1)
    assert on_time.payload == b"\x02" * 160 and (on_time.timestamp - late.timestamp) & 0xFFFFFFFF == 160
    phone.close()


async def test_the_hold_spans_the_jitter_allowance_and_none_is_held_without_one():
    """SIP_JITTER_ALLOWANCE_MS is what the far end buffers: late audio waits as many ticks as it
    spans (two for 40 ms), and with no allowance a tick that finds nothing sends silence at once."""
    first, last = free_port_range(2)
    for allowance_ms, held_ticks in ((40.0, 2), (0.0, 0)):
        pool = RtpPortPool(first, last, "127.0.0.1", metrics=BridgeMetrics(), jitter_allowance_ms=allowance_ms,
                           clock=FakeClock(), paced=False)  # fmt: skip
        try:
            clock = pool.clock
            assert isinstance(clock, FakeClock)
            phone = await UdpPeer.open()
            stream, _ = await started_stream(pool, phone.address)
            await stream.send_bytes(b"\x01" * 160)
            stream.tick(clock.now)
            for _ in range(held_ticks):
                clock.now += 0.020
                stream.tick(clock.now)
            clock.now += 0.020
            stream.tick(clock.now)  # past the bound: comfort silence
            voiced, silence = await phone.packets(2)
            assert voiced.payload == b"\x01" * 160 and silence.payload == b"\xff" * 160
            assert (silence.timestamp - voiced.timestamp) & 0xFFFFFFFF == 160 * (held_ticks + 1)
            assert phone.pending() == 0
            phone.close()
        finally:
            await pool.aclose()


async def test_barge_in_stops_sending_within_one_packet_and_marks_echo_at_sent_plus_lead(manual_pool):
    clock = manual_pool.clock
    phone = await UdpPeer.open()
    stream, codec = await started_stream(manual_pool, phone.address)
    lead_s = stream.heard_lead_ms / 1000
    assert lead_s == 0.040  # no RTT yet: the jitter allowance alone
    await stream.send_bytes(b"\x01" * 800)  # 100 ms
    await stream.send_text(codec.mark("g0.0"))
    await stream.send_bytes(b"\x02" * 8000)  # a second
    await stream.send_text(codec.mark("g0.1"))
    first_tick = clock.now
    stream.tick(clock.now)
    for _ in range(4):
        clock.now += 0.020
        stream.tick(clock.now)
    # the 100 ms segment's last byte left with the fifth packet; it has played 20 ms + lead later
    clock.now = first_tick + 0.080 + 0.020 + lead_s - 0.002
    stream.tick(clock.now)  # (two ticks came due: the second segment's first two packets, back to back)
    assert stream.pending_messages == 0  # not yet
    clock.now = first_tick + 0.100 + lead_s
    stream.tick(clock.now)
    assert await parsed(stream, codec) == MarkEchoed("g0.0")
    await stream.send_text(codec.clear())  # barge-in
    assert await parsed(stream, codec) == MarkEchoed("g0.1")  # flushed at once
    clock.now += 0.020
    stream.tick(clock.now)
    packets = await phone.packets(9)
    assert [p.payload[0] for p in packets] == [1] * 5 + [2] * 3 + [0xFF]  # the next packet is silence
    phone.close()


async def test_rtcp_gives_the_round_trip_and_the_heard_lead(manual_pool: RtpPortPool):
    clock = manual_pool.clock
    phone, phone_rtcp = await peer_pair()
    stream = manual_pool.open("sip-call-1")
    assert stream is not None
    stream.configure(phone.address, 0, None)
    await begun(stream, SipCodec())
    phone.send(rtp(1, b"\x01" * 160), ("127.0.0.1", stream.local_port))
    await asyncio.wait_for(stream.receive(), TIMEOUT_S)  # latched
    stream.tick(clock.now)
    stream.send_report(clock.now)
    sr, sdes = parse_rtcp(await phone_rtcp.next())
    assert sr.packet_type == PacketType.SR and sdes.packet_type == PacketType.SDES
    assert sr.sender is not None and sr.sender.packets == 1
    [block] = sr.blocks  # our report on the phone's stream
    assert block.ssrc == SSRC and block.cumulative_lost == 0
    # the phone answers with an RR 150 ms later, having held our SR for 50 ms: RTT 100 ms
    clock.now += 0.150
    rr = build_report(SSRC, "phone", (ReportBlock(sr.ssrc, 64, 0, 1, 80, ntp_middle(sr.sender.ntp), 65536 // 20),))
    stranger = await UdpPeer.open(host="127.0.0.2")  # another host: its RTCP is not the call's
    stranger.send(rr, ("127.0.0.1", stream.local_port + 1))
    async with asyncio.timeout(TIMEOUT_S):
        while manual_pool.metrics.rtcp_packets_rejected == 0:
            await asyncio.sleep(0.01)
    assert stream.rtt_ms is None and stream.rtcp_latched is None
    stranger.close()
    phone_rtcp.send(rr, ("127.0.0.1", stream.local_port + 1))
    async with asyncio.timeout(TIMEOUT_S):
        while stream.rtt_ms is None:
            await asyncio.sleep(0.01)
    assert abs(stream.rtt_ms - 100.0) < 0.1
    assert abs(stream.heard_lead_ms - (50.0 + 40.0)) < 0.1
    assert stream.rtcp.peer_jitter_ms == 10.0 and stream.rtcp.peer_loss == 0.25  # how our RTP reaches the phone
    phone_rtcp.send(b"\x80\xc9\x00\x09junk", ("127.0.0.1", stream.local_port + 1))
    async with asyncio.timeout(TIMEOUT_S):
        while manual_pool.metrics.rtcp_packets_rejected == 1:
            await asyncio.sleep(0.01)
    phone.close()
    phone_rtcp.close()


async def test_a_codec_change_by_re_invite_is_transcoded_for_the_session(manual_pool: RtpPortPool):
    clock = manual_pool.clock
    phone = await UdpPeer.open()
    stream = manual_pool.open("sip-call-1")
    assert stream is not None
    stream.configure(phone.address, 0, None)
    codec = SipCodec()
    await begun(stream, codec)  # the session speaks μ-law for the whole call
    stream.configure(phone.address, 8, None)  # PCMA from now on
    phone.send(rtp(1, b"\xd5" * 160, pt=8), ("127.0.0.1", stream.local_port))
    assert (await parsed(stream, codec)).payload == ulaw_encode(alaw_decode(b"\xd5" * 160))
    await stream.send_bytes(b"\xff" * 160)
    stream.tick(clock.now)
    [packet] = await phone.packets(1)
    assert packet.payload_type == 8 and packet.payload == b"\xd5" * 160  # μ-law silence as A-law silence
    phone.close()


async def test_hang_ups_both_ways_and_close_is_idempotent(pool: RtpPortPool):
    phone = await UdpPeer.open()
    stream = pool.open("sip-call-1")
    assert stream is not None
    stream.configure(phone.address, 0, None)
    await begun(stream, SipCodec())
    stream.hang_up_by_peer()
    assert (await receive(stream))["type"] == "websocket.disconnect"
    closed: list[int] = []
    other = pool.open("sip-call-2")
    assert other is not None
    other.on_closed = lambda: closed.append(1)
    other.configure(phone.address, 0, None)
    other.begin(start())
    await other.close(1000, "scenario hung up")
    await other.close(1000, "again")
    assert closed == [1]
    with pytest.raises(RuntimeError):
        await other.send_bytes(b"\xff" * 160)
    for s in (stream, other):
        await s.aclose()
        await s.aclose()
    assert pool.free == pool.capacity
    phone.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_the_pool_runs_out_and_every_port_comes_back_after_a_thousand_calls():
    first, last = free_port_range(3)
    pool = RtpPortPool(first, last, "127.0.0.1", metrics=BridgeMetrics())
    phone = await UdpPeer.open()
    fds_before = open_fds()
    streams = [pool.open(f"call-{i}") for i in range(3)]
    assert all(streams) and len({s.local_port for s in streams if s}) == 3
    assert pool.open("one too many") is None and pool.metrics.rtp_ports_exhausted == 1
    for s in streams:
        assert s is not None
        await s.aclose()
    for i in range(1000):
        stream = pool.open(f"call-{i}")
        assert stream is not None
        stream.configure(phone.address, 0, 101)
        stream.begin(start())
        if i % 100 == 0:
            await asyncio.sleep(0)  # let a tick or two run
        await stream.close()
        await stream.aclose()
    assert pool.free == pool.capacity == 3 and not pool.streams
    assert open_fds() == fds_before  # no socket left behind
    phone.close()


async def test_a_alaw_call_starts_in_alaw(manual_pool: RtpPortPool):
    phone = await UdpPeer.open()
    stream, _ = await started_stream(manual_pool, phone.address, payload_type=8, audio_format=ALAW_8K)
    stream.tick(manual_pool.clock.now)  # type: ignore[misc]
    [packet] = await phone.packets(1)
    assert packet.payload_type == 8 and packet.payload == b"\xd5" * 160  # A-law comfort silence
    phone.close()


async def test_a_session_that_does_not_read_holds_at_most_a_second_of_caller_audio(manual_pool: RtpPortPool):
    stream, codec = await started_stream(manual_pool, ("127.0.0.1", 9))
    for seq in range(120):
        stream.rtp_datagram(rtp(seq, bytes([seq]) * 160), ("127.0.0.1", 40000), 1.0)
    assert stream.pending_messages == MAX_INBOUND_FRAMES == 50
    assert manual_pool.metrics.rtp_frames_overflowed == 70
    assert (await parsed(stream, codec)).payload == b"\x00" * 160  # the oldest kept; the newest dropped
    stream.rtp_datagram(rtp(120, b"\x78" * 160), ("127.0.0.1", 40000), 1.0)
    assert stream.pending_messages == 50


# --- a stranger's datagrams never raise out of the stream, and what they cost is bounded ---------------

datagrams = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda pt, seq, ts, ssrc, payload, marker: build_rtp(pt, seq, ts, ssrc, payload, marker),
        st.sampled_from([0, 8, 13, 101, 127]),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.sampled_from([SSRC, SSRC + 1]),
        st.binary(max_size=200),
        st.booleans(),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(datagrams, st.booleans(), st.floats(0, 0.2)), max_size=80))
async def test_fuzzed_datagrams_never_raise_and_never_pile_up(manual_pool: RtpPortPool, arrivals):
    stream = manual_pool.open("sip-fuzz")
    assert stream is not None
    try:
        stream.configure(("127.0.0.1", 9), 0, 101)
        codec = SipCodec()
        await begun(stream, codec)
        now = manual_pool.clock()  # type: ignore[misc]
        for data, from_elsewhere, step in arrivals:
            now += step
            source = ("127.0.0.1", 40000 if from_elsewhere else 40001)
            stream.rtp_datagram(data, source, now)
            stream.rtcp_datagram(data, source, now)
            stream.tick(now)
        audio = 0
        while stream.pending_messages:
            message = await stream.receive()
            event = codec.parse(message.get("bytes", message.get("text")))  # all it passes on is well-formed
            audio += isinstance(event, AudioReceived)
        assert audio <= MAX_INBOUND_FRAMES  # a session that does not read holds at most a second
        assert audio == 0 or stream.latched is not None
    finally:
        await stream.aclose()
