"""Load benchmark: N simulated Twilio calls through one bridge process, next to a pass-through floor.

    python -m bench.load                          # sweep 10, 50 calls; bridge and relay; table
    python -m bench.load --calls 10,50,100,200    # a bigger sweep
    python -m bench.load --calls 100 --json       # JSON on stdout (--out FILE writes it too)
    python -m bench.load --soak --minutes 10      # 50 calls hanging up and redialling; RSS over time
    python -m bench.load --ceiling --targets bridge --duration 8   # the largest N with p99 <= 20 ms, no loss
    python -m bench.load --transport webrtc --targets bridge   # the model leg over WebRTC

Each measurement runs three fresh processes (four with this driver): the bench engine
(bench/engine.py), the target — the bridge (`telephony-bridge serve` with bench/scenarios) or the
relay (bench/relay.py, the floor) — and the load generator (bench/loadgen.py). Caller audio flows
at 50 frames/s per call and the engine answers with model audio deltas, so both directions carry
traffic. This driver samples the target from the outside: /proc/<pid>/stat (CPU), /proc/<pid>/status
(RSS), and the round trip of GET /healthz every 100 ms on a kept-alive connection (a proxy for the
event loop's lag: a request waits for the loop like any frame; it includes ~0.2 ms of HTTP work).

Latency joins timestamps taken in different processes on CLOCK_MONOTONIC (one clock machine-wide):
uplink = engine's receive time of the k-th `input_audio_buffer.append` − load generator's send
time of the call's k-th media frame; downlink = load generator's receive time of the j-th media
message carrying a model delta − engine's send time of the j-th delta. Per-call order is the join
key (the bridge sends exactly one append per frame and one media per delta; the resampler's flush
at the end of each response adds a 12-byte tail, recognised by its size and left out).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

if __package__ in (None, ""):  # `python bench/load.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    free_port,
    machine_cpu_seconds,
    proc_rss_kb,
    self_cpu_seconds,
)
from bench.load_analysis import (  # noqa: E402
    _f,
    add_ratios,
    analyze,
    merge_repeats,
    verdicts,
)
from bench.load_ceiling import find_ceiling, format_ceiling  # noqa: E402
from bench.load_harness import (  # noqa: E402
    SCENARIOS,
    BenchError,
    Child,
    Harness,
    _bridge_argv,
    _child_env,
    _http_get,
    _wait_healthy,
)
from bench.load_report import (  # noqa: E402
    format_table,
    machine_info,
)
from bench.load_sampling import (  # noqa: E402
    Sampler,
)

# --------------------------------------------------------------------------------------------
# one measurement


async def _start_target(
    h: Harness, cfg: argparse.Namespace, target: str, engine_url: str, webrtc_url: str | None = None
) -> tuple[Child, int, int]:
    """The target process, its HTTP port (/healthz), and the port its load generator calls (the
    same, or for SIP the bridge's SIP listener's, UDP). `webrtc_url`: the bridge's model leg over WebRTC."""
    for attempt in range(3):
        port = calls_port = free_port()
        if target == "bridge":
            env = _child_env()
            env["REALTIME_URL"] = env["BENCH_ENGINE_URL"] = engine_url
            env["BENCH_CODEC"] = cfg.bridge_codec
            env["BENCH_DIALECT"] = cfg.dialect
            if webrtc_url is not None:  # the model leg over WebRTC, ICE on loopback only
                env["BENCH_WEBRTC_URL"] = webrtc_url
                env["WEBRTC_HOST_ADDRESSES"] = "127.0.0.1"
            argv = _bridge_argv(cfg) + ["serve", "--host", "127.0.0.1", "--port", str(port), "--scenarios", str(SCENARIOS)]
            if cfg.bridge_workers > 1:
                argv += ["--workers", str(cfg.bridge_workers)]
            child, _ = await h.spawn("bridge", argv, env=env, target=True)
        elif target == "sip":  # the same bridge, its calls arriving over SIP/RTP (bench/sip_loadgen.py)
            env = _child_env()
            env["REALTIME_URL"] = env["BENCH_ENGINE_URL"] = engine_url
            env["BENCH_CODEC"] = cfg.bridge_codec
            env["BENCH_DIALECT"] = cfg.dialect
            env["SIP_ALLOW"] = "127.0.0.1"  # the load generator's trunk, admitted without a challenge
            env["SIP_INVITE_RATE"] = "1000"  # the default (10 a second per peer) would throttle the ramp
            env["RTP_PORTS"] = cfg.rtp_ports
            calls_port = free_port(socket.SOCK_DGRAM)
            argv = _bridge_argv(cfg) + ["serve", "--host", "127.0.0.1", "--port", str(port), "--scenarios", str(SCENARIOS),
                                        "--sip", f"udp:127.0.0.1:{calls_port}"]
            child, _ = await h.spawn("sip", argv, env=env, target=True)
        else:
            argv = [sys.executable, "-m", "bench.relay", "--port", str(port), "--engine-url", engine_url, "--server", cfg.relay_server,
                    "--json", cfg.relay_json]
            child, _ = await h.spawn("relay", argv, target=True)
        try:
            await _wait_healthy(child, port)
            return child, port, calls_port
        except BenchError:
            await h.stop(child)
            if attempt == 2 or "address already in use" not in child.log_tail().lower():
                raise
    raise AssertionError("unreachable")


