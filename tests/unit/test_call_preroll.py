"""Caller audio that arrives before the scenario connects it: kept (bounded) and handed over."""

from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.call import Call
from tests.fake_link import FakeLink


class Unit:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    async def accept_caller_audio(self, ulaw: bytes) -> None:
        self.frames.append(ulaw)


def make_call(**kwargs) -> Call:
    return Call(call_sid="CA-preroll", caller_id="+15550100", number="+15550101", custom_data={},
                link=FakeLink(), tasks=TaskOwner("call CA-preroll"), clock_ms=lambda: 0.0, **kwargs)


def frame(n: int) -> bytes:
    return bytes([n]) * 160  # 20 ms of μ-law, tagged with its number


async def test_audio_before_the_media_is_connected_reaches_the_unit_first_and_in_order():
    call = make_call(preroll_ms=1000)
    call.answer()
    for n in range(10):  # 200 ms while the scenario opens its model
        await call.caller_audio(frame(n))
    unit = Unit()
    call.sendMediaTo(unit)
    await call.caller_audio(frame(10))
    assert unit.frames == [frame(n) for n in range(11)]


async def test_only_the_latest_preroll_is_kept():
    call = make_call(preroll_ms=100)  # five frames
    call.answer()
    for n in range(12):
        await call.caller_audio(frame(n))
    unit = Unit()
    call.sendMediaTo(unit)
    await call.caller_audio(frame(12))
    assert unit.frames == [frame(n) for n in range(7, 13)]


async def test_a_chunk_longer_than_the_preroll_keeps_its_end():
    call = make_call(preroll_ms=10)  # 80 bytes
    call.answer()
    await call.caller_audio(frame(1))
    await call.caller_audio(bytes(range(200)))  # a filled gap plus a frame
    unit = Unit()
    call.sendMediaTo(unit)
    await call.caller_audio(frame(2))
    assert unit.frames == [bytes(range(120, 200)), frame(2)]


async def test_audio_before_answer_is_kept_too_and_handed_over_at_answer():
    call = make_call()
    unit = Unit()
    call.sendMediaTo(unit)  # connected first, answered later: no unit takes audio yet
    await call.caller_audio(frame(1))
    assert unit.frames == []
    call.answer()
    await call.caller_audio(frame(2))
    assert unit.frames == [frame(1), frame(2)]


async def test_handed_over_once_then_nothing_is_kept():
    call = make_call()
    call.answer()
    await call.caller_audio(frame(1))
    unit = Unit()
    call.sendMediaTo(unit)
    await call.caller_audio(frame(2))
    await call.caller_audio(frame(3))
    assert unit.frames == [frame(1), frame(2), frame(3)]
    assert len(call._preroll) == 0  # frames go straight through once a unit takes them


async def test_zero_turns_the_preroll_off():
    call = make_call(preroll_ms=0)
    call.answer()
    await call.caller_audio(frame(1))
    unit = Unit()
    call.sendMediaTo(unit)
    await call.caller_audio(frame(2))
    assert unit.frames == [frame(2)]


async def test_nothing_is_kept_after_the_call_ended():
    call = make_call()
    call.answer()
    await call.caller_audio(frame(1))
    call.terminated("caller hung up", 1.0)
    await call.caller_audio(frame(2))
    assert len(call._preroll) == 0
