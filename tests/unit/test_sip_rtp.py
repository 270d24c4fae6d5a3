"""SIP media, sans-I/O: RTP headers and sender, jitter buffer, RTCP, RFC 4733, the send clock and queue."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_bridge.carriers.sip.dtmf import DtmfReceiver, build_event, digit_train, parse_event
from telephony_bridge.carriers.sip.jitter import JitterBuffer, Lost, Outcome
from telephony_bridge.carriers.sip.rtcp import (
    PacketType,
    ReceiverStats,
    ReportBlock,
    SenderInfo,
    build_bye,
    build_report,
    ntp_middle,
    ntp_timestamp,
    parse_rtcp,
    round_trip_ms,
)
from telephony_bridge.carriers.sip.rtp import (
    RtpError,
    RtpPacket,
    RtpSender,
    build_rtp,
    looks_like_rtcp,
    parse_rtp,
    seq_distance,
)
from telephony_bridge.carriers.sip.send_side import MAX_CATCH_UP_TICKS, MAX_HELD_TICKS, SendSide
from telephony_bridge.carriers.sip.sending import OutboundAudio, PassedMark, SendClock

# --- RTP ------------------------------------------------------------------------------------------


def test_an_rtp_header_round_trips_with_csrcs_extension_padding_and_marker():
    data = build_rtp(
        8,
        65535,
        0xFFFFFFFF,
        0xDEADBEEF,
        b"\xd5" * 160,
        marker=True,
        csrcs=(1, 2),
        extension=(0xBEDE, b"abc"),
        padding=4,
    )
    packet = parse_rtp(data)
    assert packet == RtpPacket(8, 65535, 0xFFFFFFFF, 0xDEADBEEF, b"\xd5" * 160, True, (1, 2), (0xBEDE, b"abc\x00"))
    assert len(data) == 12 + 8 + 4 + 4 + 160 + 4


def test_a_captured_pcmu_packet_parses():
    # A PCMU packet as a softphone sends it: V=2, M=1, PT=0, seq 0x1234, ts 0x000a0000, SSRC 0x11223344.
    header = bytes.fromhex("80801234000a000011223344")
    packet = parse_rtp(header + b"\x7f" * 160)
    assert (packet.payload_type, packet.marker, packet.sequence, packet.timestamp, packet.ssrc) == (
        0,
        True,
        0x1234,
        0xA0000,
        0x11223344,
    )
    assert packet.payload == b"\x7f" * 160


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x80\x00" + b"\x00" * 9, "shorter"),
        (bytes([0x40, 0]) + b"\x00" * 10, "version 1"),
        (bytes([0x8F, 0]) + b"\x00" * 10, "CSRCs"),
        (bytes([0x90, 0]) + b"\x00" * 10 + b"\x00\x00\x00\x05", "extension of 5 words"),
        (bytes([0xA0, 0]) + b"\x00" * 10 + b"\x00\x00\x09", "padding"),
        (bytes([0xA0, 0]) + b"\x00" * 10 + b"\x00\x00\x00", "0 bytes of padding"),
        (bytes([0x80, 200]) + b"\x00" * 10, "RTCP"),
    ],
)
def test_malformed_rtp_is_refused_with_a_reason(data: bytes, reason: str):
    with pytest.raises(RtpError, match=reason):
        parse_rtp(data)


def test_sequence_distance_wraps():
    assert seq_distance(0, 65535) == 1
    assert seq_distance(65535, 0) == -1
    assert seq_distance(5, 5) == 0
    assert seq_distance(32767, 0) == 32767 and seq_distance(32768, 0) == -32768


def test_the_sender_keeps_sequence_and_timestamp_continuous_and_marks_talk_spurts():
    sender = RtpSender(ssrc=7, sequence=65534, timestamp=0xFFFFFF00)
    packets = []
    for voiced in (False, True, True, False, True):
        packets.append(parse_rtp(sender.audio(0, b"\xff" * 160, voiced)))
        sender.advance(160)
    sender.advance(320)  # two ticks on hold: no packets, the media clock moves on
    sender.talk_spurt_ended()
    packets.append(parse_rtp(sender.audio(0, b"\x00" * 160, True)))
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1, 2, 3]
    assert [p.timestamp for p in packets] == [0xFFFFFF00, 0xFFFFFFA0, 0x40, 0xE0, 0x180, 0x360]
    assert [p.marker for p in packets] == [False, True, False, False, True, True]
    assert {p.ssrc for p in packets} == {7}
    assert sender.packets_sent == 6 and sender.payload_bytes_sent == 960


def test_rtcp_is_told_apart_from_rtp():
    assert looks_like_rtcp(build_report(1, "x"))
    assert not looks_like_rtcp(build_rtp(0, 1, 1, 1, b"\xff"))


# --- jitter buffer --------------------------------------------------------------------------------


def pkt(seq: int, pt: int = 0, ssrc: int = 1, payload: bytes | None = None) -> RtpPacket:
    return RtpPacket(pt, seq & 0xFFFF, seq * 160, ssrc, payload if payload is not None else bytes([seq & 0xFF]) * 4)


def released_seqs(items: list[RtpPacket | Lost]) -> list[object]:
    return [item.sequence if isinstance(item, RtpPacket) else item for item in items]


def test_in_order_packets_go_out_at_once_across_the_wrap():
    jitter = JitterBuffer(frozenset({0}))
    out = []
    for seq in (65534, 65535, 0, 1):
        pushed = jitter.push(pkt(seq), 0.0)
        assert pushed.outcome is Outcome.ACCEPTED
        out += released_seqs(pushed.released)
    assert out == [65534, 65535, 0, 1] and jitter.held == 0


def test_a_reordered_packet_is_put_back_in_place_and_a_duplicate_dropped():
    jitter = JitterBuffer(frozenset({0}))
    out: list[object] = []
    out += released_seqs(jitter.push(pkt(10), 0).released)
    assert jitter.push(pkt(12), 20).released == []  # held behind the gap
    out += released_seqs(jitter.push(pkt(11), 25).released)  # the straggler closes it
    assert jitter.push(pkt(11), 30).outcome is Outcome.DUPLICATE
    assert jitter.push(pkt(12), 30).outcome is Outcome.DUPLICATE
    out += released_seqs(jitter.push(pkt(13), 40).released)
    assert jitter.push(pkt(13), 41).outcome is Outcome.DUPLICATE  # in the held window... and already out
    assert out == [10, 11, 12, 13] and jitter.lost == 0


def test_a_loss_is_released_after_the_window_fills_and_a_late_straggler_is_dropped():
    jitter = JitterBuffer(frozenset({0}), window=3, max_wait_ms=1000)
    out: list[object] = released_seqs(jitter.push(pkt(1), 0).released)
    for seq in (4, 5):
        out += released_seqs(jitter.push(pkt(seq), seq).released)
    assert out == [1]  # 2 and 3 may still come
    out += released_seqs(jitter.push(pkt(6), 6).released)
    assert out == [1, Lost(2), 4, 5, 6] and jitter.lost == 2
    assert jitter.push(pkt(3), 7).outcome is Outcome.LATE


def test_a_loss_is_released_by_time_when_the_stream_pauses():
    jitter = JitterBuffer(frozenset({0}), window=3, max_wait_ms=60)
    jitter.push(pkt(1), 0)
    assert jitter.push(pkt(3), 10).released == []
    assert jitter.poll(69) == []
    assert released_seqs(jitter.poll(70)) == [Lost(1), 3]


def test_a_new_ssrc_flushes_the_old_stream_and_starts_again():
    jitter = JitterBuffer(frozenset({0}))
    jitter.push(pkt(1), 0)
    jitter.push(pkt(3), 1)  # held
    pushed = jitter.push(pkt(500, ssrc=2), 2)
    assert pushed.outcome is Outcome.ACCEPTED
    assert released_seqs(pushed.released) == [3, 500]  # the old stream's held packet, then the new one
    assert jitter.ssrc == 2 and jitter.resets == 1 and jitter.lost == 0


def test_wrong_payload_types_are_ignored_but_keep_their_place():
    jitter = JitterBuffer(frozenset({0, 101}))
    assert released_seqs(jitter.push(pkt(1), 0).released) == [1]
    assert jitter.push(pkt(2, pt=13), 1).outcome is Outcome.WRONG_PAYLOAD_TYPE  # comfort noise
    assert released_seqs(jitter.push(pkt(3, pt=101), 2).released) == [3]
    assert jitter.lost == 0
    assert jitter.push(pkt(9, pt=13, ssrc=99), 3).outcome is Outcome.WRONG_PAYLOAD_TYPE
    assert jitter.ssrc == 1  # a stray packet of another payload type starts no new stream


def test_a_sequence_jump_is_believed_only_when_the_next_packet_follows_it():
    jitter = JitterBuffer(frozenset({0}))
    jitter.push(pkt(100), 0)
    assert jitter.push(pkt(30000), 1).outcome is Outcome.OUT_OF_SEQUENCE
    assert released_seqs(jitter.push(pkt(101), 2).released) == [101]  # the stray packet changed nothing
    assert jitter.push(pkt(40000), 3).outcome is Outcome.OUT_OF_SEQUENCE
    assert released_seqs(jitter.push(pkt(40001), 4).released) == [40001]  # the sender restarted
    assert jitter.resets == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=60))
def test_jitter_output_is_in_order_without_duplicates_whatever_the_arrival_order(arrivals):
    jitter = JitterBuffer(frozenset({0}), window=3, max_wait_ms=60)
    out: list[RtpPacket | Lost] = []
    now = 0.0
    for seq, late in arrivals:
        now += 50 if late else 1
        out += jitter.push(pkt(1000 + seq), now).released
        out += jitter.poll(now)
    out += jitter.poll(now + 1000)
    sequences = [item.sequence for item in out if isinstance(item, RtpPacket)]
    assert len(sequences) == len(set(sequences))
    position = None
    for item in out:  # each release continues where the last left off, losses included
        if isinstance(item, RtpPacket):
            assert position is None or item.sequence == position
            position = item.sequence + 1
        else:
            assert position is not None and item.packets > 0
            position += item.packets


# --- RTCP -----------------------------------------------------------------------------------------


def test_a_sender_report_round_trips_with_its_block_and_cname():
    block = ReportBlock(0xABCD, 25, -3, 0x1_0005, 42, 0x12345678, 65536)
    info = SenderInfo(ntp_timestamp(1_700_000_000.25), 160_000, 100, 16_000)
    data = build_report(0x1111, "bridge@127.0.0.1", (block,), info)
    sr, sdes = parse_rtcp(data)
    assert sr.packet_type == PacketType.SR and sr.ssrc == 0x1111 and sr.sender == info and sr.blocks == (block,)
    assert sdes.packet_type == PacketType.SDES
    rr, _ = parse_rtcp(build_report(0x2222, "x", (block,)))
    assert rr.packet_type == PacketType.RR and rr.sender is None and rr.blocks == (block,)
    *_, bye = parse_rtcp(build_bye(0x3333, "x"))
    assert bye.packet_type == PacketType.BYE and bye.ssrc == 0x3333


def test_round_trip_time_from_lsr_and_dlsr():
    sent = ntp_timestamp(1000.0)
    # the peer held our SR for 0.5 s and its report arrived 0.62 s after we sent the SR: RTT 120 ms
    block = ReportBlock(1, 0, 0, 0, 0, ntp_middle(sent), int(0.5 * 65536))
    rtt = round_trip_ms(block, ntp_timestamp(1000.62))
    assert rtt is not None and abs(rtt - 120) < 0.1
    assert round_trip_ms(block._replace(lsr=0), ntp_timestamp(1000.62)) is None  # no SR of ours yet
    assert round_trip_ms(block, ntp_timestamp(1000.3)) is None  # negative: ignored


def test_receiver_stats_count_loss_and_jitter():
    stats = ReceiverStats()
    assert stats.block(0.0) is None
    for seq in (65530, 65531, 65533, 65534, 0, 1, 3):  # 3 lost, across the wrap
        stats.received(9, seq, seq * 160, seq * 160)  # arrival exactly on time: no jitter
    block = stats.block(1.0)
    assert block is not None
    assert block.ssrc == 9 and block.cumulative_lost == 3 and block.highest_sequence == 0x1_0003
    assert block.fraction_lost == (3 << 8) // 10 and block.jitter == 0 and block.lsr == 0
    stats.received(9, 4, 4 * 160, 4 * 160 + 800)  # 100 ms late
    stats.sender_report(ntp_timestamp(50.0), 2.0)
    block = stats.block(2.25)
    assert block is not None and block.jitter == 800 // 16 and block.fraction_lost == 0
    assert block.lsr == ntp_middle(ntp_timestamp(50.0)) and block.dlsr == 65536 // 4


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81\xc9\x00\x07" + b"\x00" * 4,  # says 32 bytes, has 8
        b"\x81\xca\x00\x01" + b"\x00" * 4,  # SDES first
        b"\x41\xc9\x00\x01" + b"\x00" * 4,  # version 1
        b"\x82\xc9\x00\x01" + b"\x00" * 4,  # two blocks that are not there
        b"\x80\xc9\x00\x01\x00\x00\x00",  # not a multiple of 4
    ],
)
def test_malformed_rtcp_is_refused(data: bytes):
    with pytest.raises(RtpError):
        parse_rtcp(data)


def test_a_bye_sent_alone_is_rtcp_as_phones_send_it_at_hang_up():
    """baresip sends a BYE with no report before it: valid RTCP, not a malformed packet to log."""
    bye_alone = build_bye(0x4444, "phone")[len(build_report(0x4444, "phone", ())) :]
    assert [(p.packet_type, p.ssrc) for p in parse_rtcp(bye_alone)] == [(PacketType.BYE, 0x4444)]


# --- RFC 4733 -------------------------------------------------------------------------------------


def test_a_key_press_is_reported_once_for_its_whole_packet_train():
    receiver = DtmfReceiver()
    train = digit_train("#")
    events = [tick.payload for tick in train if tick.payload is not None]
    assert len(events) == 4 + 3  # 100 ms in 20 ms updates, the end packet three times
    assert [parse_event(e).end for e in events] == [False] * 4 + [True] * 3
    assert [parse_event(e).duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert train[0].first and not any(t.first for t in train[1:])
    assert train[-1].payload is None  # then a pause
    digits = [receiver.feed(RtpPacket(101, i, 8000, 5, e)) for i, e in enumerate(events)]
    assert digits == ["#"] + [None] * 6
    # the next press has a new timestamp; a stray end packet of the first still counts once only
    assert receiver.feed(RtpPacket(101, 10, 9600, 5, build_event(5, False, 160))) == "5"
    assert receiver.feed(RtpPacket(101, 11, 8000, 5, events[-1])) is None
    assert receiver.feed(RtpPacket(101, 12, 9600, 5, build_event(5, True, 800))) is None
    assert receiver.feed(RtpPacket(101, 13, 11200, 5, build_event(16, True, 800))) is None  # flash: no digit


def test_a_captured_telephone_event_parses():
    # event 1, E=1, volume 10, duration 1280 (RFC 4733 §2.3's layout)
    event = parse_event(bytes.fromhex("018a0500"))
    assert event.digit == "1" and event.end and event.volume == 10 and event.duration == 1280
    with pytest.raises(RtpError):
        parse_event(b"\x01\x8a")
    with pytest.raises(ValueError):
        digit_train("x")


# --- sending clock and queue ----------------------------------------------------------------------


def test_the_send_clock_does_not_drift_or_burst():
    clock = SendClock(1000.0)
    now, sent, ticks = 1000.0, 0, 0
    for step in [7.0, 13.0, 19.5, 0.7] * 250:  # uneven wake-ups (none as long as a frame), 10 050 ms
        now += step
        due = clock.due(now)
        sent += 1 if due else 0
        ticks += due
    # one packet per 20 ms elapsed, never two for a wake-up, and the clock neither ahead nor behind
    assert sent == ticks == int((now + 1 - 1000) // 20) + 1 == 503
    assert clock.next_ms - 20 <= now + 1 < clock.next_ms
    stalled = SendClock(0.0)
    assert stalled.due(0.0) == 1
    assert stalled.due(95.0) == 4  # 20, 40, 60, 80 came due: one packet, four ticks of timestamp
    assert stalled.due(99.5) == 1  # 100 is due (a millisecond early is on time)
    assert stalled.due(105.0) == 0


def test_the_outbound_queue_cuts_frames_and_places_marks():
    queue = OutboundAudio(max_bytes=1000)
    queue.append(b"a" * 200)
    queue.mark("m1")
    queue.append(b"b" * 100)
    queue.mark("m2")
    frame, marks = queue.take(160)
    assert frame == b"a" * 160 and marks == []
    frame, marks = queue.take(160)
    assert frame == b"a" * 40 + b"b" * 100 and marks == [PassedMark("m1", 40), PassedMark("m2", 140)]
    assert queue.take(160) == (None, []) and queue.empty
    queue.mark("m3")  # nothing before it
    assert queue.take(160) == (None, [PassedMark("m3", 0)])
    assert not queue.append(b"x" * 1001)
    queue.append(b"x" * 500)
    queue.mark("m4")
    assert queue.clear() == ["m4"] and queue.queued_bytes == 0 and queue.take(160) == (None, [])


# --- fuzz: a stranger's datagram never raises anything but RtpError ----------------------------------


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_datagrams_raise_only_rtp_error(data: bytes):
    for parse in (parse_rtp, parse_rtcp, parse_event):
        try:
            parse(data)
        except RtpError:
            pass


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 15), st.integers(0, 127), st.binary(max_size=64), st.integers(0, 300), st.binary(max_size=40))
def test_fuzzed_rtp_shaped_datagrams_parse_or_raise_rtp_error(cc, pt, body, cut, extra):
    data = struct.pack("!BBHII", 0x80 | 0x10 * (len(extra) % 2) | 0x20 * (cut % 2) | cc, pt, 1, 2, 3) + body + extra
    data = data[: max(cut, 12)]
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert packet.payload_type == pt and len(packet.csrcs) == cc and len(packet.payload) <= len(data) - 12


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 31), st.binary(max_size=60)), min_size=1, max_size=4))
def test_fuzzed_compound_rtcp_parses_or_raises_rtp_error(parts):
    data = b""
    for packet_type, count, body in parts:
        body += b"\x00" * (-len(body) % 4)
        data += struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body
    try:
        packets = parse_rtcp(data)
    except RtpError:
        return
    assert packets[0].packet_type in (PacketType.SR, PacketType.RR, PacketType.BYE, PacketType.APP)
    assert all(len(p.blocks) == count for p, (t, count, _) in zip(packets, parts, strict=True) if t in (200, 201))


# --- the send side: what each tick sends, and when marks have played -----------------------------


def one(packets: list[bytes]) -> bytes:
    """The tick's only packet (b"" when it sent none)."""
    assert len(packets) <= 1
    return packets[0] if packets else b""


