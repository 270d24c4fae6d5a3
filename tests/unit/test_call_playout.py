"""The call's Playout, one behaviour per test: marks mode writes as it comes; clock mode paces,
confirms by clock and truncates at what the far end played. Real event loop, a FakeLink."""

from __future__ import annotations

import asyncio

from telephony_bridge.audio.formats import L16_8K, L16_16K, L16_24K, ULAW_8K
from telephony_bridge.carriers.base import Capabilities
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.playout import Confirmation, Playout
from tests.fake_link import FakeLink

NO_MARKS = Capabilities(audio_formats=(L16_16K,), marks=False, clear=False, playout_lead_ms=60.0)
NO_MARKS_CLEAR = Capabilities(audio_formats=(L16_16K,), marks=False, clear=True, playout_lead_ms=60.0)


def clock_ms() -> float:
    return asyncio.get_running_loop().time() * 1000


def make(link: FakeLink) -> tuple[Playout, list[tuple[str, float]], TaskOwner]:
    marks: list[tuple[str, float]] = []
    tasks = TaskOwner("call CA-playout")
    playout = Playout(link, tasks, clock_ms, on_mark=lambda name, at: marks.append((name, at)))
    return playout, marks, tasks


def pcm24k(ms: int) -> bytes:
    return b"\x10\x00" * (24 * ms)


async def test_marks_mode_writes_the_converted_audio_then_its_mark():
    link = FakeLink()
    playout, _, tasks = make(link)
    playout.source_format(L16_24K)
    playout.ledger.response_started("r1")
    assert playout.confirmation is Confirmation.MARKS
    assert await playout.play("r1", "i1", 0, pcm24k(100), 100.0) is True  # starts an episode
    kinds = [kind for kind, _ in link.sent]
    assert kinds == ["media", "mark"]
    assert 780 <= len(link.sent[0][1]) <= 800  # 100 ms of μ-law 8k, less the resampler's look-ahead
    await tasks.aclose()


async def test_a_late_delta_of_an_interrupted_answer_is_dropped():
    link = FakeLink()
    playout, _, tasks = make(link)
    playout.source_format(ULAW_8K)
    playout.ledger.response_started("r1")
    await playout.play("r1", "i1", 0, b"\xff" * 800, 100.0)
    assert playout.interrupt() is not None
    assert await playout.play("r1", "i1", 0, b"\xff" * 800, 100.0) is None
    await asyncio.sleep(0)  # the clear goes out on the loop
    await tasks.aclose()
    assert [kind for kind, _ in link.sent] == ["media", "mark", "clear"]


async def test_clock_mode_paces_frames_and_confirms_each_segment_after_the_lead():
    link = FakeLink(capabilities=NO_MARKS, audio_format=L16_16K)
    playout, marks, tasks = make(link)
    playout.source_format(L16_16K)
    playout.ledger.response_started("r1")
    began = clock_ms()
    await playout.play("r1", "i1", 0, b"\x01\x00" * 16 * 100, 100.0)
    assert link.sent == []  # nothing written synchronously: the pacer writes on the clock
    while not marks:
        await asyncio.sleep(0.01)
    frames = [audio for kind, audio in link.sent if kind == "media"]
    assert [len(frame) for frame in frames] == [640] * 5  # 100 ms as five 20 ms frames
    [(name, at)] = marks
    assert name == "g0.0" and at - began >= 100.0 + 60.0 - 1.0  # played, by the clock, after the lead
    assert "mark" not in [kind for kind, _ in link.sent]  # the carrier has no marks
    await tasks.aclose()


async def test_clock_mode_without_clear_truncates_at_everything_written():
    link = FakeLink(capabilities=NO_MARKS, audio_format=L16_16K)
    playout, _, tasks = make(link)
    playout.source_format(L16_16K)
    playout.ledger.response_started("r1")
    playout.ledger.item_added("r1", "i1")
    await playout.play("r1", "i1", 0, b"\x01\x00" * 16 * 1000, 1000.0)
    while len(link.sent) < 10:  # 200 ms written
        await asyncio.sleep(0.005)
    interruption = playout.interrupt()
    written_ms = 20 * len(link.sent)
    [cut] = interruption.truncations
    # The phone plays what it has: the cut is what was written, not what had played by now.
    assert abs(cut.audio_end_ms - written_ms) <= 20, (cut, written_ms)
    await asyncio.sleep(0.1)
    assert len(link.sent) * 20 == written_ms and ("clear", None) not in link.sent  # stopped at once, no clear
    await tasks.aclose()


async def test_clock_mode_with_clear_truncates_at_written_minus_the_lead():
    link = FakeLink(capabilities=NO_MARKS_CLEAR, audio_format=L16_16K)
    playout, _, tasks = make(link)
    playout.source_format(L16_16K)
    playout.ledger.response_started("r1")
    playout.ledger.item_added("r1", "i1")
    await playout.play("r1", "i1", 0, b"\x01\x00" * 16 * 1000, 1000.0)
    while len(link.sent) < 10:
        await asyncio.sleep(0.005)
    written_ms = 20 * len([kind for kind, _ in link.sent if kind == "media"])
    interruption = playout.interrupt()
    [cut] = interruption.truncations
    assert abs(cut.audio_end_ms - (written_ms - 60)) <= 20, (cut, written_ms)
    await asyncio.sleep(0)
    assert ("clear", None) in link.sent
    await tasks.aclose()


async def test_a_prompt_in_clock_mode_is_confirmed_by_its_own_mark():
    link = FakeLink(capabilities=NO_MARKS, audio_format=L16_16K)
    playout, marks, tasks = make(link)
    await playout.play_prompt(b"\x00\x00" * 8 * 60, L16_8K, "pb1")  # 60 ms at 8 kHz
    while not marks:
        await asyncio.sleep(0.01)
    assert [name for name, _ in marks] == ["pb1"]
    assert sum(len(audio) for kind, audio in link.sent if kind == "media") in range(1900, 1921)  # ~60 ms at 16k
    await tasks.aclose()


async def test_close_lets_go_of_the_call():
    link = FakeLink(capabilities=NO_MARKS, audio_format=L16_16K)
    playout, marks, tasks = make(link)
    playout.close()
    await playout.play_prompt(b"\x00\x00" * 160, L16_16K, "pb1")
    await asyncio.sleep(0.3)
    assert marks == []  # a closed playout confirms nothing to a call that has ended
    await tasks.aclose()
