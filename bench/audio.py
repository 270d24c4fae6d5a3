"""Per-frame cost of the audio core on the hot path, next to audioop measured in the same run.

    python bench/audio.py            # table
    python bench/audio.py --json     # machine-readable

A frame is 20 ms: 160 μ-law bytes at 8 kHz, 640 or 960 bytes of PCM16 at 16 or 24 kHz. Each figure is the
median over repeats of the mean µs per frame across one run of consecutive frames, with state
carried across frames exactly as a call would carry it. audioop's ``ratecv`` is cheaper but is no
real alternative (no anti-alias/anti-image filter, see shared/reference/audio.md): it is here as
the floor of what resampling can cost.

A second table prices ``audio/convert.py``: each ``Converter`` path against the same steps called
directly (what the plan adds per frame: the median of paired differences over alternating short
runs), and the pass-through plan on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony_bridge.audio.convert import converter
from telephony_bridge.audio.formats import L16_16K, L16_24K, ULAW_8K, AudioFormat
from telephony_bridge.audio.g711 import ulaw_decode, ulaw_encode
from telephony_bridge.audio.resample import Resampler

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
except ImportError:  # Python >= 3.13 without audioop-lts
    audioop = None

FRAME_MS = 20


def speech_like(rate: int, seconds: float, seed: int = 1) -> np.ndarray:
    """A few tones plus noise at conversational level; the cost does not depend on content, but a
    realistic signal keeps anyone from wondering about zero-skipping shortcuts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    partials = ((4000, 220), (2500, 1100), (1200, 2700))
    signal = sum(a * np.sin(2 * np.pi * f * t) for a, f in partials)
    signal = signal + rng.normal(0, 600, t.size)
    return np.clip(np.round(signal), -32768, 32767).astype("<i2")


def split_frames(data: bytes, frame_bytes: int) -> list[bytes]:
    return [data[i : i + frame_bytes] for i in range(0, len(data), frame_bytes)]


def time_per_frame(
    make_step: Callable[[], Callable[[bytes], bytes]], frames: Sequence[bytes], repeats: int
) -> float:
    """Median over `repeats` of the mean µs per frame; a fresh pipeline state for each repeat."""
    results = []
    for _ in range(repeats):
        step = make_step()
        start = time.perf_counter_ns()
        for frame in frames:
            step(frame)
        results.append((time.perf_counter_ns() - start) / len(frames) / 1000)
    return statistics.median(results)


def ours_up() -> Callable[[bytes], bytes]:
    resampler = Resampler(8000, 24000)
    return lambda frame: resampler.process(ulaw_decode(frame))


def ours_down() -> Callable[[bytes], bytes]:
    resampler = Resampler(24000, 8000)
    return lambda frame: ulaw_encode(resampler.process(frame))


def ours_resample(from_rate: int, to_rate: int) -> Callable[[], Callable[[bytes], bytes]]:
    def make() -> Callable[[bytes], bytes]:
        return Resampler(from_rate, to_rate).process

    return make


def audioop_resample(from_rate: int, to_rate: int) -> Callable[[], Callable[[bytes], bytes]]:
    def make() -> Callable[[bytes], bytes]:
        state = None

        def step(frame: bytes) -> bytes:
            nonlocal state
            out, state = audioop.ratecv(frame, 2, 1, from_rate, to_rate, state)
            return out

        return step

    return make


def via_converter(src: AudioFormat, dst: AudioFormat) -> Callable[[], Callable[[bytes], bytes]]:
    return lambda: converter(src, dst).process


def audioop_up() -> Callable[[bytes], bytes]:
    state = None

    def step(frame: bytes) -> bytes:
        nonlocal state
        out, state = audioop.ratecv(audioop.ulaw2lin(frame, 2), 2, 1, 8000, 24000, state)
        return out

    return step


