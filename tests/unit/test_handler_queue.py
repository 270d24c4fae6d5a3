"""Async handlers are bounded per handler and event: a flood queues, then drops, never spawns
without limit (issue 13 item 4). Driven through the real TaskOwner on a real event loop."""

from __future__ import annotations

import asyncio
import logging

from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.events import CallEvents
from telephony_bridge.voxengine.listeners import (
    HANDLER_CONCURRENCY,
    HANDLER_QUEUE,
    EventPayload,
    Listeners,
    enum_normalizer,
)


class SlowHandler:
    """An async ToneReceived handler that holds every invocation until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[str] = []
        self.finished: list[str] = []

    async def __call__(self, event: EventPayload) -> None:
        self.started.append(event.tone)
        await self.release.wait()
        self.finished.append(event.tone)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_dtmf_flood_runs_a_bounded_number_of_tasks_and_drops_the_rest(caplog):
    owner = TaskOwner("call CA-test")
    listeners = Listeners("call CA-test", owner, enum_normalizer(CallEvents))
    handler = SlowHandler()
    listeners.add(CallEvents.ToneReceived, handler)
    digits = [str(i % 10) for i in range(10_000)]
    with caplog.at_level(logging.WARNING, logger="telephony_bridge.scenario"):
        for digit in digits:
            listeners.emit(CallEvents.ToneReceived, EventPayload(tone=digit))
        await settle()
    assert owner.task_count() == HANDLER_CONCURRENCY
    assert len(handler.started) == HANDLER_CONCURRENCY
    assert listeners.dropped == 10_000 - HANDLER_CONCURRENCY - HANDLER_QUEUE
    assert caplog.text.count("event dropped") < 200  # the first few, then every 100th
    handler.release.set()
    while owner.task_count():
        await settle()
    # Every event that was taken ran, in arrival order of the start of each.
    kept = digits[: HANDLER_CONCURRENCY + HANDLER_QUEUE]
    assert handler.started == kept and sorted(handler.finished) == sorted(kept)


async def test_a_few_events_run_concurrently_as_in_voxengine():
    owner = TaskOwner("call CA-test")
    listeners = Listeners("call CA-test", owner, enum_normalizer(CallEvents))
    handler = SlowHandler()
    listeners.add(CallEvents.ToneReceived, handler)
    for digit in "123":
        listeners.emit(CallEvents.ToneReceived, EventPayload(tone=digit))
    await settle()
    assert handler.started == ["1", "2", "3"] and listeners.dropped == 0
    handler.release.set()
    await owner.aclose()


async def test_queued_events_are_closed_not_leaked_when_the_call_ends():
    owner = TaskOwner("call CA-test")
    listeners = Listeners("call CA-test", owner, enum_normalizer(CallEvents))
    handler = SlowHandler()
    listeners.add(CallEvents.ToneReceived, handler)
    for _ in range(HANDLER_CONCURRENCY + 3):
        listeners.emit(CallEvents.ToneReceived, EventPayload(tone="5"))
    await settle()
    await owner.aclose()  # cancels the running ones; the 3 waiting never start
    assert len(handler.started) == HANDLER_CONCURRENCY and handler.finished == []
