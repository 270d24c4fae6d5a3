"""bench.load --ceiling's search, driven by a fake measurement (no processes, no timing)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.load_ceiling import find_ceiling, format_ceiling, judge


def result(up_p99: float | None, down_p99: float | None, lost: int = 0, errors: int = 0) -> dict[str, Any]:
    return {
        "uplink": {"latency_ms": {"p99": up_p99}, "lost": lost},
        "downlink": {"latency_ms": {"p99": down_p99}, "lost": 0},
        "errors_total": errors,
    }


class FakeTarget:
    """p99 grows with the number of calls and crosses 20 ms just above `ceiling` calls."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.measured: list[int] = []

    async def measure(self, calls: int) -> dict[str, Any]:
        self.measured.append(calls)
        p99 = 20.0 * calls / self.ceiling if self.ceiling else 1000.0
        return result(p99 * 0.9, p99)


def search(target: FakeTarget, **kwargs: Any) -> Any:
    params = {"start": 50, "top": 400, "resolution": 10, "p99_ms": 20.0, **kwargs}
    return asyncio.run(find_ceiling(target.measure, **params))


@pytest.mark.parametrize("true_ceiling", [51, 99, 137, 250, 399])
def test_the_ceiling_is_the_largest_passing_n_within_the_resolution(true_ceiling: int) -> None:
    target = FakeTarget(true_ceiling)
    found = search(target)
    assert found.calls is not None and true_ceiling - 10 <= found.calls <= true_ceiling
    assert not found.capped
    # each N once, and few runs: log2(400 / 50) + 1 growing, log2(200 / 10) bisecting at most
    assert len(target.measured) == len(set(target.measured)) <= 9
    assert all(p.passed == (p.calls <= true_ceiling) for p in found.probes)


def test_below_the_start_it_searches_down() -> None:
    target = FakeTarget(23)
    found = search(target)
    assert target.measured[0] == 50 and found.calls is not None and 13 <= found.calls <= 23


def test_a_target_that_carries_the_top_of_the_range_is_capped_there() -> None:
    found = search(FakeTarget(10_000), top=300)
    assert found.capped and found.calls == 300
    assert "at least 300" in format_ceiling(found, "bridge")


def test_nothing_passing_is_no_ceiling() -> None:
    found = search(FakeTarget(0), start=4, resolution=1)
    assert found.calls is None and "none" in format_ceiling(found, "bridge")


def test_a_run_that_loses_frames_or_calls_fails_however_fast_it_was() -> None:
    assert judge(10, result(1.0, 1.0), 20.0).passed
    assert not judge(10, result(1.0, 1.0, lost=1), 20.0).passed
    assert "1 calls failed" in judge(10, result(1.0, 1.0, errors=1), 20.0).why
    assert not judge(10, result(1.0, 20.5), 20.0).passed
    assert not judge(10, result(None, 1.0), 20.0).passed  # no latency measured: not a pass


def test_a_failure_above_a_pass_is_believed_once() -> None:
    # A neighbour's burst failing one run must not send the search back over the same N.
    async def flaky(calls: int) -> dict[str, Any]:
        return result(5.0, 5.0 if calls != 200 else 50.0)

    found = asyncio.run(find_ceiling(flaky, start=50, top=400, resolution=10, p99_ms=20.0))
    assert found.calls is not None and 190 <= found.calls < 200
    assert [p.calls for p in found.probes].count(200) == 1


def test_bad_search_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        search(FakeTarget(100), start=0)
    with pytest.raises(ValueError):
        search(FakeTarget(100), start=500, top=400)