async def _run_loadgen(h: Harness, cfg: argparse.Namespace, target: str, port: int, calls: int, *, duration: float,
                       ramp: float, soak_s: float = 0.0, tag: str) -> tuple[dict, Child]:
    out = h.run_dir / f"loadgen-{tag}.json"
    if target == "sip":
        if soak_s:
            raise BenchError("the SIP load generator has no soak mode yet")
        argv = [sys.executable, "-m", "bench.sip_loadgen", "--sip", f"127.0.0.1:{port}", "--calls", str(calls),
                "--duration", str(duration), "--ramp", str(ramp), "--delta-ms", str(cfg.delta_ms), "--out", str(out)]
        child, _ = await h.spawn(f"loadgen-{tag}", argv)
        return {"out": out}, child
    argv = [sys.executable, "-m", "bench.loadgen", "--url", f"http://127.0.0.1:{port}", "--calls", str(calls),
            "--duration", str(duration), "--ramp", str(ramp), "--echo-marks", cfg.echo_marks, "--out", str(out)]
    if target == "relay" and cfg.relay_server == "websockets":
        argv += ["--stream-url", f"ws://127.0.0.1:{port}/media-stream"]
    if soak_s:
        argv += ["--soak-seconds", str(soak_s), "--call-seconds", cfg.call_seconds]
    child, _ = await h.spawn(f"loadgen-{tag}", argv)
    return {"out": out}, child


async def _await_loadgen(h: Harness, child: Child, out: Path, timeout_s: float) -> dict:
    try:
        await asyncio.wait_for(child.proc.wait(), timeout_s)
    except TimeoutError:
        await h.stop(child)
        raise BenchError(f"load generator did not finish in {timeout_s:.0f} s:\n{child.log_tail()}") from None
    h.children.remove(child)
    if child.proc.returncode != 0 or not out.exists():
        raise BenchError(f"load generator failed ({child.proc.returncode}):\n{child.log_tail()}")
    return orjson.loads(out.read_bytes())


def progress(message: str) -> None:
    """Long runs say what they are doing, on stderr (stdout carries the table or the JSON)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def _report_soak_progress(sampler: Sampler, soak_s: float, every_s: float = 30.0) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        s = sampler.samples
        active = next((a for a in reversed(s.active) if a is not None), None)
        rss = f"{s.rss_kb[-1] / 1024:.1f} MB" if s.rss_kb else "?"
        progress(f"soak {time.monotonic() - start:.0f}/{soak_s:.0f} s: {active} calls in progress, RSS {rss}")


async def wait_until_quiet(max_wait_s: float, threshold_pct: float = 15.0) -> float:
    """On a shared machine, wait (up to max_wait_s) for a second in which other processes use less
    than threshold_pct of one core; returns that share as last seen (our processes are all stopped here)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, own0, t0 = machine_cpu_seconds()[0], self_cpu_seconds(), time.monotonic()
        await asyncio.sleep(1.0)
        busy1, own1, t1 = machine_cpu_seconds()[0], self_cpu_seconds(), time.monotonic()
        pct = 100 * max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)
        if pct < threshold_pct or time.monotonic() >= deadline:
            return round(pct, 1)


