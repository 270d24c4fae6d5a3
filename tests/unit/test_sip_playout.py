"""The Playout on a SIP call: marks mode (the RTP stream paces and echoes), and the start of an
answer after a quiet spell counted from when it can have started playing at the far end."""

from __future__ import annotations

import asyncio

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.carriers.sip.codec import SIP_CAPABILITIES, sip_capabilities
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.playout import Confirmation, Playout
from tests.fake_link import MARKS, FakeLink


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def barge_in_after(capabilities, ms: float, echo_first_at: float | None = None) -> int:
    clock = Clock()
    link = FakeLink(capabilities=capabilities, audio_format=ULAW_8K)
    tasks = TaskOwner("call sip-playout")
    playout = Playout(link, tasks, clock, on_mark=lambda name, at: None)
    playout.source_format(ULAW_8K)
    playout.ledger.response_started("r1")
    await playout.play("r1", "i1", 0, b"\x01" * 1600, 200.0)  # two 200 ms deltas at once
    await playout.play("r1", "i1", 0, b"\x01" * 1600, 200.0)
    assert playout.confirmation is Confirmation.MARKS
    if echo_first_at is not None:
        clock.now = 1000.0 + echo_first_at
        playout.mark_echoed(str(link.sent[1][1]))
    clock.now = 1000.0 + ms
    interruption = playout.interrupt()
    assert interruption is not None
    await asyncio.sleep(0)  # the clear goes out on the loop
    await tasks.aclose()
    assert link.sent[-1] == ("clear", None)
    [cut] = interruption.truncations
    return cut.audio_end_ms


async def test_the_first_piece_of_an_answer_is_heard_from_written_plus_the_lead():
    assert SIP_CAPABILITIES.playout_lead_ms == 50.0 and sip_capabilities(80).playout_lead_ms == 90.0
    # a barge-in 150 ms after the answer was written: 100 ms of it can have played on SIP ...
    assert await barge_in_after(SIP_CAPABILITIES, 150.0) == 100
    # ... and 150 ms on a carrier whose marks start when it is written (Twilio's media server)
    assert await barge_in_after(MARKS, 150.0) == 150


async def test_later_pieces_are_timed_by_the_echoed_marks_alone():
    # the first delta's mark echoed 260 ms after writing (it played from 60 ms on): the second
    # started then, and 40 ms of it were heard by 300 ms
    assert await barge_in_after(SIP_CAPABILITIES, 300.0, echo_first_at=260.0) == 240
    assert await barge_in_after(MARKS, 300.0, echo_first_at=260.0) == 240