def send_side(lead_s: float = 0.04) -> SendSide:
    side = SendSide(max_queued_bytes=8000, sender=RtpSender(ssrc=1, sequence=0, timestamp=0))
    side.payload_type, side.event_payload_type, side.sending = 0, 101, True
    return side


def test_marks_play_at_sent_plus_lead_wherever_they_fall_in_a_frame():
    side = send_side()
    side.write(b"\x01" * 200)
    side.mark("a", now_s=10.0)  # after 200 bytes: the second frame's 40th byte
    side.write(b"\x02" * 120)
    side.mark("b", now_s=10.0)  # after 320 bytes: the end of the second frame
    first = parse_rtp(one(side.tick(10.000, 1, 0.04)))
    second = parse_rtp(one(side.tick(10.020, 1, 0.04)))
    assert first.marker and not second.marker and second.payload == b"\x01" * 40 + b"\x02" * 120
    assert side.due_echoes(10.064) == []
    assert side.due_echoes(10.065) == ["a"]  # sent at 10.020, 40 bytes (5 ms) in, + 40 ms lead
    assert side.next_echo_s == pytest.approx(10.080)  # 160 bytes in (20 ms) + 40 ms
    assert side.due_echoes(10.080) == ["b"]
    side.mark("c", now_s=10.030)  # nothing queued before it: when the far end has played it all
    assert side.due_echoes(10.079) == [] and side.due_echoes(10.080) == ["c"]