async def measure(h: Harness, cfg: argparse.Namespace, target: str, calls: int, *, soak_s: float = 0.0) -> dict[str, Any]:
    background = await wait_until_quiet(cfg.quiet_wait) if cfg.quiet_wait > 0 else None
    webrtc_port = free_port() if cfg.transport == "webrtc" and target == "bridge" else 0
    engine, engine_port = await h.spawn(
        f"engine-{target}-{calls}",
        [sys.executable, "-m", "bench.engine", "--port", "0", "--delta-ms", str(cfg.delta_ms),
         "--response-ms", str(cfg.response_ms), "--speed", str(cfg.speed), "--webrtc-port", str(webrtc_port)],
        ready_line=True,
    )
    engine_url = f"ws://127.0.0.1:{engine_port}/v1/realtime"
    webrtc_url = f"http://127.0.0.1:{webrtc_port}/v1/realtime/calls" if webrtc_port else None
    server, port, calls_port = await _start_target(h, cfg, target, engine_url, webrtc_url)
    try:
        rss_start = proc_rss_kb(server.pid)
        if cfg.warmup > 0:  # first-call imports and caches are not per-call memory
            _, warm = await _run_loadgen(h, cfg, target, calls_port, 1, duration=cfg.warmup, ramp=0, tag=f"{target}-{calls}-warmup")
            warm_result = await _await_loadgen(h, warm, h.run_dir / f"loadgen-{target}-{calls}-warmup.json", 60)
            if any(c["error"] for c in warm_result["calls"]):
                raise BenchError(f"{target}: warm-up call failed: {warm_result['calls'][0]['error']}\n{server.log_tail()}")
            await _http_get(f"http://127.0.0.1:{engine_port}/stats?reset=1")
        sampler = Sampler(server.pid, [engine.pid], port, cfg.probe_interval, 0.25 if not soak_s else 1.0)
        sampler.start()
        await asyncio.sleep(cfg.rest)
        t_rest_end = time.monotonic()
        info, loadgen = await _run_loadgen(h, cfg, target, calls_port, calls, duration=cfg.duration, ramp=cfg.ramp,
                                           soak_s=soak_s, tag=f"{target}-{calls}")
        sampler.harness_pids.append(loadgen.pid)
        progress(f"{calls} calls through the {target}: " + (f"soaking for {soak_s:.0f} s" if soak_s else f"{cfg.duration:g} s of audio each"))
        ticker = asyncio.create_task(_report_soak_progress(sampler, soak_s)) if soak_s else None
        budget = cfg.ramp + (soak_s or cfg.duration) + 60 + 0.2 * calls + (max(float(x) for x in cfg.call_seconds.split(":")) if soak_s else 0)
        try:
            loadgen_result = await _await_loadgen(h, loadgen, info["out"], budget)
        finally:
            if ticker is not None:
                ticker.cancel()
        t_calls_end = time.monotonic()
        await asyncio.sleep(cfg.settle)
        await sampler.stop()
        raw_stats = await _http_get(f"http://127.0.0.1:{engine_port}/stats")
        engine_stats = orjson.loads(raw_stats)
        if cfg.keep:
            (h.run_dir / f"engine-{target}-{calls}.json").write_bytes(raw_stats)
        if server.proc.returncode is not None:
            raise BenchError(f"{target} exited during the run:\n{server.log_tail()}")
    finally:
        await h.stop(server)
        await h.stop(engine)
    result = analyze(cfg, target, calls, loadgen_result, engine_stats, sampler.samples, t_rest_end=t_rest_end,
                     t_calls_end=t_calls_end, rss_start_kb=rss_start)
    result["pids"] = {"engine": engine.pid, target: server.pid, "loadgen": loadgen.pid}
    result["harness"]["background_before_pct"] = background
    up, down = result["uplink"]["latency_ms"]["p99"], result["downlink"]["latency_ms"]["p99"]
    progress(f"{calls} calls through the {target}: done; {_f(result['cpu'].get('cpu_ms_per_call_s'))} ms CPU per "
             f"call-second, p99 latency {_f(up)} ms up, {_f(down)} ms down")
    return result


