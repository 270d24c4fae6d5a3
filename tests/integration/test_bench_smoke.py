"""Smoke run of the load benchmark (bench/load.py), processes and all, so it cannot rot.

Two calls for three seconds through the real bridge (`telephony-bridge serve`) and through the relay
floor, with the bench engine and the load generator as separate processes. Asserts the report is
complete and sane — never a timing figure (timing belongs in the benchmark, not in asserts).
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from bench import load

pytestmark = pytest.mark.timeout(90)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _run(tmp_path, capsys, *extra: str) -> tuple[str, dict]:
    """bench.load for two 3-second calls; what it printed and its JSON report."""
    out = tmp_path / "report.json"
    argv = ["--calls", "2", "--duration", "3", "--ramp", "0.2", "--warmup", "0", "--rest", "0.3", "--settle", "0.5",
            "--pin", "off", "--nice", "0", "--out", str(out), *extra]
    try:
        code = load.main(argv)
        printed = capsys.readouterr().out
        assert code == 0, printed
        report = json.loads(out.read_text())
    finally:
        # bench.load ends every process it started; this is only the safety net if it did not.
        pids = json.loads(out.read_text()).get("pids", []) if out.exists() else []
        for pid in pids:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
    assert pids and not any(_alive(pid) for pid in pids), "a benchmark process outlived the run"
    return printed, report


def test_load_benchmark_smoke(tmp_path, capsys):
    printed, report = _run(tmp_path, capsys)
    assert "bridge" in printed and "÷relay" in printed and "targets (at 2 calls)" in printed
    (point,) = report["sweep"]
    for target in ("relay", "bridge"):
        r = point[target]
        assert r["calls_ok"] == 2 and r["errors_total"] == 0, r["errors"]
        up, down = r["uplink"], r["downlink"]
        assert up["sent"] > 2 * 100 and up["received"] == up["sent"] and up["lost"] == 0  # ~150 frames a call
        assert down["sent"] > 0 and down["received"] > 0 and down["lost"] == 0
        for direction in (up, down):
            lat = direction["latency_ms"]
            assert lat["p50"] is not None and 0 < lat["p50"] <= lat["p99"] <= lat["max"]
        assert r["marks"]["received"] > 0 and r["marks"]["echoed"] > 0
        assert r["cpu"]["cpu_ms_per_call_s"] > 0
        assert r["rss"]["rest_mb"] > 10 and r["rss"]["at_n_mb"] > 10 and r["rss"]["after_mb"] > 10
        assert r["loop_lag"]["healthz_rtt_ms"]["p99"] is not None and r["loop_lag"]["samples"] > 0
    ratios = point["ratios"]
    assert all(isinstance(ratios[k], float) for k in ("uplink_p99", "downlink_p99", "cpu_per_call_s", "loop_lag_p99"))
    assert {text for text, _, _ in report["verdicts"]} >= {"no lost frames"}


def test_sip_calls_go_through_the_bridges_sip_listener(tmp_path, capsys):
    """`--targets sip`: the load generator's phones INVITE `serve --sip` over a trunk socket, talk
    RTP and hang up with BYE; every call is set up, carries audio both ways and ends cleanly."""
    printed, report = _run(tmp_path, capsys, "--targets", "sip")
    assert "  2 sip " in printed
    (point,) = report["sweep"]
    r = point["sip"]
    assert r["calls_ok"] == 2 and r["errors_total"] == 0, r["errors"]  # a refused INVITE or an unanswered BYE is one
    up, down = r["uplink"], r["downlink"]
    assert up["sent"] > 2 * 100 and up["received"] == up["sent"] and up["lost"] == 0
    assert down["sent"] > 0 and down["received"] > 0 and down["lost"] == 0
    assert r["marks"]["received"] == 0  # no marks travel on SIP
    assert r["cpu"]["cpu_ms_per_call_s"] > 0
