"""`bench.load --ceiling`: the largest number of concurrent calls a target carries within the latency
target and without loss, found with few short runs.

Pure logic: `find_ceiling` takes the measurement as a function (calls -> bench.load's result dict), so
tests drive it with a fake one. The search: grow N geometrically from the start until a run fails (or
the top of the range passes), then bisect between the last pass and the first failure until they are
within `resolution` calls. Load ceilings are not perfectly monotonic on a real machine (a neighbour's
burst can fail one run), so a failure is taken as it comes: the answer is the largest N that passed
in this search, with every probe listed so a reader can see how close the calls were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Measure = Callable[[int], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Probe:
    calls: int
    passed: bool
    up_p99_ms: float | None
    down_p99_ms: float | None
    lost: int
    errors: int
    why: str  # "" when it passed


@dataclass(slots=True)
class Ceiling:
    calls: int | None  # None: not even the smallest N tried passed
    p99_ms: float
    probes: list[Probe] = field(default_factory=list)
    capped: bool = False  # the top of the range passed: the ceiling is at least `calls`

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "p99_ms": self.p99_ms,
            "capped": self.capped,
            "probes": [
                {
                    "calls": p.calls,
                    "passed": p.passed,
                    "up_p99_ms": p.up_p99_ms,
                    "down_p99_ms": p.down_p99_ms,
                    "lost": p.lost,
                    "errors": p.errors,
                    "why": p.why,
                }
                for p in self.probes
            ],
        }


def judge(calls: int, result: dict[str, Any], p99_ms: float) -> Probe:
    """Whether one run met the target: p99 ≤ p99_ms both ways, nothing lost, no call failed."""
    up = result["uplink"]["latency_ms"].get("p99")
    down = result["downlink"]["latency_ms"].get("p99")
    lost = int(result["uplink"]["lost"]) + int(result["downlink"]["lost"])
    errors = int(result.get("errors_total", 0))
    reasons = []
    if up is None or up > p99_ms:
        reasons.append(f"uplink p99 {up} ms")
    if down is None or down > p99_ms:
        reasons.append(f"downlink p99 {down} ms")
    if lost:
        reasons.append(f"{lost} frames lost")
    if errors:
        reasons.append(f"{errors} calls failed")
    return Probe(calls, not reasons, up, down, lost, errors, ", ".join(reasons))


async def find_ceiling(
    measure: Measure,
    *,
    start: int,
    top: int,
    resolution: int,
    p99_ms: float,
    growth: float = 2.0,
    progress: Callable[[str], None] = lambda message: None,
) -> Ceiling:
    """The largest N in [1, top] (to within `resolution`) whose run meets the target."""
    if not (1 <= start <= top) or resolution < 1 or growth <= 1:
        raise ValueError("need 1 <= start <= top, resolution >= 1 and growth > 1")
    ceiling = Ceiling(None, p99_ms)

    async def probe(n: int) -> bool:
        result = judge(n, await measure(n), p99_ms)
        ceiling.probes.append(result)
        progress(f"ceiling: {n} calls {'pass' if result.passed else 'fail: ' + result.why}")
        return result.passed

    # Bracket: the largest pass seen (`good`) and the smallest failure (`bad`).
    good, bad = 0, None
    n = start
    while True:
        if await probe(n):
            good = n
            if n == top:
                ceiling.calls, ceiling.capped = top, True
                return ceiling
            n = min(top, max(n + 1, int(n * growth)))
        else:
            bad = n
            break
    if good == 0:  # the start failed: look below it
        lo, hi = 0, bad
    else:
        lo, hi = good, bad
    while hi - lo > resolution:
        mid = (lo + hi) // 2
        if await probe(max(mid, 1)):
            lo = mid
        else:
            hi = mid
    ceiling.calls = lo or None
    return ceiling


def format_ceiling(ceiling: Ceiling, target: str) -> str:
    lines = [f"{'calls':>6}  {'result':<6} {'up p99':>8} {'down p99':>9} {'lost':>5} {'failed':>6}"]
    lines.extend(
        f"{p.calls:>6}  {'pass' if p.passed else 'FAIL':<6} {_ms(p.up_p99_ms):>8} {_ms(p.down_p99_ms):>9} "
        f"{p.lost:>5} {p.errors:>6}"
        for p in sorted(ceiling.probes, key=lambda p: p.calls)
    )
    if ceiling.calls is None:
        lines.append(
            f"ceiling ({target}): none — even {min(p.calls for p in ceiling.probes)} calls missed "
            f"p99 ≤ {ceiling.p99_ms:g} ms with no loss"
        )
    else:
        at_least = "at least " if ceiling.capped else ""
        lines.append(
            f"ceiling ({target}): {at_least}{ceiling.calls} concurrent calls with p99 ≤ {ceiling.p99_ms:g} ms "
            "both ways and no loss"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
