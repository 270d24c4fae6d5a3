"""Graceful shutdown: what `DrainingServer` does with the calls in progress when signalled.

No real server: the runtime holds fake sessions, and the drainer's clock is stepped by hand so a
timeout passes without waiting for it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import uvicorn

from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.server import drain as drain_module
from telephony_bridge.server.drain import SHUTDOWN_REASON, DrainingServer
from telephony_bridge.server.runtime import BridgeRuntime
from telephony_bridge.server.settings import Settings


class FakeSession:
    """A call in progress: records how it was ended; leaves the runtime when it ends, unless stuck."""

    def __init__(self, runtime: BridgeRuntime, stuck: bool = False) -> None:
        self.runtime, self.stuck = runtime, stuck
        self.ended: list[tuple[str, int]] = []  # (reason, close code)
        runtime.sessions.add(self)

    def end(self, kind: CallEnd, detail: str | None = None, code: int | None = None) -> None:
        self.ended.append((detail or kind.text, kind.close_code if code is None else code))
        if not self.stuck:
            self.runtime.sessions.discard(self)

    def hang_up(self) -> None:  # the call finishing on its own
        self.runtime.sessions.discard(self)


class SteppedClock:
    """`time.monotonic` for the drainer: each reading is a second later than the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def make_server(drain_timeout_s: float = 30.0) -> tuple[DrainingServer, BridgeRuntime]:
    settings = Settings(scenarios_dir=Path("unused"), realtime_url="ws://127.0.0.1:9/unused", drain_timeout_s=drain_timeout_s)
    runtime = BridgeRuntime(settings=settings, scenarios={}, router=None)
    return DrainingServer(uvicorn.Config(app=lambda *args: None), runtime), runtime


@pytest.fixture
def clock(monkeypatch) -> SteppedClock:
    stepped = SteppedClock()
    monkeypatch.setattr(drain_module, "time", stepped)
    return stepped


async def test_the_first_signal_only_marks_draining_and_calls_go_on():
    server, runtime = make_server()
    server._loop = asyncio.get_running_loop()  # as startup() sets it
    call = FakeSession(runtime)

    server.handle_exit(signal.SIGTERM, None)
    for _ in range(5):
        await asyncio.sleep(0)  # the drain task is started from the loop, as from a signal handler

    assert runtime.draining is True
    assert server.should_exit is False and server.force_exit is False
    assert runtime.sessions == {call} and call.ended == []

    call.hang_up()  # the last call finishes by itself: the server then exits
    await asyncio.wait_for(server._drain_task, timeout=5)
    assert server.should_exit is True and call.ended == []


async def test_a_second_signal_exits_at_once():
    server, runtime = make_server()
    server._loop = asyncio.get_running_loop()
    FakeSession(runtime)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit is True and server.force_exit is True
    await asyncio.sleep(0)
    server._drain_task.cancel()


def test_a_signal_before_start_up_exits_without_draining():
    server, runtime = make_server()
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit is True and runtime.draining is False and server._drain_task is None


async def test_calls_that_end_within_the_timeout_are_never_cut(clock):
    server, runtime = make_server(drain_timeout_s=1000)
    calls = [FakeSession(runtime) for _ in range(3)]

    async def hang_up_one_by_one() -> None:
        for call in calls:
            await asyncio.sleep(0.01)
            call.hang_up()

    await asyncio.gather(server.drain("SIGTERM"), hang_up_one_by_one())

    assert [call.ended for call in calls] == [[], [], []]
    assert server.should_exit is True and runtime.sessions == set()


async def test_calls_still_going_at_the_timeout_are_ended_with_1001(clock):
    server, runtime = make_server(drain_timeout_s=3)
    calls = [FakeSession(runtime) for _ in range(2)]

    await server.drain("SIGTERM")

    assert [call.ended for call in calls] == [[(SHUTDOWN_REASON, 1001)], [(SHUTDOWN_REASON, 1001)]]
    assert runtime.sessions == set() and server.should_exit is True


async def test_a_call_that_will_not_end_does_not_hold_the_shutdown(clock):
    server, runtime = make_server(drain_timeout_s=3)
    stuck = FakeSession(runtime, stuck=True)

    await asyncio.wait_for(server.drain("SIGTERM"), timeout=5)  # bounded by the drainer's clock, not ours

    assert stuck.ended == [(SHUTDOWN_REASON, 1001)]  # asked once
    assert runtime.sessions == {stuck} and server.should_exit is True


async def test_with_no_calls_the_drain_exits_at_once(clock):
    server, runtime = make_server()
    await server.drain("SIGTERM")
    assert server.should_exit is True and runtime.sessions == set() and clock.now <= 2  # no waiting loop ran
