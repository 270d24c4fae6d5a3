"""The SIP listener on the wire, from a hand-driven UDP socket: what SIPp cannot easily show —
the 200 retransmitted until the ACK, 481 for a dialog nobody has, the INVITE flood limit, garbage
that is counted and ignored while the next request is answered."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from telephony_bridge.carriers.sip.dialog import response_to
from telephony_bridge.carriers.sip.message import SipRequest, SipResponse, parse_message
from tests.sip.harness import Bridge
from tests.sip.probe import wait_until
from tests.sip.sipp import SIPP, run_sipp

pytestmark = [pytest.mark.timeout(60)]

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


class UdpPhone:
    """A UDP socket speaking SIP by hand to the bridge."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()[1]
        self.bridge = ("127.0.0.1", port)

    def close(self) -> None:
        self.sock.close()

    def send(self, text: str) -> None:
        self.sock.sendto(text.replace("\n", "\r\n").encode(), self.bridge)

    async def receive(self, timeout_s: float = 5.0) -> SipResponse | SipRequest:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            data = await loop.sock_recv(self.sock, 65535)
        return parse_message(data)

    async def final(self, timeout_s: float = 5.0) -> SipResponse:
        while True:
            message = await self.receive(timeout_s)
            if isinstance(message, SipResponse) and message.status >= 200:
                return message

    def request(
        self, method: str, call_id: str, branch: str, *, cseq: int = 1, to_tag: str = "", body: str = ""
    ) -> str:
        to = f"<sip:+15550100@127.0.0.1>{';tag=' + to_tag if to_tag else ''}"
        content = "Content-Type: application/sdp\n" if body else ""
        return (
            f"{method} sip:+15550100@127.0.0.1:{self.bridge[1]} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch=z9hG4bK{branch};rport\n"
            f"From: <sip:+15551234@127.0.0.1>;tag=phone\nTo: {to}\nCall-ID: {call_id}\n"
            f"CSeq: {cseq} {method}\nContact: <sip:phone@127.0.0.1:{self.local}>\nMax-Forwards: 70\n"
            f"{content}Content-Length: {len(body.encode())}\n\n" + body.replace("\r\n", "\n")
        )


@pytest.fixture
async def phone(bridge: Bridge):
    udp = UdpPhone(bridge.port)
    yield udp
    udp.close()


async def test_the_200_is_retransmitted_until_the_ack(bridge: Bridge, phone: UdpPhone) -> None:
    phone.send(phone.request("INVITE", "retrans-1", "inv1", body=SDP))
    ok = await phone.final()
    assert ok.status == 200 and b"m=audio" in ok.body
    again = await phone.final()  # no ACK yet: the same 200 again (Timer G, T1 doubling)
    assert again.status == 200 and again.headers.get("To") == ok.headers.get("To")
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    phone.send(phone.request("ACK", "retrans-1", "ack1", to_tag=to_tag))
    await wait_until(
        lambda: not bridge.runtime.sip.transactions.server.get(("z9hG4bKinv1", f"127.0.0.1:{phone.local}", "INVITE"))
    )
    phone.send(phone.request("BYE", "retrans-1", "bye1", cseq=2, to_tag=to_tag))
    assert (await phone.final()).status == 200
    await wait_until(bridge.empty)


async def test_a_retransmitted_invite_is_one_call(bridge: Bridge, phone: UdpPhone) -> None:
    invite = phone.request("INVITE", "dup-1", "dup1", body=SDP)
    phone.send(invite)
    phone.send(invite)  # the trunk's Timer A fired before our answer got there
    ok = await phone.final()
    assert len(bridge.media.opened) == 1
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    phone.send(phone.request("ACK", "dup-1", "ack2", to_tag=to_tag))
    phone.send(phone.request("BYE", "dup-1", "bye2", cseq=2, to_tag=to_tag))
    assert (await phone.final()).status == 200


async def test_requests_for_a_dialog_nobody_has_get_481(bridge: Bridge, phone: UdpPhone) -> None:
    phone.send(phone.request("BYE", "nobody", "bye3", cseq=2, to_tag="unknown"))
    assert (await phone.final()).status == 481
    phone.send(phone.request("INFO", "nobody", "info3", cseq=3, to_tag="unknown"))
    assert (await phone.final()).status == 481


