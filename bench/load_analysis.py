"""Analysis of one measurement: latency joins, loss, CPU and memory, ratios, verdicts."""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

import numpy as np

from bench.common import (
    percentiles,
    unpack_ints,
    unpack_times,
)
from bench.load_harness import (
    TARGETS,
)
from bench.load_sampling import (
    Samples,
)

# --------------------------------------------------------------------------------------------
# analysis


def _ms(values: np.ndarray) -> np.ndarray:
    return values * 1000.0


def _pct(values: list[float] | np.ndarray) -> dict[str, float | None]:
    return {k: (round(v, 3) if v is not None else None) for k, v in percentiles(values).items()}


def analyze(cfg: argparse.Namespace, target: str, n_calls: int, loadgen: dict, engine: dict, samples: Samples, *,
            t_rest_end: float, t_calls_end: float, rss_start_kb: int) -> dict[str, Any]:
    engine_calls = {c["call"]: c for c in engine["calls"]}
    min_media = cfg.delta_ms * 8 // 2  # a delta's μ-law is delta_ms*8 bytes; the resampler's flush tail is 12
    up_lat: list[np.ndarray] = []
    down_lat: list[np.ndarray] = []
    up_at: list[np.ndarray] = []  # send times of the uplink frames, for the late-frame timeline
    down_at: list[np.ndarray] = []
    up = {"sent": 0, "received": 0, "lost": 0, "late": 0}
    down = {"sent": 0, "received": 0, "lost": 0, "late": 0, "in_flight_at_hangup": 0, "tails": 0}
    errors: list[str] = []
    first_audio_ms, slips = [], []
    ok_calls = []
    marks = {"received": 0, "echoed": 0}
    for call in loadgen["calls"]:
        if call["error"]:
            errors.append(f"{call['sid']}: {call['error']}")
        rec = engine_calls.get(call["sid"])
        if rec is None:
            if not call["error"]:
                errors.append(f"{call['sid']}: the engine never saw this call")
            continue
        send_t, sched_t = unpack_times(call["send_t"]), unpack_times(call["sched_t"])
        append_t = unpack_times(rec["append_t"])
        k = min(send_t.size, append_t.size)
        up["sent"] += int(send_t.size)
        up["received"] += int(append_t.size)
        up["lost"] += max(0, int(send_t.size - append_t.size))
        lat = _ms(append_t[:k] - send_t[:k])
        up_lat.append(lat)
        up_at.append(send_t[:k])
        up["late"] += int((lat > cfg.late_ms).sum())
        if sched_t.size:
            slips.append(_ms(send_t - sched_t))
        recv_t, recv_len = unpack_times(call["recv_t"]), unpack_ints(call["recv_len"])
        main = recv_t[recv_len >= min_media]
        down["tails"] += int((recv_len < min_media).sum())
        delta_t = unpack_times(rec["delta_t"])
        j = min(main.size, delta_t.size)
        lat = _ms(main[:j] - delta_t[:j])
        down_lat.append(lat)
        down_at.append(delta_t[:j])
        down["late"] += int((lat > cfg.late_ms).sum())
        down["sent"] += int(delta_t.size)
        down["received"] += int(main.size)
        hangup = call["t_stop"] if not math.isnan(call["t_stop"]) else (rec["closed_at"] or math.inf)
        unreceived = delta_t[j:]
        lost = int((unreceived < hangup - cfg.hangup_grace).sum())
        down["lost"] += lost
        down["in_flight_at_hangup"] += int(unreceived.size) - lost
        marks["received"] += call["marks_received"]
        marks["echoed"] += call["marks_echoed"]
        if not math.isnan(call["t_media_start"]):
            first_audio_ms.append((call["t_media_start"] - call["t_webhook"]) * 1000)
        if not call["error"]:
            ok_calls.append(call)
    up_all = np.concatenate(up_lat) if up_lat else np.array([])
    down_all = np.concatenate(down_lat) if down_lat else np.array([])
    slip_all = np.concatenate(slips) if slips else np.array([])
    t_first = min((c["t_webhook"] for c in loadgen["calls"]), default=0.0)
    late_timeline = _late_timeline(up_all, np.concatenate(up_at) if up_at else np.array([]),
                                   down_all, np.concatenate(down_at) if down_at else np.array([]), t_first, cfg.late_ms)

    # Steady state: every call streaming. CPU per call-second and RSS at N come from this window.
    result: dict[str, Any] = {"target": target, "calls": n_calls, "calls_placed": len(loadgen["calls"]),
                              "calls_ok": len(ok_calls), "errors": errors[:20],
                              "errors_total": len(errors)}
    starts = [c["t_media_start"] for c in ok_calls]
    stops = [c["t_stop"] for c in ok_calls]
    window = None
    if ok_calls:
        a, b = max(starts) + 1.0, min(stops)
        if b - a < 2.0:  # soak (calls come and go) or a very short run: the middle half of the traffic
            a, b = float(np.percentile(starts, 50)), float(np.percentile(stops, 50))
            a, b = (a, b) if b - a >= 1.0 else (min(starts), max(stops))
        window = (a, b)
    cpu: dict[str, Any] = {}
    rss: dict[str, Any] = {}
    loop: dict[str, Any] = {}
    harness: dict[str, Any] = {}
    if window and samples.t:
        a, b = window
        call_seconds = _call_seconds_in(ok_calls, a, b)
        cpu_s = samples.cpu_at(b) - samples.cpu_at(a)
        cpu["window_s"] = round(b - a, 2)
        cpu["cpu_ms_per_call_s"] = round(cpu_s * 1000 / call_seconds, 3) if call_seconds > 0 else None
        cpu["core_pct"] = round(100 * cpu_s / (b - a), 1)
        all_call_s = sum(max(0.0, (c["t_closed"] if not math.isnan(c["t_closed"]) else c["t_stop"]) - c["t_webhook"]) for c in ok_calls)
        t0 = min(c["t_webhook"] for c in ok_calls)
        total_cpu = samples.cpu_at(t_calls_end) - samples.cpu_at(t0)
        cpu["cpu_ms_per_call_s_with_setup"] = round(total_cpu * 1000 / all_call_s, 3) if all_call_s else None
        harness_s = samples.harness_cpu_at(b) - samples.harness_cpu_at(a)
        harness["engine_loadgen_core_pct"] = round(100 * harness_s / (b - a), 1)
        busy_s = samples.at(samples.machine_busy, b) - samples.at(samples.machine_busy, a)
        harness["foreign_core_pct"] = round(100 * max(0.0, busy_s - cpu_s - harness_s) / (b - a), 1)
        harness["steal_core_pct"] = round(100 * (samples.at(samples.machine_steal, b) - samples.at(samples.machine_steal, a)) / (b - a), 1)
        harness["loadgen_cpu_s"] = round(loadgen.get("loadgen_cpu_s", 0.0), 2)
        rest = [r for t, r in zip(samples.t, samples.rss_kb) if t <= t_rest_end] or samples.rss_kb[:1]
        at_n = samples.rss_between(a, b) or [max(samples.rss_kb)]
        after = [r for t, r in zip(samples.t, samples.rss_kb) if t >= t_calls_end + cfg.settle * 0.5] or samples.rss_kb[-1:]
        rest_kb, n_kb, after_kb = statistics.median(rest), statistics.median(at_n), statistics.median(after)
        rss = {
            "start_mb": round(rss_start_kb / 1024, 1),
            "rest_mb": round(rest_kb / 1024, 1),
            "at_n_mb": round(n_kb / 1024, 1),
            "max_mb": round(max(samples.rss_kb) / 1024, 1),
            "after_mb": round(after_kb / 1024, 1),
            "growth_mb_per_call": round((n_kb - rest_kb) / 1024 / max(1, n_calls), 3),
            "after_vs_rest_pct": round(100 * (after_kb - rest_kb) / rest_kb, 2),
        }
        idle = [r for t, r in zip(samples.probe_t, samples.rtt_ms) if t <= t_rest_end]
        busy = samples.rtt_between(a, b)
        loop = {"healthz_rtt_ms": _pct(busy), "healthz_rtt_idle_p50_ms": _pct(idle)["p50"], "samples": len(busy)}
    result.update({
        "uplink": {**up, "latency_ms": _pct(up_all)},
        "downlink": {**down, "latency_ms": _pct(down_all)},
        "marks": marks,
        "cpu": cpu,
        "rss": rss,
        "loop_lag": loop,
        "harness": {**harness, "pacing_slip_ms": _pct(slip_all), "loadgen_loop": loadgen.get("loop")},
        "time_to_first_audio_ms": _pct(first_audio_ms),
        "late_timeline": late_timeline,
    })
    if samples.t:
        step = max(1, len(samples.t) // 400)
        t0 = samples.t[0]
        result["rss_timeline"] = [[round(t - t0, 1), round(r / 1024, 1)] for t, r in list(zip(samples.t, samples.rss_kb))[::step]]
        active = [(t, a) for t, a in zip(samples.probe_t, samples.active) if a is not None]
        result["active_timeline"] = [[round(t - t0, 1), a] for t, a in active[:: max(1, len(active) // 400)]]
    return result


WORST_CASE_KEYS = frozenset({"lost", "errors_total"})


def merge_repeats(results: list[dict]) -> dict:
    """Repeats of one measurement: the median of every figure (the worst for losses and errors)."""
    if len(results) == 1:
        return results[0]

    def merge(values: list[Any], key: str = "") -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: merge([v.get(k) for v in values], k) for k in first}
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            return first
        numbers = [v for v in values if isinstance(v, (int, float))]
        if key in WORST_CASE_KEYS:
            return max(numbers)
        m = statistics.median(numbers)
        return int(round(m)) if isinstance(first, int) else round(m, 3)

    merged = merge(results)
    merged["repeats"] = len(results)
    merged["per_repeat"] = [
        {"cpu_ms_per_call_s": r["cpu"].get("cpu_ms_per_call_s"), "up_p99": r["uplink"]["latency_ms"]["p99"],
         "down_p99": r["downlink"]["latency_ms"]["p99"], "healthz_p99": (r.get("loop_lag") or {}).get("healthz_rtt_ms", {}).get("p99"),
         "foreign_core_pct": r["harness"].get("foreign_core_pct")}
        for r in results
    ]
    return merged


def _late_timeline(up: np.ndarray, up_at: np.ndarray, down: np.ndarray, down_at: np.ndarray, t0: float,
                   late_ms: float) -> list[list[float]]:
    """Seconds of the run (since the first webhook) with late frames: [s, late up, late down, worst ms].
    Tells a few stalls (GC, a neighbour's burst) from a steady overload, and setup from steady state."""
    rows: dict[int, list[float]] = {}
    for lat, at, col in ((up, up_at, 1), (down, down_at, 2)):
        late = lat > late_ms
        for second, value in zip(((at[late] - t0) // 1).astype(int), lat[late]):
            row = rows.setdefault(int(second), [int(second), 0, 0, 0.0])
            row[col] += 1
            row[3] = max(row[3], round(float(value), 1))
    return [rows[k] for k in sorted(rows)][:200]


def _call_seconds_in(calls: list[dict], a: float, b: float) -> float:
    return sum(max(0.0, min(b, c["t_stop"]) - max(a, c["t_media_start"])) for c in calls)


def add_ratios(bridge: dict, relay: dict) -> dict[str, float | None]:
    def ratio(x: float | None, y: float | None) -> float | None:
        return round(x / y, 2) if x is not None and y not in (None, 0) else None

    def get(d: dict, *path: str) -> Any:
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None
        return d

    keys = {
        "uplink_p50": ("uplink", "latency_ms", "p50"), "uplink_p99": ("uplink", "latency_ms", "p99"),
        "downlink_p50": ("downlink", "latency_ms", "p50"), "downlink_p99": ("downlink", "latency_ms", "p99"),
        "cpu_per_call_s": ("cpu", "cpu_ms_per_call_s"), "loop_lag_p99": ("loop_lag", "healthz_rtt_ms", "p99"),
        "rss_at_n": ("rss", "at_n_mb"), "rss_growth_per_call": ("rss", "growth_mb_per_call"),
    }
    return {name: ratio(get(bridge, *path), get(relay, *path)) for name, path in keys.items()}


def verdicts(bridge: dict, relay: dict | None, soak: dict | None = None) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    up, down = bridge["uplink"]["latency_ms"]["p99"], bridge["downlink"]["latency_ms"]["p99"]
    n = bridge["calls"]
    out.append((f"p99 added latency ≤ {TARGETS['latency_p99_ms']:g} ms each way ({n} calls)",
                None if up is None or down is None else (up <= TARGETS["latency_p99_ms"] and down <= TARGETS["latency_p99_ms"]),
                f"up {_f(up)} ms, down {_f(down)} ms"))
    lost = bridge["uplink"]["lost"] + bridge["downlink"]["lost"]
    out.append(("no lost frames", lost == 0 and bridge["errors_total"] == 0,
                f"{bridge['uplink']['lost']} up, {bridge['downlink']['lost']} down lost; {bridge['errors_total']} failed calls"))
    lag = (bridge.get("loop_lag") or {}).get("healthz_rtt_ms", {}).get("p99")
    out.append((f"loop lag p99 ≤ {TARGETS['loop_lag_p99_ms']:g} ms (/healthz RTT)", None if lag is None else lag <= TARGETS["loop_lag_p99_ms"], f"{_f(lag)} ms"))
    if relay is not None:
        b, r = bridge["cpu"].get("cpu_ms_per_call_s"), relay["cpu"].get("cpu_ms_per_call_s")
        ok = None if not b or not r else b / r <= TARGETS["cpu_ratio"]
        out.append((f"CPU per call-second ≤ {TARGETS['cpu_ratio']:g}× relay", ok,
                    f"{_f(b)} vs {_f(r)} ms → {_f(b / r if b and r else None)}×"))
    g = bridge["rss"].get("growth_mb_per_call")
    out.append((f"RSS growth ≤ {TARGETS['rss_growth_mb_per_call']:g} MB per concurrent call", None if g is None else g <= TARGETS["rss_growth_mb_per_call"], f"{_f(g)} MB"))
    if soak is not None:
        p = soak["rss"].get("after_vs_rest_pct")
        out.append((f"RSS after soak within {TARGETS['soak_rss_after_pct']:g} % of rest", None if p is None else abs(p) <= TARGETS["soak_rss_after_pct"], f"{_f(p)} %"))
    return out


def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"
