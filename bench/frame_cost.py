"""Instructions per frame: the bridge's per-call hot path against the relay floor's, in one process.

    python -m bench.frame_cost                        # both targets, both ways: wall µs per frame (noisy)
    python -m bench.frame_cost --callgrind            # the same under valgrind: Ir per frame (deterministic)
    python -m bench.frame_cost --callgrind --top 25   # ... and where the bridge's excess over the relay goes
    python -m bench.frame_cost --alloc                # GC collections and net allocations per frame

Wall-clock figures on a shared machine say little; instruction counts (callgrind's Ir) are the same
for the same code and inputs whatever else runs. So this drives a fixed workload through the real
per-call objects with both sockets replaced by in-memory ones, and `--callgrind` runs it under
`valgrind --tool=callgrind --dump-before=getppid`: the harness calls `os.getppid()` (nothing else
in the process does) at each phase boundary, so callgrind writes one dump per phase and start-up,
imports and warm-up fall outside the measured phases.

What runs, per target (bench/frame_cost_targets.py; the dumps are read by bench/callgrind_report.py):

* **bridge**: a `CallSession`'s real carrier reader (`_read_carrier`: Twilio codec parse, gap
  filler, `Call.caller_audio`) → the `RealtimeAPIClient`'s `Uplink` (μ-law 8k → PCM16 24k,
  base64, the append frame, websockets' framing and masking) → an in-memory TCP transport; and
  back: the model connection's real reader (websockets' frame parsing, `orjson.loads`,
  `dispatch`) → `PlayoutChannel` → `Playout` (ledger, PCM16 24k → μ-law 8k) → `MediaLink` → the
  Twilio codec's `media` + `mark` → the in-memory carrier socket; each mark is echoed straight back
  through the carrier reader (the ledger's confirmation). The call journal listens as in `serve`.
* **relay**: `bench/relay.py`'s `relay_call` and its pump, on the same two in-memory sockets.

Not included, on either side: the carrier WebSocket's own plumbing (uvicorn's frame parsing and
Starlette's `receive`/`send_text`: the same code for both, but the bridge's model leg is 6× bigger
on the wire — see bench/README.md) and the kernel. Included on both: websockets' client framing
(the model leg), the event loop's task wake-ups, and this harness's two fakes (a deque pop per
message in, a counter per message out).

The workload: caller frames are Twilio `media` messages of 160 bytes of μ-law; the model streams
answers of 20 deltas of 100 ms each (`response.created`, `output_item.added`, deltas,
`output_audio.done`, `response.done`), as bench/engine.py does: PCM16 24 kHz to the bridge, μ-law
to the relay (which tells the engine `codec=g711_ulaw`). "Per delta" below counts the answer's
other events and the mark echo in; one delta is 5 caller frames' worth of audio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/frame_cost.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.callgrind_report import dump_totals, report
from bench.common import install_fast_loop
from bench.frame_cost_targets import (
    DELTAS_PER_RESPONSE,
    WARMUP_DELTAS,
    WARMUP_FRAMES,
    Bridge,
    Relay,
    RelayOrjson,
    Target,
    caller_messages,
    model_frames,
)


# --- phases and how they are counted -------------------------------------------------------------
class Meter:
    """Phase boundaries: `os.getppid()` is callgrind's cue to dump (--dump-before=getppid); outside
    valgrind it costs a syscall. Also wall time, GC collections and (with --alloc) net allocations."""

    def __init__(self, alloc: bool) -> None:
        self.alloc = alloc
        self.segments: list[str | None] = []  # the label of the segment each dump closes (None: not measured)
        self.results: list[dict[str, Any]] = []

    def boundary(self, label: str | None) -> None:
        os.getppid()
        self.segments.append(label)

    async def measure(self, label: str, units: int, body: Callable[[], Any]) -> None:
        self.boundary(None)  # what ran since the last phase (set-up, warm-up) is not measured
        gc_before = [s["collections"] for s in gc.get_stats()]
        if self.alloc:
            tracemalloc.start()
            snapshot = tracemalloc.take_snapshot()
        started = time.perf_counter()
        await body()
        elapsed = time.perf_counter() - started
        self.boundary(label)
        result: dict[str, Any] = {
            "phase": label,
            "units": units,
            "wall_us": elapsed * 1e6 / units,
            "gc_per_1000": [
                1000 * (s["collections"] - b) / units for s, b in zip(gc.get_stats(), gc_before, strict=True)
            ],
        }
        if self.alloc:
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            stats = after.compare_to(snapshot, "lineno")
            result["net_blocks_per_unit"] = sum(s.count_diff for s in stats) / units
            result["top_net"] = [str(s) for s in stats[:5]]
        self.results.append(result)


async def run_target(target: Target, frames: int, responses: int, meter: Meter) -> None:
    await target.start()
    gc.collect()
    gc.freeze()  # as `serve` does at the end of start-up (GC_FREEZE)
    await target.up(caller_messages(WARMUP_FRAMES))
    for answer in model_frames(target.model_codec, WARMUP_DELTAS // DELTAS_PER_RESPONSE):
        await target.down(answer)
    up = caller_messages(frames, first=WARMUP_FRAMES)
    down = [f for answer in model_frames(target.model_codec, responses, first=100) for f in answer]
    await meter.measure(f"{target.name} up", frames, lambda: target.up(up))
    await meter.measure(f"{target.name} down", responses * DELTAS_PER_RESPONSE, lambda: target.down(down))
    meter.boundary(None)
    await target.stop()
    gc.unfreeze()


async def run(args: argparse.Namespace) -> Meter:
    meter = Meter(args.alloc)
    for name in args.targets:
        target: Target = (
            Bridge(args.bridge_codec) if name == "bridge" else RelayOrjson() if name == "relay-orjson" else Relay()
        )
        await run_target(target, args.frames, args.deltas // DELTAS_PER_RESPONSE, meter)
    return meter


# --- callgrind -----------------------------------------------------------------------------------
def run_callgrind(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="frame-cost-cg-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    child = [
        "--frames",
        str(args.frames),
        "--deltas",
        str(args.deltas),
        "--targets",
        ",".join(args.targets),
        "--bridge-codec",
        args.bridge_codec,
    ]
    labels = out_dir / "labels.json"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--dump-before=getppid",
        "--dump-instr=no",
        f"--callgrind-out-file={out_dir}/cg.out",
        sys.executable,
        "-m",
        "bench.frame_cost",
        *child,
        "--labels",
        str(labels),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts run to run
    print("$ " + " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, env=env, cwd=Path(__file__).resolve().parents[1], stderr=subprocess.DEVNULL)
    meta = json.loads(labels.read_text())
    rows: dict[str, dict[str, Any]] = {}
    for index, label in enumerate(meta["segments"], start=1):
        if label is None:
            continue
        dump = out_dir / f"cg.out.{index}"
        units = next(r["units"] for r in meta["results"] if r["phase"] == label)
        rows[label] = {"ir": dump_totals(dump), "units": units, "dump": dump}
    report(rows, meta, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="bench.frame_cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=300, help="caller frames measured (default 300)")
    parser.add_argument("--deltas", type=int, default=60, help="model deltas measured, a multiple of 20 (default 60)")
    parser.add_argument("--targets", type=lambda s: s.split(","), default=["bridge", "relay"])
    parser.add_argument("--bridge-codec", choices=("pcm16", "g711_ulaw"), default="pcm16")
    parser.add_argument("--callgrind", action="store_true", help="run under valgrind and report Ir per frame")
    parser.add_argument("--top", type=int, default=0, help="with --callgrind: the N C functions with the most excess")
    parser.add_argument("--out", help="with --callgrind: keep the dumps here (default: a temporary directory)")
    parser.add_argument("--alloc", action="store_true", help="tracemalloc: net allocations per unit")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--labels", help=argparse.SUPPRESS)  # set by --callgrind for its child
    args = parser.parse_args(argv)
    if args.deltas % DELTAS_PER_RESPONSE or args.deltas <= 0 or args.frames <= 0:
        parser.error(f"--deltas must be a positive multiple of {DELTAS_PER_RESPONSE}, --frames positive")
    if args.callgrind:
        return run_callgrind(args)
    install_fast_loop()
    meter = asyncio.run(run(args))
    if args.labels:
        Path(args.labels).write_text(json.dumps({"segments": meter.segments, "results": meter.results}))
        return 0
    for r in meter.results:
        extra = f"  net blocks/unit {r['net_blocks_per_unit']:+.2f}" if "net_blocks_per_unit" in r else ""
        gcs = " ".join(f"{x:.1f}" for x in r["gc_per_1000"])
        print(
            f"{r['phase']:<14} {r['units']:>6}  wall {r['wall_us']:8.1f} µs/unit  gc per 1000 units (gen0 1 2): {gcs}{extra}"
        )
        for line in r.get("top_net", []):
            print(f"      {line}")
    if args.json:
        print(json.dumps(meter.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