async def test_garbage_is_counted_and_the_next_request_answered(bridge: Bridge, phone: UdpPhone) -> None:
    before = bridge.runtime.metrics.frames_rejected
    phone.sock.sendto(b"\x00\xffNOT SIP AT ALL\r\n\r\n", phone.bridge)
    phone.send(phone.request("OPTIONS", "after-garbage", "opt4"))
    assert (await phone.final()).status == 200
    assert bridge.runtime.metrics.frames_rejected == before + 1


async def test_an_invite_flood_from_one_source_is_limited(bridge: Bridge, phone: UdpPhone) -> None:
    for index in range(40):  # faster than any trunk: the bucket holds 30
        phone.send(phone.request("INVITE", f"flood-{index}", f"flood{index}", body=SDP))
    refused = 0
    while refused < 5:  # 10 over the bucket, less what it refilled meanwhile on a slow machine
        response = await phone.receive()
        if isinstance(response, SipResponse) and response.status == 503:
            assert response.headers.get("Retry-After")
            refused += 1
    assert bridge.runtime.metrics.calls_over_capacity >= 5
    assert len(bridge.media.opened) <= 32  # the flood did not take a port per INVITE


@pytest.mark.skipif(SIPP is None, reason="SIPp is not installed: apt-get install -y sip-tester")
@pytest.mark.parametrize(("scenario", "number"), [("uac_basic", "+15550100"), ("uac_bye_from_bridge", "+15550101"),
                                                  ("uac_hold", "+15550100")])  # fmt: skip
async def test_calls_over_tcp(tmp_path: Path, scenario: str, number: str) -> None:
    from tests.sip.harness import sip_settings, start_bridge

    settings = sip_settings()
    settings = type(settings).from_environ(
        {"SIP_ALLOW": "127.0.0.1/32"},
        scenarios_dir=settings.scenarios_dir,
        realtime_url="ws://127.0.0.1:9/unused",
        sip_listen=("tcp:127.0.0.1:0",),
        call_store=False,
        gc_freeze=False,  # the default of from_environ: it would freeze the test process's heap
    )
    async with start_bridge(settings) as bridge:
        run = await run_sipp(scenario, bridge.port, number, tmp_path, transport="t1")
        assert run.returncode == 0, run.explain()


async def answered_call(phone: UdpPhone, call_id: str) -> str:
    """INVITE, 200, ACK: the bridge's To tag."""
    phone.send(phone.request("INVITE", call_id, f"{call_id}-inv", body=SDP))
    ok = await phone.final()
    assert ok.status == 200
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    phone.send(phone.request("ACK", call_id, f"{call_id}-ack", to_tag=to_tag))
    return to_tag


async def test_bad_requests_inside_a_call_are_refused_and_the_call_goes_on(bridge: Bridge, phone: UdpPhone) -> None:
    to_tag = await answered_call(phone, "hostile-1")
    phone.send(phone.request("INVITE", "hostile-1", "reinv-bad", cseq=2, to_tag=to_tag, body="v=0\r\nm=nonsense\r\n"))
    assert (await phone.final()).status == 400  # re-INVITE with unusable SDP
    phone.send(
        phone.request("INVITE", "hostile-1", "reinv-g729", cseq=3, to_tag=to_tag, body=SDP.replace(" 0 101", " 18"))
    )
    assert (await phone.final()).status == 488  # no common codec: the call keeps its media
    info = phone.request("INFO", "hostile-1", "info-bad", cseq=4, to_tag=to_tag, body="Signal=<script>\r\n")
    phone.send(info.replace("application/sdp", "application/dtmf-relay"))
    assert (await phone.final()).status == 400
    phone.send(phone.request("INFO", "hostile-1", "info-old", cseq=1, to_tag=to_tag))
    assert (await phone.final()).status == 500  # a CSeq lower than the last: out of order
    phone.send(phone.request("BYE", "hostile-1", "bye-h", cseq=5, to_tag=to_tag))
    assert (await phone.final()).status == 200  # the call was still there to end
    await wait_until(bridge.empty)