# --------------------------------------------------------------------------------------------
# driver


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", default="10,50", help="comma-separated sweep of concurrent calls (default 10,50)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of caller audio per call (default 20)")
    p.add_argument("--ramp", type=float, default=3.0, help="spread call starts over this many seconds (default 3)")
    p.add_argument("--repeat", type=int, default=1, help="measure each point this many times (alternating targets) and report medians")
    p.add_argument("--targets", default="relay,bridge",
                   help="relay,bridge,sip (default relay,bridge; ratios need both; sip: the bridge with SIP/RTP calls)")
    p.add_argument("--rtp-ports", default="40000-40999", help="sip target: RTP_PORTS (default 40000-40999)")
    p.add_argument("--relay-server", choices=("starlette", "websockets"), default="starlette",
                   help="the floor's stack: starlette (the bridge's: uvicorn+Starlette) or plain websockets")
    p.add_argument("--relay-json", choices=("std", "orjson"), default="std",
                   help="the floor's JSON library: std (the floor of record) or orjson (a leaner floor; bench/README.md)")
    p.add_argument("--dialect", choices=("realtime", "live"), default="realtime",
                   help="the bridge's model protocol: Realtime GA (default) or GPT-Live (μ-law pass-through both ways)")
    p.add_argument("--transport", choices=("websocket", "webrtc"), default="websocket",
                   help="the bridge's model leg: a WebSocket (default) or WebRTC (Opus track, oai-events data channel); "
                        "the relay floor stays a WebSocket relay")
    p.add_argument("--bridge-codec", choices=("pcm16", "g711_ulaw"), default="pcm16",
                   help="the model's audio format in the bridge: pcm16 (resampled, default) or g711_ulaw (passed through)")
    p.add_argument("--delta-ms", type=int, default=100, help="model audio per delta (default 100)")
    p.add_argument("--response-ms", type=int, default=2000, help="model audio per response (default 2000)")
    p.add_argument("--speed", type=float, default=1.0, help="engine sends each response this much faster than real time, then pauses (default 1: paced)")
    p.add_argument("--echo-marks", choices=("playout", "immediate", "none"), default="playout")
    p.add_argument("--late-ms", type=float, default=20.0, help="a frame later than this counts as late (default 20)")
    p.add_argument("--hangup-grace", type=float, default=1.0, help="model deltas sent this close to hang-up may be lost legitimately")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of one warm-up call before measuring (0: none)")
    p.add_argument("--rest", type=float, default=1.0, help="seconds at rest measured before the calls")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after the calls before 'RSS after'")
    p.add_argument("--probe-interval", type=float, default=0.1, help="GET /healthz every this many seconds")
    p.add_argument("--pin", choices=("auto", "off"), default="auto", help="auto: target on the last CPU, the rest elsewhere")
    p.add_argument("--verdict-at", type=int, default=100, help="judge the targets at this many calls if swept (default 100)")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each measurement wait up to this many seconds for other processes to go quiet (shared machines)")
    p.add_argument("--nice", type=int, default=None,
                   help="scheduling priority of every benchmark process (default -10 as root, so other work on a shared "
                        "machine disturbs the run less; 0 to leave it)")
    p.add_argument("--bridge-cmd", help="command that runs the bridge CLI (default: .venv's telephony-bridge)")
    p.add_argument("--bridge-workers", type=int, default=1,
                   help="serve the bridge with --workers N (CPU is summed over its worker processes; give it N "
                        "CPUs: --pin auto pins the target to the last N CPUs and the harness to the rest)")
    p.add_argument("--ceiling", action="store_true",
                   help="find the largest N (the bridge, or the relay with --targets relay) with p99 <= --ceiling-p99-ms both ways and no loss: "
                        "short runs (--duration) growing N from --ceiling-start, then bisecting")
    p.add_argument("--ceiling-p99-ms", type=float, default=20.0, help="--ceiling's latency target (default 20 ms)")
    p.add_argument("--ceiling-start", type=int, default=50, help="--ceiling's first N (default 50)")
    p.add_argument("--ceiling-top", type=int, default=400, help="--ceiling's largest N (default 400)")
    p.add_argument("--ceiling-resolution", type=int, default=10, help="--ceiling stops within this many calls (default 10)")
    p.add_argument("--soak", action="store_true", help="soak mode: calls hang up and redial for --minutes")
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--soak-calls", type=int, default=50, help="concurrent calls in the soak (default 50)")
    p.add_argument("--call-seconds", default="10:30", help="soak: each call lasts uniform(A, B) seconds (default 10:30)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.add_argument("--keep", help="keep logs and raw per-process results in this directory")
    return p


def _pinning(mode: str, target_cpus: int = 1) -> tuple[set[int] | None, set[int] | None]:
    """The target on the last `target_cpus` CPUs (one per bridge worker), the harness on the rest."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "off" or len(cpus) <= target_cpus:
        return None, None
    return set(cpus[-target_cpus:]), set(cpus[:-target_cpus])


async def run(cfg: argparse.Namespace) -> dict[str, Any]:
    targets = [t.strip() for t in cfg.targets.split(",") if t.strip()]
    if not targets or any(t not in ("relay", "bridge", "sip") for t in targets):
        raise BenchError(f"--targets takes relay, bridge and/or sip, not {cfg.targets!r}")
    sweep = [int(x) for x in str(cfg.calls).split(",") if x.strip()]
    cpus_target, cpus_harness = _pinning(cfg.pin, max(1, cfg.bridge_workers) if "bridge" in targets else 1)
    if cfg.bridge_workers > 1 and cpus_target is None:
        progress(f"{cfg.bridge_workers} bridge workers and the harness share every CPU here (no pinning): "
                 "the harness's own CPU limits what this run can show")
    own_cpus = os.sched_getaffinity(0)
    if cpus_harness:
        os.sched_setaffinity(0, cpus_harness)
    run_dir = Path(cfg.keep) if cfg.keep else Path(tempfile.mkdtemp(prefix="bench-load-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    nice = cfg.nice if cfg.nice is not None else (-10 if os.geteuid() == 0 else 0)
    h = Harness(run_dir, cpus_target, cpus_harness, nice)
    own_nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    report: dict[str, Any] = {
        "machine": {**machine_info(cpus_target, cpus_harness), "nice": nice},
        "config": {k: v for k, v in vars(cfg).items() if k not in ("json", "out", "keep")},
        "sweep": [],
    }
    try:
        if cfg.ceiling:
            target = "bridge" if "bridge" in targets else targets[0]
            ceiling = await find_ceiling(
                lambda n: measure(h, cfg, target, n),
                start=cfg.ceiling_start, top=cfg.ceiling_top, resolution=cfg.ceiling_resolution,
                p99_ms=cfg.ceiling_p99_ms, progress=progress,
            )
            report["ceiling"] = {"target": target, **ceiling.to_json()}
            report["ceiling_text"] = format_ceiling(ceiling, target)
        elif cfg.soak:
            soak_s = cfg.minutes * 60
            target = "bridge" if "bridge" in targets else targets[0]
            r = await measure(h, cfg, target, cfg.soak_calls, soak_s=soak_s)
            r.update({"minutes": cfg.minutes, "call_seconds": cfg.call_seconds})
            r["rss_slope_mb_per_min"] = _second_half_slope(r.get("rss_timeline") or [])
            report["soak"] = r
            report["verdicts"] = [v for v in verdicts(r, None, r) if "soak" in v[0] or "lost" in v[0]]
            report["verdicts_at"] = cfg.soak_calls
        else:
            for n in sweep:
                point: dict[str, Any] = {"calls": n}
                runs: dict[str, list[dict]] = {t: [] for t in targets}
                for rep in range(cfg.repeat):
                    # Alternate the order so a change in background load does not favour one side.
                    for target in (("relay", "bridge", "sip") if rep % 2 == 0 else ("sip", "bridge", "relay")):
                        if target in targets:
                            runs[target].append(await measure(h, cfg, target, n))
                for target, results in runs.items():
                    point[target] = merge_repeats(results)
                if "relay" in point and "bridge" in point:
                    point["ratios"] = add_ratios(point["bridge"], point["relay"])
                report["sweep"].append(point)
            # Judge at --verdict-at calls (the targets are stated for 100), else at the largest sweep point.
            with_bridge = [p for p in report["sweep"] if "bridge" in p]
            last = next((p for p in with_bridge if p["calls"] == cfg.verdict_at), with_bridge[-1] if with_bridge else None)
            if last is not None:
                report["verdicts"] = verdicts(last["bridge"], last.get("relay"))
                report["verdicts_at"] = last["calls"]
    finally:
        await h.close()
        os.sched_setaffinity(0, own_cpus)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, own_nice)
        if not cfg.keep:
            for path in run_dir.iterdir():
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                run_dir.rmdir()
    report["pids"] = h.pids
    return report


def _second_half_slope(timeline: list[list[float]]) -> float | None:
    if len(timeline) < 8:
        return None
    half = timeline[len(timeline) // 2 :]
    t = np.array([p[0] for p in half])
    mb = np.array([p[1] for p in half])
    if t[-1] - t[0] < 10:
        return None
    return round(float(np.polyfit(t, mb, 1)[0] * 60), 4)


async def _run_until_signalled(cfg: argparse.Namespace) -> dict[str, Any]:
    """SIGTERM/SIGINT cancel the run, so its `finally` still ends every process it started."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)
            installed.append(sig)
    try:
        return await run(cfg)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    cfg = build_parser().parse_args(argv)
    try:
        report = asyncio.run(_run_until_signalled(cfg))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    if cfg.out:
        Path(cfg.out).write_text(text)
    if cfg.json:
        print(text)
    else:
        print(report["ceiling_text"] if cfg.ceiling else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
