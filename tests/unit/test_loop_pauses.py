"""Timeouts on the model that do not count the bridge's own hold-ups: a loop blocked by a callback
(as a process the host does not schedule) is not charged to the awaited peer."""

import asyncio
import time

from telephony_bridge.realtime.loop_pauses import CHECK_INTERVAL_S, nap, wait_running

HOLD_UP_S = 0.6


def hold_up_loop() -> None:
    time.sleep(HOLD_UP_S)  # blocks the event loop, as a loaded host does to the whole process


async def test_a_reply_that_comes_soon_after_the_loop_was_held_up_is_in_time():
    loop = asyncio.get_running_loop()
    reply = loop.create_future()

    def held_up_then_reply() -> None:
        hold_up_loop()
        loop.call_later(0.1, reply.set_result, "pong")  # the peer answers once it runs again

    loop.call_soon(held_up_then_reply)
    # In wall time the reply comes after ~0.7 s, past the 0.5 s allowed; in time the loop ran, at
    # most one check interval of the hold-up plus 0.1 s.
    assert 0.1 + CHECK_INTERVAL_S < 0.5 < HOLD_UP_S + 0.1
    assert await wait_running(reply, 0.5)


async def test_a_peer_that_never_replies_still_times_out():
    reply = asyncio.get_running_loop().create_future()
    assert not await wait_running(reply, 0.3)


async def test_nap_reports_how_late_the_loop_woke_it():
    loop = asyncio.get_running_loop()
    loop.call_soon(hold_up_loop)
    lateness = await nap(0.01)
    assert lateness >= HOLD_UP_S - 0.01  # it asked for 0.01 s and the loop was held up 0.6 s