async def test_stopping_the_server_hangs_up_calls_in_progress_with_bye() -> None:
    from tests.sip.harness import sip_settings, start_bridge

    async with start_bridge(sip_settings()) as bridge:
        phone = UdpPhone(bridge.port)
        await answered_call(phone, "shutdown-1")
    try:
        while True:  # the 200's retransmissions may still be in the socket: the BYE follows them
            message = await phone.receive()
            if isinstance(message, SipRequest):
                break
        assert message.method == "BYE" and message.headers.get("Call-ID") == "shutdown-1"
    finally:
        phone.close()


async def test_a_codec_change_by_reinvite_reconfigures_the_stream(bridge: Bridge, phone: UdpPhone) -> None:
    to_tag = await answered_call(phone, "codec-1")
    pcma = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 101")
    phone.send(phone.request("INVITE", "codec-1", "reinv-pcma", cseq=2, to_tag=to_tag, body=pcma))
    ok = await phone.final()
    assert ok.status == 200 and b"m=audio" in ok.body and b"RTP/AVP 8 101" in ok.body
    assert [entry["payload_type"] for entry in bridge.media.configured["codec-1"]] == [0, 8]
    phone.send(phone.request("ACK", "codec-1", "reinv-pcma-ack", cseq=2, to_tag=to_tag))
    key = ("z9hG4bKreinv-pcma", f"127.0.0.1:{phone.local}", "INVITE")
    await wait_until(lambda: key not in bridge.runtime.sip.transactions.server)  # its 200's retransmissions end
    phone.send(phone.request("BYE", "codec-1", "bye-codec", cseq=3, to_tag=to_tag))
    assert (await phone.final()).status == 200


async def test_draining_and_max_calls_answer_503() -> None:
    from dataclasses import replace

    from tests.sip.harness import sip_settings, start_bridge

    async with start_bridge(replace(sip_settings(), max_calls=1)) as bridge:
        phone = UdpPhone(bridge.port)
        try:
            to_tag = await answered_call(phone, "first")
            phone.send(phone.request("INVITE", "second", "second-inv", body=SDP))
            assert (await phone.final()).status == 503  # MAX_CALLS
            assert bridge.runtime.metrics.calls_over_capacity == 1
            phone.send(phone.request("BYE", "first", "first-bye", cseq=2, to_tag=to_tag))
            assert (await phone.final()).status == 200
            await wait_until(lambda: not bridge.runtime.sessions)
            bridge.runtime.draining = True
            phone.send(phone.request("INVITE", "third", "third-inv", body=SDP))
            response = await phone.final()
            assert response.status == 503 and response.headers.get("Retry-After")
            assert len(bridge.media.opened) == 1
        finally:
            phone.close()


async def test_an_offerless_invite_gets_our_offer_and_its_answer_comes_in_the_ack(
    bridge: Bridge, phone: UdpPhone
) -> None:
    phone.send(phone.request("INVITE", "offerless-1", "ol-inv"))
    ok = await phone.final()
    assert ok.status == 200 and b"RTP/AVP 0 8 101" in ok.body  # the bridge offers
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    answer = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8")
    phone.send(phone.request("ACK", "offerless-1", "ol-ack", to_tag=to_tag, body=answer))
    await wait_until(lambda: bool(bridge.media.configured.get("offerless-1")))
    assert bridge.media.configured["offerless-1"][0]["payload_type"] == 8
    phone.send(phone.request("BYE", "offerless-1", "ol-bye", cseq=2, to_tag=to_tag))
    assert (await phone.final()).status == 200


async def test_an_offerless_invite_whose_ack_has_no_answer_is_hung_up(bridge: Bridge, phone: UdpPhone) -> None:
    phone.send(phone.request("INVITE", "offerless-2", "ol2-inv"))
    ok = await phone.final()
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    phone.send(phone.request("ACK", "offerless-2", "ol2-ack", to_tag=to_tag))
    while not isinstance(message := await phone.receive(), SipRequest):
        pass
    assert message.method == "BYE"
    await wait_until(bridge.empty)


