"""SIP message parsing and serialising (carriers/sip/message.py, fields.py), on captures' shapes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony_bridge.carriers.sip.fields import parse_cseq, parse_name_addr, parse_uri, parse_via
from telephony_bridge.carriers.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    missing_headers,
    parse_message,
    split_values,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

# An INVITE the way a trunk writes it, with everything a naive parser trips on: compact forms,
# mixed-case names, a folded header, two Vias in one line and one more on its own, a display name
# with a comma inside quotes.
INVITE = (
    b"INVITE sip:+15550100@bridge.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKproxy, SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport\r\n"
    b"VIA: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKlast\r\n"
    b'f: "Doe, John" <sip:+15551234@trunk.example.com>;tag=1928301774\r\n'
    b"t: <sip:+15550100@bridge.example.com>\r\n"
    b"i: a84b4c76e66710@10.0.0.1\r\n"
    b"cseq: 314159 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"m: <sip:+15551234@10.0.0.1:5062>\r\n"
    b"X-Account: acme\r\n"
    b"Subject: a long subject\r\n"
    b"  folded onto a second line\r\n"
    b"c: application/sdp\r\n"
    b"l: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def test_a_trunk_invite_with_compact_folded_and_multi_value_headers() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, SipRequest)
    assert message.method == "INVITE" and message.uri == "sip:+15550100@bridge.example.com"
    vias = message.headers.values("Via")
    assert [parse_via(via).branch for via in vias] == ["z9hG4bKproxy", "z9hG4bKabc", "z9hG4bKlast"]
    assert message.headers.get("call-id") == "a84b4c76e66710@10.0.0.1"
    sender = parse_name_addr(message.headers.get("From") or "")
    assert sender.display == "Doe, John" and sender.uri.user == "+15551234" and sender.tag == "1928301774"
    assert message.headers.get("Subject") == "a long subject folded onto a second line"
    assert message.headers.get("x-account") == "acme"
    assert message.body == SDP
    assert missing_headers(message) == []


def test_serialised_message_reads_back_the_same() -> None:
    message = parse_message(INVITE)
    again = parse_message(bytes(message))
    assert isinstance(again, SipRequest)
    assert list(again.headers) == list(message.headers) and again.body == message.body
    assert b"Content-Length: %d\r\n" % len(SDP) in bytes(message)


def test_commas_inside_quotes_and_angle_brackets_do_not_split() -> None:
    assert split_values('"a, b" <sip:x@y;p=1,2>, <sip:z@w>') == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]


def test_content_length_shorter_than_the_datagram_cuts_the_body_longer_is_an_error() -> None:
    head = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 3\r\n\r\n"
    response = parse_message(head + b"abcdef")
    assert isinstance(response, SipResponse) and response.status == 200 and response.body == b"abc"
    with pytest.raises(SipParseError, match="Content-Length"):
        parse_message(head + b"ab")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"INVITE sip:a@b SIP/3.0\r\n\r\n",
        b"SIP/2.0 99 Too low\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n folded first\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: \xff\xfe\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n",  # no end of headers
        "SIP/2.0 2\u00b20 OK\r\n\r\n".encode(),  # '²' is a digit to str.isdigit, not to int
        "OPTIONS sip:a@b SIP/2.0\r\nl: \u00b2\r\n\r\n".encode(),
    ],
)
def test_garbage_is_one_narrow_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(data)


def test_a_request_missing_mandatory_headers_parses_but_is_named_for_the_400() -> None:
    message = parse_message(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: x INVITE\r\n\r\n")
    assert isinstance(message, SipRequest)
    assert missing_headers(message) == ["From", "To", "Call-ID", "CSeq"]


def test_tcp_framing_by_content_length_across_reads_of_any_size() -> None:
    stream = b"\r\n\r\n" + INVITE + INVITE  # keep-alives, then two messages back to back
    framer = StreamFramer()
    messages = []
    for index in range(0, len(stream), 7):
        messages += framer.feed(stream[index : index + 7])
    assert len(messages) == 2 and all(message.body == SDP for message in messages)


def test_tcp_message_without_content_length_is_refused() -> None:
    with pytest.raises(SipParseError, match="without Content-Length"):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")


def test_uri_forms() -> None:
    uri = parse_uri("sip:+15550100:secret@Bridge.Example.com:5080;transport=tcp?subject=x")
    assert (uri.user, uri.host, uri.port, uri.params) == ("+15550100", "bridge.example.com", 5080, {"transport": "tcp"})
    assert parse_uri("sip:[::1]:5060").address == ("::1", 5060)
    assert parse_uri("tel:+15550100").user == "+15550100"
    for bad in ("http://x", "sip:", "sip:a@", "sip:a@b:99999", "sip:[::1", "sip:a@b:\u00b2"):
        with pytest.raises(SipParseError):
            parse_uri(bad)
    bare = parse_name_addr("sip:alice@example.com;tag=xyz")
    assert bare.uri.user == "alice" and bare.tag == "xyz"


def test_via_response_address_uses_rport_and_received() -> None:
    assert parse_via("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKa;rport").response_address(("1.2.3.4", 7000)) == (
        "1.2.3.4",
        7000,
    )
    assert parse_via("SIP/2.0/UDP 1.2.3.4:5062;branch=z9hG4bKa").response_address(("1.2.3.4", 7000)) == (
        "1.2.3.4",
        5062,
    )
    assert parse_cseq("12 invite").method == "INVITE"


HEADER_NAMES = st.sampled_from(["Via", "v", "From", "t", "i", "CSeq", "l", "Content-Length", "X-A", "m", ""])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def sip_like(draw: st.DrawFn) -> bytes:
    """Near-misses of SIP: real start lines and header names with hostile values, random cuts."""
    start = draw(st.sampled_from(["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "BYE x SIP/2.0", "", "SIP/2.0"]))
    lines = [start] + [f"{draw(HEADER_NAMES)}:{draw(TEXT)}" for _ in range(draw(st.integers(0, 8)))]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass") + draw(st.binary(max_size=40))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(sip_like(), st.binary(max_size=300)))
def test_fuzz_the_parsers_raise_only_their_own_error(data: bytes) -> None:
    """Whatever arrives, the parser and every field reader either succeed or raise SipParseError."""
    try:
        message = parse_message(data)
    except SipParseError:
        message = None
    if message is not None:
        assert isinstance(message, SipRequest | SipResponse)
        assert parse_message(bytes(message)).headers.get("Call-ID") == message.headers.get("Call-ID")
        for reader, name in (
            (parse_via, "Via"),
            (parse_name_addr, "From"),
            (parse_name_addr, "To"),
            (parse_cseq, "CSeq"),
        ):
            for value in message.headers.values(name):
                try:
                    reader(value)
                except SipParseError:
                    pass
        if isinstance(message, SipRequest):
            missing_headers(message)
    framer = StreamFramer()
    try:
        framer.feed(data)
    except SipParseError:
        pass