def test_clear_flushes_queued_and_due_marks_and_the_next_tick_is_silence():
    side = send_side()
    side.write(b"\x01" * 800)
    side.mark("played-later", now_s=0.0)
    side.tick(0.0, 1, 0.04)
    side.write(b"\x01" * 160)
    side.mark("queued", now_s=0.01)
    assert side.clear() == ["played-later", "queued"]
    assert parse_rtp(one(side.tick(0.02, 1, 0.04))).payload == b"\xff" * 160
    assert side.due_echoes(100.0) == []


def test_hold_sends_nothing_and_the_next_audio_starts_a_talk_spurt():
    side = send_side()
    side.write(b"\x01" * 480)
    assert parse_rtp(one(side.tick(0.0, 1, 0.04))).marker
    side.sending = False  # a re-INVITE put the call on hold
    assert side.tick(0.02, 1, 0.04) == [] and side.tick(0.04, 1, 0.04) == []
    side.sending = True
    resumed = parse_rtp(one(side.tick(0.06, 1, 0.04)))
    assert resumed.marker and resumed.payload == b"\x01" * 160 and resumed.timestamp == 480 and resumed.sequence == 1
    # Four ticks due at once: the frame still queued goes for the first missed tick, the two with
    # nothing queued are a gap (late already, they cannot wait for more), and the due tick sends
    # comfort silence.
    made_up, due = (parse_rtp(packet) for packet in side.tick(0.14, 4, 0.04))
    assert (made_up.payload, made_up.timestamp, made_up.sequence) == (b"\x01" * 160, 640, 2)
    assert (due.payload, due.timestamp, due.sequence) == (b"\xff" * 160, 640 + 160 * 3, 3)


