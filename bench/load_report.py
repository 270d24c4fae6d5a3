"""Formatting: the machine, the comparison table and the soak summary as text."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

from bench.load_analysis import (
    _f,
)

# --------------------------------------------------------------------------------------------
# report


def machine_info(cpus_target: set[int] | None, cpus_harness: set[int] | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop  # noqa: F401 (only whether it imports)

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    import websockets

    return {
        "cpu": model, "nproc": os.cpu_count(), "python": platform.python_version(), "loop": loop,
        "websockets": websockets.__version__, "loadavg": [round(x, 2) for x in os.getloadavg()],
        "pinning": {"target": sorted(cpus_target), "harness": sorted(cpus_harness)} if cpus_target else None,
    }


def format_table(report: dict) -> str:
    m = report["machine"]
    pin = m["pinning"]
    lines = [
        f"machine: {m['cpu']}, {m['nproc']} cores, Python {m['python']}, {m['loop']}; load average at start {m['loadavg']}",
        (f"pinning: target on CPU {pin['target']}, engine + load generator + driver on CPU {pin['harness']}" if pin else "pinning: off")
        + f"; nice {m.get('nice', 0)}",
        f"each call: {(report['config']['call_seconds'] + ' (soak)') if report.get('soak') else format(report['config']['duration'], 'g')} s of caller audio (50 frames/s) + model audio "
        f"({report['config']['delta_ms']} ms deltas, speed {report['config']['speed']:g}×)",
        "",
    ]
    if report["sweep"]:
        head = (f"{'calls':>5} {'target':<7} {'ok':>4} | {'up sent':>8} {'lost':>4} {'late':>5} {'p50':>6} {'p99':>6} {'max':>6} | "
                f"{'dn sent':>7} {'lost':>4} {'late':>5} {'p50':>6} {'p99':>6} {'max':>6} | {'cpu ms/':>7} {'core':>5} | "
                f"{'hz p50':>6} {'hz p99':>6} | {'rss rest':>8} {'at N':>6} {'after':>6} {'MB/call':>7}")
        lines += [head, " " * 19 + "| uplink, latency ms" + " " * 21 + "| downlink, latency ms" + " " * 18 + "| call-s   %    | loop lag ms   | RSS MB", "-" * len(head)]
        for point in report["sweep"]:
            for name in ("relay", "bridge", "sip"):
                r = point.get(name)
                if r is None:
                    continue
                u, d = r["uplink"], r["downlink"]
                hz = (r.get("loop_lag") or {}).get("healthz_rtt_ms") or {}
                rss = r.get("rss") or {}
                lines.append(
                    f"{r['calls']:>5} {name:<7} {r['calls_ok']:>4} | {u['sent']:>8} {u['lost']:>4} {u['late']:>5} "
                    f"{_f(u['latency_ms']['p50']):>6} {_f(u['latency_ms']['p99']):>6} {_f(u['latency_ms']['max'], 1):>6} | "
                    f"{d['sent']:>7} {d['lost']:>4} {d['late']:>5} {_f(d['latency_ms']['p50']):>6} {_f(d['latency_ms']['p99']):>6} "
                    f"{_f(d['latency_ms']['max'], 1):>6} | {_f(r['cpu'].get('cpu_ms_per_call_s')):>7} {_f(r['cpu'].get('core_pct'), 0):>5} | "
                    f"{_f(hz.get('p50')):>6} {_f(hz.get('p99')):>6} | {_f(rss.get('rest_mb'), 1):>8} {_f(rss.get('at_n_mb'), 1):>6} "
                    f"{_f(rss.get('after_mb'), 1):>6} {_f(rss.get('growth_mb_per_call'), 3):>7}"
                )
            ratios = point.get("ratios")
            if ratios:
                lines.append(
                    f"{point['calls']:>5} {'÷relay':<7} {'':>4} | {'':>8} {'':>4} {'':>5} {_f(ratios['uplink_p50']):>6} {_f(ratios['uplink_p99']):>6} {'':>6} | "
                    f"{'':>7} {'':>4} {'':>5} {_f(ratios['downlink_p50']):>6} {_f(ratios['downlink_p99']):>6} {'':>6} | "
                    f"{_f(ratios['cpu_per_call_s']):>7} {'':>5} | {'':>6} {_f(ratios['loop_lag_p99']):>6} | {'':>8} "
                    f"{_f(ratios['rss_at_n']):>6} {'':>6} {_f(ratios['rss_growth_per_call']):>7}"
                )
    lines.append("")
    lines.append(f"late = latency > {report['config']['late_ms']:g} ms; lost = sent, never received "
                 f"(downlink: sent > {report['config']['hangup_grace']:g} s before hang-up); hz = GET /healthz round trip")
    if report.get("soak"):
        soak = report["soak"]
        lines.append(f"  soak: harness {_f(soak['harness'].get('engine_loadgen_core_pct'), 0)} % of a core, other processes "
                     f"{_f(soak['harness'].get('foreign_core_pct'), 0)} %, pacing slip p99 {_f(soak['harness']['pacing_slip_ms']['p99'])} ms")
    for point in report["sweep"]:
        for name in ("relay", "bridge", "sip"):
            r = point.get(name)
            if r is None:
                continue
            hn = r["harness"]
            lines.append(f"  {r['calls']:>4} {name:<6}: harness {_f(hn.get('engine_loadgen_core_pct'), 0)} % of a core, "
                         f"other processes {_f(hn.get('foreign_core_pct'), 0)} %, steal {_f(hn.get('steal_core_pct'), 0)} %, "
                         f"pacing slip p99 {_f(hn['pacing_slip_ms']['p99'])} ms; first audio p50 {_f(r['time_to_first_audio_ms']['p50'], 1)} ms; "
                         f"CPU incl. call setup {_f(r['cpu'].get('cpu_ms_per_call_s_with_setup'))} ms/call-s"
                         + (f"; ERRORS {r['errors_total']}: {r['errors'][:2]}" if r["errors_total"] else ""))
    if report.get("soak"):
        lines += ["", format_soak(report["soak"])]
    if report.get("verdicts"):
        lines += ["", f"targets (at {report['verdicts_at']} calls):"]
        for text, ok, detail in report["verdicts"]:
            mark = "MET   " if ok else ("MISSED" if ok is False else "n/a   ")
            lines.append(f"  {mark} {text}: {detail}")
    return "\n".join(lines)


def format_soak(soak: dict) -> str:
    rss, u, d = soak["rss"], soak["uplink"], soak["downlink"]
    lines = [
        f"soak: {soak['calls']} concurrent calls for {soak['minutes']:g} min, calls of {soak['call_seconds']} s, "
        f"{len(soak.get('errors', []))} errors; {soak['calls_placed']} calls placed",
        f"  frames up {u['sent']} sent, {u['lost']} lost, p99 {_f(u['latency_ms']['p99'])} ms; "
        f"down {d['sent']} sent, {d['lost']} lost, p99 {_f(d['latency_ms']['p99'])} ms; "
        f"CPU {_f(soak['cpu'].get('cpu_ms_per_call_s_with_setup'))} ms/call-s incl. setup",
        f"  RSS MB: start {_f(rss.get('start_mb'), 1)}, rest {_f(rss.get('rest_mb'), 1)}, max {_f(rss.get('max_mb'), 1)}, "
        f"after {_f(rss.get('after_mb'), 1)} ({_f(rss.get('after_vs_rest_pct'), 1)} % vs rest)",
        "  RSS over time (s → MB, active calls):",
    ]
    timeline = soak.get("rss_timeline") or []
    active = dict((round(t), a) for t, a in soak.get("active_timeline") or [])
    stride = max(1, len(timeline) // 24)
    for t, mb in timeline[::stride]:
        lines.append(f"    {t:>7.0f} s  {mb:>7.1f} MB  {active.get(round(t), '')}")
    if soak.get("rss_slope_mb_per_min") is not None:
        lines.append(f"  RSS slope over the second half of the soak: {soak['rss_slope_mb_per_min']:+.3f} MB/min")
    return "\n".join(lines)
