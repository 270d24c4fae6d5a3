"""The SIP load generator's phone against a scripted far end (bench/sip_loadgen.py): it ACKs a
200 OK that comes again, answers a BYE from the bridge, and hangs up a call that failed after its
set-up instead of leaving it running on the bridge."""

from __future__ import annotations

import argparse
import asyncio
import socket

import pytest

from bench import sip_loadgen
from bench.sip_loadgen import Pacer, SipCall, Trunk, run_call
from telephony_bridge.carriers.sip.dialog import new_branch, response_to
from telephony_bridge.carriers.sip.message import Headers, SipRequest, SipResponse, parse_message
from telephony_bridge.carriers.sip.sdp import build_offer

pytestmark = pytest.mark.timeout(20)


class ScriptedBridge(asyncio.DatagramProtocol):
    """Answers INVITE with 200 (an SDP answer for a port nobody sends from), and keeps what came."""

    def __init__(self) -> None:
        self.received: list[SipRequest | SipResponse] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.arrived = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        self.received.append(message)
        self.arrived.set()
        if isinstance(message, SipRequest) and message.method in ("INVITE", "BYE"):
            response = response_to(message, 200, "OK", to_tag="bridge")
            if message.method == "INVITE":
                self.invite, self.peer = message, addr
                response.headers.add("Contact", "<sip:bridge@127.0.0.1>")
                response.headers.add("Content-Type", "application/sdp")
                response.body = build_offer("127.0.0.1", 9, 1)
                self.ok = response
            self.send(response, addr)

    def send(self, message: SipRequest | SipResponse, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(bytes(message), to)

    def methods(self) -> list[str]:
        return [m.method for m in self.received if isinstance(m, SipRequest)]

    async def wait_for(self, method: str, count: int = 1) -> None:
        async with asyncio.timeout(5):
            while self.methods().count(method) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def start(loop: asyncio.AbstractEventLoop) -> tuple[ScriptedBridge, Trunk, Pacer, argparse.Namespace]:
    _, bridge = await loop.create_datagram_endpoint(ScriptedBridge, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    assert bridge.transport is not None
    _, trunk = await loop.create_datagram_endpoint(Trunk, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    args = argparse.Namespace(sip_address=bridge.transport.get_extra_info("sockname")[:2])
    return bridge, trunk, Pacer([b"\xff" * 160]), args


async def test_a_resent_200_is_acked_again_and_a_bye_from_the_bridge_ends_the_call() -> None:
    bridge, trunk, pacer, args = await start(asyncio.get_running_loop())
    call = SipCall(0, 5.0, 0, 100)
    phone = asyncio.create_task(run_call(call, args, pacer, trunk))
    await bridge.wait_for("ACK")
    bridge.send(bridge.ok, bridge.peer)  # as if the first ACK had been lost
    await bridge.wait_for("ACK", 2)
    bye = SipRequest("BYE", "sip:phone@127.0.0.1", Headers())
    bye.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{args.sip_address[1]};branch={new_branch()}")
    bye.headers.add("From", bridge.ok.headers.get("To") or "")
    bye.headers.add("To", bridge.ok.headers.get("From") or "")
    bye.headers.add("Call-ID", bridge.ok.headers.get("Call-ID") or "")
    bye.headers.add("CSeq", "1 BYE")
    bridge.send(bye, bridge.peer)
    async with asyncio.timeout(5):  # not the 15 s first-audio wait
        await phone
    assert call.error == "the bridge hung up" and call.hung_up_by_bridge
    assert bridge.methods() == ["INVITE", "ACK", "ACK"]  # and no BYE of its own
    ok = [m for m in bridge.received if isinstance(m, SipResponse)]
    assert [(m.status, m.headers.get("CSeq")) for m in ok] == [(200, "1 BYE")]


async def test_a_call_with_no_audio_is_hung_up_not_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sip_loadgen, "FIRST_AUDIO_TIMEOUT_S", 0.3)
    bridge, trunk, pacer, args = await start(asyncio.get_running_loop())
    call = SipCall(0, 5.0, 0, 100)
    await run_call(call, args, pacer, trunk)
    assert call.error is not None and call.error.startswith("no model audio")
    assert bridge.methods() == ["INVITE", "ACK", "BYE"]
