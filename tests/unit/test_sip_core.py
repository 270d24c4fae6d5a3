"""SDP offer/answer, transactions, dialogs and digest (carriers/sip/), as plain data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_bridge.carriers.sip.dialog import Dialog, DialogTable, OutOfOrder, response_to
from telephony_bridge.carriers.sip.digest import AuthOutcome, DigestAuthenticator, authorization_for
from telephony_bridge.carriers.sip.message import SipParseError, SipRequest, parse_message
from telephony_bridge.carriers.sip.sdp import (
    Direction,
    NoCommonCodec,
    answer_offer,
    build_offer,
    parse_sdp,
    read_answer,
)
from telephony_bridge.carriers.sip.transaction import (
    T1,
    T2,
    Deliver,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Send,
    StartTimer,
    Terminated,
    TimedOut,
    Timer,
    TxState,
    server_key,
)


def offer(formats: str, extra: str = "", connection: str = "10.0.0.1") -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {connection}\r\ns=-\r\nc=IN IP4 {connection}\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP {formats}\r\na=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:96 telephone-event/8000\r\n{extra}"
    ).encode()


def test_answer_picks_the_first_offered_codec_we_support_and_keeps_the_event_number() -> None:
    negotiated, answer = answer_offer(parse_sdp(offer("18 8 0 96")), "192.0.2.5", 20002, 7)
    assert (negotiated.remote_host, negotiated.remote_port) == ("10.0.0.1", 4000)
    assert negotiated.payload_type == 8 and negotiated.telephone_event_pt == 96
    assert negotiated.direction is Direction.SENDRECV
    text = answer.decode()
    assert "m=audio 20002 RTP/AVP 8 96\r\n" in text and "c=IN IP4 192.0.2.5" in text
    assert "a=rtpmap:96 telephone-event/8000" in text and "a=ptime:20" in text
    assert read_answer(parse_sdp(answer)).payload_type == 8  # our answer reads back


def test_no_common_codec_is_refused() -> None:
    with pytest.raises(NoCommonCodec):
        answer_offer(parse_sdp(offer("18 96")), "192.0.2.5", 20002, 7)


@pytest.mark.parametrize(
    ("extra", "connection", "ours"),
    [
        ("a=sendonly\r\n", "10.0.0.1", Direction.RECVONLY),
        ("a=inactive\r\n", "10.0.0.1", Direction.INACTIVE),
        ("a=recvonly\r\n", "10.0.0.1", Direction.SENDONLY),
        ("", "0.0.0.0", Direction.INACTIVE),  # RFC 2543 hold
        ("a=sendrecv\r\n", "10.0.0.1", Direction.SENDRECV),
    ],
)
def test_hold_directions_are_mirrored(extra: str, connection: str, ours: Direction) -> None:
    negotiated, answer = answer_offer(parse_sdp(offer("0", extra, connection)), "192.0.2.5", 20002, 7)
    assert negotiated.direction is ours and f"a={ours.value}" in answer.decode()
    assert negotiated.telephone_event_pt is None  # 96 was not among the offered formats


@pytest.mark.parametrize("address", ["media.example.com", "127.0\x00.0.1", "10.0.0.300", ""])
def test_the_connection_address_must_be_an_ip_literal(address: str) -> None:
    with pytest.raises(SipParseError, match="c="):
        parse_sdp(offer("0", connection=address))


def test_extra_media_lines_are_rejected_with_port_zero() -> None:
    body = offer("0") + b"m=video 5000 RTP/AVP 31\r\n"
    _, answer = answer_offer(parse_sdp(body), "192.0.2.5", 20002, 7)
    assert "m=video 0 RTP/AVP 31" in answer.decode()


def test_our_offer_lists_both_g711_and_events() -> None:
    text = build_offer("192.0.2.5", 20004, 9).decode()
    assert "m=audio 20004 RTP/AVP 0 8 101" in text and "a=fmtp:101 0-16" in text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: ("v=0\r\n" + t).encode("utf-8", "ignore")))
def test_fuzz_sdp_raises_only_its_own_errors(data: bytes) -> None:
    try:
        answer_offer(parse_sdp(data), "192.0.2.5", 20002, 7)
    except (SipParseError, NoCommonCodec):
        pass


INVITE = parse_message(
    b"INVITE sip:+15550100@bridge SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport\r\n"
    b"From: <sip:+15551234@trunk>;tag=theirs\r\nTo: <sip:+15550100@bridge>\r\n"
    b"Call-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:caller@10.0.0.1:5062>\r\n"
    b"Record-Route: <sip:proxy1;lr>, <sip:proxy2;lr>\r\nContent-Length: 0\r\n\r\n"
)
assert isinstance(INVITE, SipRequest)


def sends(actions: list) -> list:
    return [action.message for action in actions if isinstance(action, Send)]


def test_invite_server_retransmits_the_2xx_doubling_to_t2_until_the_ack() -> None:
    tx = InviteServerTransaction(INVITE, reliable=False)
    trying = response_to(INVITE, 100, "Trying")
    assert sends(tx.respond(trying)) == [trying]
    assert sends(tx.on_request(INVITE)) == [trying]  # a retransmitted INVITE gets the last response
    ok = response_to(INVITE, 200, "OK", to_tag="ours")
    actions = tx.respond(ok)
    assert StartTimer(Timer.G, T1) in actions and StartTimer(Timer.H, 64 * T1) in actions
    delays = []
    for _ in range(5):
        fired = tx.on_timer(Timer.G)
        assert sends(fired) == [ok]
        delays += [action.delay_s for action in fired if isinstance(action, StartTimer)]
    assert delays == [2 * T1, 4 * T1, T2, T2, T2]
    assert tx.acknowledged() == [Terminated()] and tx.state is TxState.TERMINATED


def test_invite_server_without_ack_times_out_for_the_bridge_to_hang_up() -> None:
    tx = InviteServerTransaction(INVITE, reliable=True)
    assert not any(isinstance(a, StartTimer) and a.timer is Timer.G for a in tx.respond(response_to(INVITE, 200, "OK")))
    assert tx.on_timer(Timer.H) == [TimedOut(), Terminated()]


def test_invite_server_error_response_is_acked_inside_the_transaction() -> None:
    tx = InviteServerTransaction(INVITE, reliable=False)
    busy = response_to(INVITE, 486, "Busy Here", to_tag="ours")
    tx.respond(busy)
    assert tx.respond(response_to(INVITE, 200, "OK")) == []  # one final response only
    ack = SipRequest("ACK", INVITE.uri, INVITE.headers.copy())
    assert tx.on_request(ack) == [StartTimer(Timer.I, 5.0)] and tx.state is TxState.CONFIRMED
    assert tx.on_timer(Timer.I) == [Terminated()]


def test_server_key_dedupes_by_branch_and_method_with_ack_as_invite() -> None:
    bye = SipRequest("BYE", INVITE.uri, INVITE.headers.copy())
    ack = SipRequest("ACK", INVITE.uri, INVITE.headers.copy())
    assert server_key(INVITE) == server_key(ack) != server_key(bye)
    assert server_key(INVITE)[0] == "z9hG4bKabc"


def test_non_invite_server_answers_retransmissions_and_ends_after_timer_j() -> None:
    bye = SipRequest("BYE", INVITE.uri, INVITE.headers.copy())
    tx = NonInviteServerTransaction(bye, reliable=False)
    ok = response_to(bye, 200, "OK")
    assert tx.respond(ok) == [Send(ok), StartTimer(Timer.J, 64 * T1)]
    assert sends(tx.on_request(bye)) == [ok]
    assert tx.on_timer(Timer.J) == [Terminated()]


def test_invite_client_retransmits_then_acks_an_error_itself() -> None:
    tx = InviteClientTransaction(INVITE, reliable=False)
    assert tx.start() == [Send(INVITE), StartTimer(Timer.A, T1), StartTimer(Timer.B, 64 * T1)]
    assert tx.on_timer(Timer.A) == [Send(INVITE), StartTimer(Timer.A, 2 * T1)]
    ringing = response_to(INVITE, 180, "Ringing", to_tag="far")
    assert tx.on_response(ringing) == [Deliver(ringing)]
    assert tx.on_timer(Timer.A) == []  # proceeding: no more retransmissions
    busy = response_to(INVITE, 486, "Busy Here", to_tag="far")
    actions = tx.on_response(busy)
    (ack,) = sends(actions)
    assert ack.method == "ACK" and ack.headers.get("CSeq") == "5 ACK" and "tag=far" in (ack.headers.get("To") or "")
    assert Deliver(busy) in actions
    assert sends(tx.on_response(busy)) == [ack]  # a retransmitted 486 gets the same ACK


def test_non_invite_client_times_out() -> None:
    bye = SipRequest("BYE", INVITE.uri, INVITE.headers.copy())
    tx = NonInviteClientTransaction(bye, reliable=False)
    tx.start()
    delays = [a.delay_s for _ in range(5) for a in tx.on_timer(Timer.E) if isinstance(a, StartTimer)]
    assert delays == [2 * T1, 4 * T1, T2, T2, T2]
    assert tx.on_timer(Timer.F) == [TimedOut(), Terminated()]


def test_uas_dialog_routes_numbers_and_refuses_old_cseq() -> None:
    dialog = Dialog.as_uas(INVITE, "ours", "<sip:bridge@192.0.2.5:5060>")
    table = DialogTable()
    table.add(dialog)
    bye = dialog.request("BYE", "SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bKx")
    assert bye.uri == "sip:caller@10.0.0.1:5062"
    assert bye.headers.values("Route") == ["<sip:proxy1;lr>", "<sip:proxy2;lr>"]
    assert "tag=ours" in (bye.headers.get("From") or "") and "tag=theirs" in (bye.headers.get("To") or "")
    second = dialog.request("INFO", "SIP/2.0/UDP h;branch=z9hG4bKy")
    assert int((second.headers.get("CSeq") or "").split()[0]) == int((bye.headers.get("CSeq") or "").split()[0]) + 1
    their_bye = parse_message(
        b"BYE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKq\r\nFrom: <sip:a@b>;tag=theirs\r\n"
        b"To: <sip:c@d>;tag=ours\r\nCall-ID: c1\r\nCSeq: 6 BYE\r\n\r\n"
    )
    assert isinstance(their_bye, SipRequest)
    assert table.find(their_bye) is dialog
    dialog.accept(their_bye)
    with pytest.raises(OutOfOrder):
        dialog.accept(their_bye)
    stranger = SipRequest("BYE", "sip:x", their_bye.headers.copy())
    stranger.headers.set("Call-ID", "other")
    assert table.find(stranger) is None  # → 481
    table.remove(dialog)
    assert len(table) == 0


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_digest_accepts_the_right_password_once_per_nonce_count(algorithm: str) -> None:
    auth = DigestAuthenticator("bridge", {"alice": "s3cret"}, lifetime_s=30)
    challenge = next(value for value in auth.challenge(now=0) if f"algorithm={algorithm}" in value)
    header = authorization_for(challenge, "INVITE", "sip:+15550100@bridge", "alice", "s3cret", nc=1)
    assert auth.check("INVITE", header, now=1).outcome is AuthOutcome.OK
    assert auth.check("INVITE", header, now=2).outcome is AuthOutcome.STALE  # replayed nc
    again = authorization_for(challenge, "INVITE", "sip:+15550100@bridge", "alice", "s3cret", nc=2)
    assert auth.check("INVITE", again, now=3).outcome is AuthOutcome.OK
    wrong = authorization_for(challenge, "INVITE", "sip:+15550100@bridge", "alice", "guess", nc=3)
    result = auth.check("INVITE", wrong, now=4)
    assert result.outcome is AuthOutcome.DENIED and "guess" not in result.reason
    late = authorization_for(challenge, "INVITE", "sip:+15550100@bridge", "alice", "s3cret", nc=4)
    assert auth.check("INVITE", late, now=31).outcome is AuthOutcome.STALE  # expired
    assert auth.check("INVITE", None, now=31).outcome is AuthOutcome.MISSING
    assert auth.check("INVITE", "Digest garbage", now=31).outcome is AuthOutcome.DENIED


def test_digest_nonce_table_is_bounded() -> None:
    auth = DigestAuthenticator("bridge", {"a": "b"}, max_nonces=10)
    for _ in range(100):
        auth.challenge(now=0)
    assert len(auth) == 10