def test_late_audio_mid_spurt_goes_at_once_in_its_held_slot():
    """A delta that arrives a few ms after its tick would have cost a tick of silence and pushed
    the rest of the answer 20 ms later for good; it goes in the tick's own slot instead."""
    side = send_side()
    side.write(b"\x01" * 160)
    first = parse_rtp(one(side.tick(0.0, 1, 0.04)))
    assert side.tick(0.02, 1, 0.04) == [] and side.held_ticks == 1  # the model's next delta is late
    side.write(b"\x02" * 320)
    (late,) = (parse_rtp(packet) for packet in side.serve_held(0.027, 0.04))
    on_time = parse_rtp(one(side.tick(0.04, 1, 0.04)))
    assert [p.timestamp for p in (first, late, on_time)] == [0, 160, 320]
    assert [p.sequence for p in (first, late, on_time)] == [0, 1, 2]
    assert first.marker and not late.marker and late.payload == b"\x02" * 160 and side.held_ticks == 0
    assert side.serve_held(0.05, 0.04) == []  # nothing held: audio waits for its tick


def test_audio_that_never_comes_ends_the_spurt_after_the_hold_bound():
    side = send_side()
    side.write(b"\x01" * 160)
    side.tick(0.0, 1, 0.04)
    held = [side.tick(0.02 * k, 1, 0.04) for k in range(1, 1 + MAX_HELD_TICKS)]
    assert held == [[]] * MAX_HELD_TICKS and side.held_ticks == MAX_HELD_TICKS == 2
    k = 1 + MAX_HELD_TICKS
    silence = parse_rtp(one(side.tick(0.02 * k, 1, 0.04)))
    # the held ticks are a gap (silence suppression: the sequence is unbroken, the timestamp is
    # this tick's own), then comfort silence; the next audio starts a new talk spurt
    assert (silence.payload, silence.sequence, silence.timestamp) == (b"\xff" * 160, 1, 160 * k)
    assert side.held_ticks == 0
    side.write(b"\x01" * 160)
    assert parse_rtp(one(side.tick(0.02 * (k + 1), 1, 0.04))).marker


