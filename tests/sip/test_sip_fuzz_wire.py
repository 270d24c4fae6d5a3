"""Mangled INVITEs at the real listener: whatever arrives, nothing raises out of the SIP layer
(no "failed handling" error logged), and the listener still answers afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import pytest

from telephony_bridge.carriers.sip.message import SipParseError, SipResponse
from tests.sip.harness import sip_settings, start_bridge
from tests.sip.probe import wait_until
from tests.sip.test_sip_wire import SDP, UdpPhone

pytestmark = [pytest.mark.timeout(90)]

MUTATIONS = 600


def mangle(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        position = rng.randrange(len(out) or 1)
        if kind < 0.3 and out:
            out[position] = rng.randrange(256)
        elif kind < 0.5:
            out[position:position] = rng.choice(
                [b",", b";", b"<", b">", b'"', b"\r\n", b" ", b":", b"=", b"\x00", b"\xff"]
            )
        elif kind < 0.7 and out:
            del out[position : position + rng.randint(1, 20)]
        else:  # a whole line swapped for another's value
            lines = bytes(out).split(b"\r\n")
            index = rng.randrange(len(lines))
            lines[index] = lines[index].split(b":", 1)[0] + b": " + rng.choice(lines).split(b":", 1)[-1]
            out = bytearray(b"\r\n".join(lines))
    return bytes(out)


async def test_mangled_invites_never_raise_and_the_listener_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "telephony_bridge.sip")
    rng = random.Random(6)  # this seed once put a NUL in c=, which reached a socket call
    async with start_bridge(sip_settings(SIP_INVITE_RATE="10000")) as bridge:
        phone = UdpPhone(bridge.port)
        try:
            for index in range(MUTATIONS):
                number = "+15550102" if index % 2 else "+15559999"  # declined at once / no route
                text = phone.request("INVITE", f"fuzz-{index}", f"fuzz{index}", body=SDP).replace("+15550100", number)
                phone.sock.sendto(mangle(text.replace("\n", "\r\n").encode(), rng), phone.bridge)
                if index % 5 == 0:
                    await asyncio.sleep(0)  # let the listener read: a UDP socket buffer is finite
            # Over UDP a burst can overflow a socket buffer: retransmit as a UAC does (Timer E).
            options = phone.request("OPTIONS", "after-fuzz", "after-fuzz-opt")
            async with asyncio.timeout(15):
                answered = None
                while answered is None:
                    phone.send(options)
                    with contextlib.suppress(TimeoutError, SipParseError):
                        while answered is None:
                            message = await phone.receive(timeout_s=0.5)
                            if isinstance(message, SipResponse) and message.headers.get("Call-ID") == "after-fuzz":
                                answered = message
            assert answered.status == 200
            await wait_until(lambda: not bridge.runtime.sessions, timeout_s=30)
        finally:
            phone.close()
    failures = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not failures, failures[:3]
    assert bridge.runtime.metrics.frames_rejected > 0  # some mangling was caught and counted
