"""Pitfall 23: `call.answer()` fires CallEvents.Connected on the next loop turn, not inside answer(),
so a scenario that adds the listener after answer() (as Voximplant's examples do) hears it."""

from __future__ import annotations

import asyncio

from telephony_bridge.voxengine.events import CallEvents, CallState
from tests.unit.test_call_preroll import make_call


async def test_a_listener_added_after_answer_hears_connected():
    call = make_call()
    heard = []
    call.answer()
    assert call.state() == CallState.CONNECTED.value  # media may flow at once
    call.addEventListener(CallEvents.Connected, lambda e: heard.append(e.name))
    assert heard == []  # not inside answer()
    await asyncio.sleep(0)
    assert heard == ["Connected"]


async def test_connected_fires_once_and_always_before_the_calls_other_events():
    call = make_call()
    heard = []
    call.addEventListener(CallEvents.Connected, lambda e: heard.append("connected"))
    call.addEventListener(CallEvents.ToneReceived, lambda e: heard.append("tone"))
    call.addEventListener(CallEvents.Disconnected, lambda e: heard.append("disconnected"))
    call.handleTones(True)
    call.answer()
    call.answer()
    call.tone("1")  # read in the same turn as answer(): Connected still comes first
    call.terminated("caller hung up", 0.1)
    await asyncio.sleep(0)
    assert heard == ["connected", "tone", "disconnected"]