def test_the_hold_bound_follows_the_far_ends_jitter_allowance():
    for bound in (0, 1, 3):
        side = send_side()
        side.max_held_ticks = bound
        side.write(b"\x01" * 160)
        side.tick(0.0, 1, 0.04)
        packets = [side.tick(0.02 * k, 1, 0.04) for k in range(1, bound + 2)]
        assert packets[:bound] == [[]] * bound and len(packets[bound]) == 1  # then comfort silence


def test_a_short_write_while_held_waits_for_the_rest_of_its_frame():
    """Silence padded into the middle of a sentence is a click; a held tick waits for a whole frame."""
    side = send_side()
    side.write(b"\x01" * 160)
    side.tick(0.0, 1, 0.04)
    assert side.tick(0.02, 1, 0.04) == []
    side.write(b"\x02" * 100)
    assert side.serve_held(0.025, 0.04) == [] and side.held_ticks == 1
    side.write(b"\x03" * 100)
    (late,) = (parse_rtp(packet) for packet in side.serve_held(0.03, 0.04))
    assert late.payload == b"\x02" * 100 + b"\x03" * 60 and late.timestamp == 160


def test_a_short_last_piece_goes_padded_once_the_tick_has_waited():
    side = send_side()
    side.write(b"\x01" * 260)
    side.tick(0.0, 1, 0.04)
    assert side.tick(0.02, 1, 0.04) == []  # 100 bytes: the rest of the frame may be on its way
    assert side.tick(0.04, 1, 0.04) == [] and side.held_ticks == 2
    # It was not (the end of the answer): the piece goes padded in its own slot, and the ticks
    # after it, after voiced audio, are held in turn; nothing comes, and comfort silence follows.
    (last,) = (parse_rtp(packet) for packet in side.tick(0.06, 1, 0.04))
    assert last.payload == b"\x01" * 100 + b"\xff" * 60 and last.timestamp == 160 and side.held_ticks == 2
    silence = parse_rtp(one(side.tick(0.08, 1, 0.04)))
    assert silence.payload == b"\xff" * 160 and (silence.timestamp, silence.sequence) == (160 * 4, 2)