async def test_the_bridges_bye_waits_for_the_ack_of_its_200(bridge: Bridge, phone: UdpPhone) -> None:
    """RFC 3261 §15: the scenario hangs up the moment it is connected, but no BYE may go before
    the ACK. Until the 200's first retransmission (T1 later) only 200s arrive; after the ACK, the BYE."""
    invite = phone.request("INVITE", "held-bye", "held-inv", body=SDP).replace("+15550100", "+15550101")
    phone.send(invite)
    ok = await phone.final()
    assert ok.status == 200
    again = await phone.receive()  # nothing but the retransmitted 200 before the ACK
    assert isinstance(again, SipResponse) and again.status == 200
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    phone.send(phone.request("ACK", "held-bye", "held-ack", to_tag=to_tag).replace("+15550100", "+15550101"))
    while not isinstance(message := await phone.receive(), SipRequest):
        pass
    assert message.method == "BYE"
    phone.sock.sendto(bytes(response_to(message, 200, "OK")), phone.bridge)
    await wait_until(bridge.empty)


async def test_sip_public_address_is_what_the_peer_is_told() -> None:
    from tests.sip.harness import sip_settings, start_bridge

    async with start_bridge(sip_settings(SIP_PUBLIC_ADDRESS="203.0.113.10")) as bridge:
        phone = UdpPhone(bridge.port)
        try:
            phone.send(phone.request("OPTIONS", "nat-0", "nat-opt"))
            assert (await phone.final()).status == 200
            phone.send(phone.request("INVITE", "nat-1", "nat-inv", body=SDP))
            ok = await phone.final()
            assert b"c=IN IP4 203.0.113.10" in ok.body
            assert f"<sip:bridge@203.0.113.10:{bridge.port}>" in (ok.headers.get("Contact") or "")
            to_tag = (ok.headers.get("To") or "").split("tag=")[1]
            phone.send(phone.request("ACK", "nat-1", "nat-ack", to_tag=to_tag))
            phone.send(phone.request("BYE", "nat-1", "nat-bye", cseq=2, to_tag=to_tag))
            assert (await phone.final()).status == 200
        finally:
            phone.close()


async def test_update_refreshes_and_holds_like_a_reinvite(bridge: Bridge, phone: UdpPhone) -> None:
    to_tag = await answered_call(phone, "update-1")
    phone.send(phone.request("UPDATE", "update-1", "upd-refresh", cseq=2, to_tag=to_tag))
    refresh = await phone.final()
    assert refresh.status == 200 and not refresh.body and refresh.headers.get("Contact")  # a session-timer refresh
    held = SDP + "a=sendonly\r\n"
    phone.send(phone.request("UPDATE", "update-1", "upd-hold", cseq=3, to_tag=to_tag, body=held))
    answer = await phone.final()
    assert answer.status == 200 and b"a=recvonly" in answer.body
    assert [entry["direction"] for entry in bridge.media.configured["update-1"]] == ["sendrecv", "recvonly"]
    phone.send(phone.request("BYE", "update-1", "upd-bye", cseq=4, to_tag=to_tag))
    assert (await phone.final()).status == 200


async def test_a_session_timer_asked_for_leaves_the_trunk_refreshing(bridge: Bridge, phone: UdpPhone) -> None:
    invite = phone.request("INVITE", "timer-1", "timer-inv", body=SDP)
    phone.send(
        invite.replace(
            "Max-Forwards: 70\n", "Max-Forwards: 70\nSupported: timer, 100rel\nSession-Expires: 1800;refresher=uas\n"
        )
    )
    ok = await phone.final()
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac" and ok.headers.get("Require") == "timer"
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    phone.send(phone.request("ACK", "timer-1", "timer-ack", to_tag=to_tag))
    phone.send(phone.request("BYE", "timer-1", "timer-bye", cseq=2, to_tag=to_tag))
    assert (await phone.final()).status == 200
    phone.send(phone.request("INVITE", "timer-2", "timer2-inv", body=SDP))  # not asked for: none given
    plain = await phone.final()
    assert plain.headers.get("Session-Expires") is None and plain.headers.get("Require") is None


async def test_a_required_extension_we_lack_gets_420(bridge: Bridge, phone: UdpPhone) -> None:
    invite = phone.request("INVITE", "ext-1", "ext-inv", body=SDP)
    phone.send(invite.replace("Max-Forwards: 70\n", "Max-Forwards: 70\nRequire: 100rel\n"))
    refused = await phone.final()
    assert refused.status == 420 and refused.headers.get("Unsupported") == "100rel"
    assert not bridge.media.opened  # refused before any port was taken
