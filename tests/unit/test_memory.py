"""Giving memory back when idle: the decision (plain numbers), and the release itself."""

from __future__ import annotations

import gc
import platform
import weakref

import pytest

from telephony_bridge.server.memory import (
    IdlePolicy,
    _glibc_malloc_trim,
    freeze_startup_heap,
    release_memory,
    rss_bytes,
)
from telephony_bridge.server.settings import Settings


def decisions(policy: IdlePolicy, timeline: list[tuple[float, int, int]]) -> list[float]:
    """The times at which the policy releases, over (time, calls in progress, streams opened) samples."""
    return [now for now, active, opened in timeline if policy.should_release(active, opened, now)]


def test_nothing_to_release_before_the_first_call():
    assert decisions(IdlePolicy(idle_s=1.0), [(t / 4, 0, 0) for t in range(40)]) == []


def test_releases_once_after_calls_end_and_the_bridge_stayed_idle():
    timeline = [(0.0, 3, 3), (0.5, 2, 3), (1.0, 0, 3), (1.5, 0, 3), (1.9, 0, 3), (2.0, 0, 3), (2.5, 0, 3), (9.0, 0, 3)]
    assert decisions(IdlePolicy(idle_s=1.0), timeline) == [2.0]


def test_a_call_during_the_idle_wait_starts_it_again():
    timeline = [(0.0, 1, 1), (1.0, 0, 1), (1.8, 1, 2), (2.2, 0, 2), (3.0, 0, 2), (3.2, 0, 2), (4.0, 0, 2)]
    assert decisions(IdlePolicy(idle_s=1.0), timeline) == [3.2]


def test_a_call_too_short_to_be_seen_in_progress_still_counts():
    timeline = [(0.0, 0, 0), (0.25, 0, 1), (0.5, 0, 1), (1.0, 0, 1), (1.25, 0, 1), (1.5, 0, 2), (2.0, 0, 2), (2.5, 0, 2)]
    assert decisions(IdlePolicy(idle_s=1.0), timeline) == [1.25, 2.5]


def test_each_busy_period_gets_its_own_release():
    timeline = [(0.0, 5, 5), (1.0, 0, 5), (2.0, 0, 5), (3.0, 1, 6), (4.0, 0, 6), (4.5, 0, 6), (5.0, 0, 6), (6.0, 0, 6)]
    assert decisions(IdlePolicy(idle_s=1.0), timeline) == [2.0, 5.0]


def test_release_frees_garbage_held_in_reference_cycles():
    class Node:
        pass

    gc.disable()  # or a collection triggered by the test's own allocations could do the job first
    try:
        node = Node()
        node.self = node  # a cycle: reference counting alone never frees it
        node.payload = bytearray(1 << 20)
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        released = release_memory(None)
    finally:
        gc.enable()
    assert alive() is None
    assert released.collected >= 1 and not released.trimmed


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="RSS from /proc, glibc's malloc_trim")
def test_release_trims_with_glibc_and_reports_rss():
    trim = _glibc_malloc_trim()
    assert trim is not None  # glibc-based Linux (the project's machines and its Docker image)
    released = release_memory(trim)
    assert released.trimmed
    assert released.rss_before and released.rss_after and released.rss_after == pytest.approx(rss_bytes(), rel=0.5)


@pytest.mark.parametrize("text, expected", [(None, 1.0), ("0", 0.0), ("2.5", 2.5)])
def test_idle_release_setting(text, expected):
    environ = {} if text is None else {"IDLE_RELEASE_S": text}
    assert Settings.from_environ(environ).idle_release_s == expected


@pytest.mark.parametrize("text", ["-1", "soon"])
def test_idle_release_setting_rejects_nonsense(text):
    with pytest.raises(ValueError, match="IDLE_RELEASE_S"):
        Settings.from_environ({"IDLE_RELEASE_S": text})


@pytest.mark.parametrize("text, expected", [(None, True), ("0", False), ("off", False), ("1", True)])
def test_gc_freeze_is_on_for_the_server_and_can_be_turned_off(text, expected):
    environ = {} if text is None else {"GC_FREEZE": text}
    assert Settings.from_environ(environ).gc_freeze is expected
    assert Settings().gc_freeze is False  # a server built in code (a test's) leaves its process alone
    with pytest.raises(ValueError, match="GC_FREEZE"):
        Settings.from_environ({"GC_FREEZE": "maybe"})


def test_freezing_the_startup_heap_takes_it_out_of_full_collections():
    class Node:
        pass

    assert gc.get_freeze_count() == 0
    try:
        garbage = Node()
        garbage.self = garbage  # start-up garbage: collected before the freeze, never frozen
        alive = weakref.ref(garbage)
        del garbage
        frozen = freeze_startup_heap()
        assert alive() is None
        assert frozen == gc.get_freeze_count() > 1000  # the interpreter, pytest and the bridge's modules
        assert len(gc.get_objects(generation=2)) < frozen / 10  # what a full collection still walks
    finally:
        gc.unfreeze()