def test_marks_after_a_burst_never_play_before_the_burst_has():
    """One play cursor: a frame sent after a catch-up burst plays after the burst's last frame."""
    side = send_side()
    side.write(b"\x01" * 160 * 5)
    side.mark("after five", now_s=0.0)
    side.write(b"\x01" * 160)
    side.tick(0.0, 1, 0.04)
    assert len(side.tick(0.06, 3, 0.04)) == 3  # frames 2-4 back to back: they play until 0.16
    side.tick(0.08, 1, 0.04)  # frame 5 leaves at 0.08, but plays after frame 4: 0.16 to 0.18
    assert side.due_echoes(0.1799) == []
    assert side.due_echoes(0.18) == ["after five"]


def test_a_clear_or_a_digit_drops_the_held_tick_as_a_gap():
    for interrupt in ("clear", "digits"):
        side = send_side()
        side.write(b"\x01" * 160)
        side.tick(0.0, 1, 0.04)
        assert side.tick(0.02, 1, 0.04) == [] and side.held_ticks == 1
        side.clear() if interrupt == "clear" else side.digits("5")
        assert side.held_ticks == 0
        after = parse_rtp(one(side.tick(0.04, 1, 0.04)))
        assert after.timestamp == 320 and after.sequence == 1  # the held slot is a gap, not reused
        assert after.payload_type == (0 if interrupt == "clear" else 101)


