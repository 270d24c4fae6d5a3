"""A finished SIP call is freed by reference counting, without waiting for the cyclic GC (which
with a long-lived heap runs only every few hundred calls): its session, Call, SipCall and RTP
stream go as soon as the call has ended."""

from __future__ import annotations

import gc
import weakref

from tests.sip.harness import Bridge, sip_settings, start_bridge
from tests.sip.probe import PROBE, wait_until
from tests.sip.test_sip_wire import UdpPhone, answered_call


async def test_a_finished_sip_call_is_freed_without_the_gc() -> None:
    # IDLE_RELEASE_S=0: the idle memory release would run the GC this test keeps off.
    async with start_bridge(sip_settings(IDLE_RELEASE_S="0")) as bridge:
        await check_freed(bridge, ("session", "call", "sip call"))


async def test_a_finished_calls_rtp_stream_is_freed_without_the_gc() -> None:
    async with start_bridge(sip_settings(IDLE_RELEASE_S="0")) as bridge:
        await check_freed(bridge, ("rtp stream",))


async def check_freed(bridge: Bridge, names: tuple[str, ...]) -> None:
    phone = UdpPhone(bridge.port)
    gc.collect()
    gc.disable()
    try:
        to_tag = await answered_call(phone, "freed-1")
        await PROBE.wait_for(lambda: "connected" in PROBE.names("freed-1"))
        (session,) = bridge.runtime.sessions
        sip_call = bridge.runtime.sip.calls["freed-1"]
        refs = {
            "session": weakref.ref(session),
            "call": weakref.ref(session.call),
            "sip call": weakref.ref(sip_call),
            "rtp stream": weakref.ref(sip_call.stream),
        }
        gone = {name: refs[name] for name in names}
        del refs
        del session, sip_call
        PROBE.clear()  # its events hold the Call
        bridge.media.opened.clear()  # the test's pool keeps what it opened
        phone.send(phone.request("BYE", "freed-1", "freed-bye", cseq=2, to_tag=to_tag))
        assert (await phone.final()).status == 200
        await wait_until(bridge.empty)
        await wait_until(lambda: all(ref() is None for ref in gone.values()), timeout_s=3)
    except TimeoutError:
        alive = [name for name, ref in gone.items() if ref() is not None]
        raise AssertionError(f"kept alive by a reference cycle: {alive}") from None
    finally:
        gc.enable()
        phone.close()