def audioop_down() -> Callable[[bytes], bytes]:
    state = None

    def step(frame: bytes) -> bytes:
        nonlocal state
        out, state = audioop.ratecv(frame, 2, 1, 24000, 8000, state)
        return audioop.lin2ulaw(out, 2)

    return step


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc,
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def run(frames: int, repeats: int) -> dict[str, object]:
    seconds = frames * FRAME_MS / 1000
    ulaw_frames = split_frames(ulaw_encode(speech_like(8000, seconds).tobytes()), 160)
    pcm16k_frames = split_frames(speech_like(16000, seconds, seed=3).tobytes(), 640)
    pcm24_frames = split_frames(speech_like(24000, seconds, seed=2).tobytes(), 960)
    rows = []
    for name, ours, ref, frames_in in (
        ("decode+upsample (ulaw 160 B -> PCM16 24k 960 B)", ours_up, audioop_up, ulaw_frames),
        ("downsample+encode (PCM16 24k 960 B -> ulaw 160 B)", ours_down, audioop_down,
         pcm24_frames),
        ("resample 16k -> 24k (PCM16 640 B -> 960 B)", ours_resample(16000, 24000),
         audioop_resample(16000, 24000), pcm16k_frames),
        ("resample 24k -> 16k (PCM16 960 B -> 640 B)", ours_resample(24000, 16000),
         audioop_resample(24000, 16000), pcm24_frames),
    ):
        ours_us = time_per_frame(ours, frames_in, repeats)
        ref_us = time_per_frame(ref, frames_in, repeats) if audioop is not None else None
        rows.append(
            {
                "path": name,
                "ours_us_per_frame": round(ours_us, 2),
                "audioop_us_per_frame": None if ref_us is None else round(ref_us, 2),
                "ratio_ours_to_audioop": None if ref_us is None else round(ours_us / ref_us, 2),
            }
        )
    converter_rows = []
    for src, dst, direct, frames_in in (
        (ULAW_8K, L16_24K, ours_up, ulaw_frames),
        (L16_24K, ULAW_8K, ours_down, pcm24_frames),
        (L16_16K, L16_24K, ours_resample(16000, 24000), pcm16k_frames),
        (L16_24K, L16_16K, ours_resample(24000, 16000), pcm24_frames),
        (ULAW_8K, ULAW_8K, lambda: lambda frame: frame, ulaw_frames),
    ):
        # The plan's own cost is well under a µs, far below the run-to-run noise of the DSP on a
        # shared box: so direct and converter are timed in alternation over short runs, and the
        # overhead is the median of the paired differences, which a neighbour's load cancels from.
        short = frames_in[: max(1, len(frames_in) // 5)]
        pairs = [
            (time_per_frame(direct, short, 1), time_per_frame(via_converter(src, dst), short, 1))
            for _ in range(5 * repeats)
        ]
        direct_us = statistics.median(pair[0] for pair in pairs)
        converter_us = statistics.median(pair[1] for pair in pairs)
        overhead_us = statistics.median(pair[1] - pair[0] for pair in pairs)
        converter_rows.append(
            {
                "path": f"{src} -> {dst}",
                "steps": list(converter(src, dst).steps),
                "direct_us_per_frame": round(direct_us, 2),
                "converter_us_per_frame": round(converter_us, 2),
                "overhead_us_per_frame": round(overhead_us, 2),
            }
        )
    return {
        "machine": machine(),
        "frames_per_repeat": frames,
        "repeats": repeats,
        "resampler_delay_ms": Resampler(8000, 24000).delay_ms,
        "resampler_delay_ms_16k_24k": Resampler(16000, 24000).delay_ms,
        "results": rows,
        "converter": converter_rows,
    }


def print_table(report: dict[str, object]) -> None:
    m = report["machine"]
    print(f"machine: nproc={m['nproc']}  cpu={m['cpu']}")
    print(f"python {m['python']}  numpy {m['numpy']}  ({m['platform']})")
    print(
        f"median of {report['repeats']} repeats x {report['frames_per_repeat']} frames of 20 ms; "
        f"resampler delay {report['resampler_delay_ms']} ms (8k<->24k), "
        f"{report['resampler_delay_ms_16k_24k']} ms (16k<->24k) each way\n"
    )
    header = f"{'path':<52} {'ours µs':>8} {'audioop µs':>11} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for row in report["results"]:
        ref = row["audioop_us_per_frame"]
        ratio = row["ratio_ours_to_audioop"]
        ref_text = "n/a" if ref is None else f"{ref:.2f}"
        ratio_text = "n/a" if ratio is None else f"{ratio:.2f}"
        print(f"{row['path']:<52} {row['ours_us_per_frame']:>8.2f} {ref_text:>11} {ratio_text:>6}")
    header = f"\n{'converter path':<24} {'steps':<28} {'direct µs':>10} {'conv µs':>8} {'+µs':>6}"
    print(header)
    print("-" * (len(header) - 1))
    for row in report["converter"]:
        steps = " + ".join(row["steps"]) or "pass-through"
        print(
            f"{row['path']:<24} {steps:<28} {row['direct_us_per_frame']:>10.2f} "
            f"{row['converter_us_per_frame']:>8.2f} {row['overhead_us_per_frame']:>6.2f}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--frames", type=int, default=2000, help="frames per repeat (default 2000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    args = parser.parse_args(argv)
    report = run(args.frames, args.repeats)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