def test_no_tick_is_held_outside_a_talk_spurt_or_on_hold():
    side = send_side()
    assert parse_rtp(one(side.tick(0.0, 1, 0.04))).payload == b"\xff" * 160  # never spoke: silence
    side.write(b"\x01" * 160)
    side.tick(0.02, 1, 0.04)
    side.clear()  # barge-in: the spurt is over, not late
    assert parse_rtp(one(side.tick(0.04, 1, 0.04))).payload == b"\xff" * 160 and side.held_ticks == 0
    side.write(b"\x01" * 160)
    side.tick(0.06, 1, 0.04)
    assert side.tick(0.08, 1, 0.04) == [] and side.held_ticks == 1
    side.sending = False  # put on hold while a tick was held: the held tick is a gap
    assert side.tick(0.10, 1, 0.04) == [] and side.held_ticks == 0
    side.write(b"\x01" * 160)
    assert side.serve_held(0.11, 0.04) == []


def test_a_stall_is_made_up_back_to_back_up_to_a_bound_and_the_rest_is_a_gap():
    """Audio served one packet per late tick would play later and later under load; a short
    stall's audio goes at once, a long one's oldest ticks are skipped by the timestamp."""
    side = send_side()
    side.write(bytes(range(160)) * 4)
    side.mark("after four frames", now_s=0.0)
    side.write(bytes(range(160)) * 16)
    first = parse_rtp(one(side.tick(0.0, 1, 0.04)))
    burst = [parse_rtp(packet) for packet in side.tick(0.06, 3, 0.04)]  # 20 and 40 ms were missed
    assert [p.timestamp for p in burst] == [160, 320, 480] and [p.sequence for p in burst] == [1, 2, 3]
    long_stall = [parse_rtp(packet) for packet in side.tick(0.26, 10, 0.04)]  # 80 ... 260 ms due
    assert len(long_stall) == 1 + MAX_CATCH_UP_TICKS
    # the oldest six ticks are a gap; the last four go back to back with consecutive timestamps
    assert [p.timestamp for p in long_stall] == [160 * k for k in range(10, 14)]
    assert [p.sequence for p in long_stall] == [4, 5, 6, 7]
    assert first.marker and not any(p.marker for p in burst + long_stall)
    # The fourth frame was the burst's third packet: it plays two frames after the burst left
    # (0.06 + 0.04), ends 20 ms later, plus the 40 ms lead.
    assert side.due_echoes(0.1599) == []
    assert side.due_echoes(0.16) == ["after four frames"]


def test_digits_need_telephone_event_and_go_as_a_train():
    side = send_side()
    with pytest.raises(ValueError):
        side.digits("1x")
    side.digits("5")
    packets = [parse_rtp(one(side.tick(i * 0.02, 1, 0.04))) for i in range(11)]
    assert [p.payload_type for p in packets] == [101] * 7 + [0] * 4  # the tone, its end ×3, the pause, then silence
    assert packets[0].marker and len({p.timestamp for p in packets[:7]}) == 1
    side.event_payload_type = None
    with pytest.raises(ValueError):
        side.digits("5")
