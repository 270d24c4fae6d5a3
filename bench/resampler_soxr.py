"""Our polyphase FIR (audio/resample.py) against python-soxr's ResampleStream, per 20 ms frame.

    python -m bench.resampler_soxr               # latency, chunking and quality (fast, no valgrind)
    python -m bench.resampler_soxr --callgrind   # ... and instructions per frame under callgrind (~1 min)

Needs `pip install soxr` (not a dependency of the bridge: see bench/README.md, "A C streaming
resampler (python-soxr)", for why). Three things are measured per candidate and direction:

* **Ir per frame**: 500 consecutive 20 ms frames, bytes in and bytes out as the Converter does
  (our `Resampler.process`; for soxr `np.frombuffer` → `resample_chunk` → `tobytes`), state carried,
  after 100 frames of warm-up; `os.getppid()` marks the phase boundaries for
  `valgrind --dump-before=getppid`, as bench/frame_cost.py does.
* **Latency as paced**: 2 s of noise fed 20 ms at a time; after each frame, how much of the audio
  already fed has not come out yet (input time fed − output time emitted, in ms), min / max over the
  steady state (frames 10..). Ours holds back its group delay and no more; a block-based resampler
  holds back a block and releases it in bursts.
* **Chunking**: the same 2 s whole against 20 ms frames: bit-identical, or the largest difference.
* **Quality** on tests/unit/test_resample.py's own tones (whole stream, flushed): passband at 3400
  Hz, the worst image (up) or alias (down) of the test's probes, and the 1 kHz 8k→24k→8k SNR.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony_bridge.audio.resample import Resampler

try:
    import soxr
except ImportError:  # the report says so; ours is still measured
    soxr = None

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
DIRECTIONS = ((8000, 24000), (24000, 8000), (16000, 24000), (24000, 16000))
WARMUP_FRAMES, MEASURED_FRAMES = 100, 500

Stream = Callable[[bytes], bytes]


class _Ours:
    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._resampler = Resampler(from_rate, to_rate)
        self.process: Stream = self._resampler.process

    def finish(self) -> bytes:
        return self._resampler.flush()


class _Soxr:
    def __init__(self, from_rate: int, to_rate: int, quality: str, dtype: str = "int16") -> None:
        assert soxr is not None
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype=dtype, quality=quality)
        self._dtype = np.dtype(dtype)
        chunk = self._stream.resample_chunk
        if dtype == "int16":

            def process(data: bytes) -> bytes:
                return chunk(np.frombuffer(data, dtype=np.int16)).tobytes()
        else:  # float in, rounded to int16 out: what a float-domain integration would cost

            def process(data: bytes) -> bytes:
                out = chunk(np.frombuffer(data, dtype=np.int16).astype(self._dtype))
                return np.clip(np.rint(out), -32768, 32767).astype(np.int16).tobytes()

        self.process = process

    def finish(self) -> bytes:
        return self.process_last()

    def process_last(self) -> bytes:
        out = self._stream.resample_chunk(np.zeros(0, dtype=self._dtype), last=True)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16).tobytes()


def candidates() -> dict[str, Callable[[int, int], _Ours | _Soxr]]:
    out: dict[str, Callable[[int, int], _Ours | _Soxr]] = {"ours": _Ours}
    if soxr is not None:
        for quality in QUALITIES:
            out[f"soxr {quality}"] = lambda f, t, q=quality: _Soxr(f, t, q)
        out["soxr HQ float32"] = lambda f, t: _Soxr(f, t, "HQ", "float32")
    return out


def noise(rate: int, seconds: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, 9000, int(rate * seconds)), -32768, 32767).astype("<i2").tobytes()


def tone(freq: float, rate: int, amplitude: float = 16000.0) -> bytes:
    t = np.arange(rate) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def whole(make: Callable[[int, int], _Ours | _Soxr], f: int, t: int, data: bytes) -> np.ndarray:
    stream = make(f, t)
    return np.frombuffer(stream.process(data) + stream.finish(), dtype="<i2").astype(float)


def level(signal: np.ndarray, freq: float, rate: int) -> float:
    window = signal[rate // 10 : rate // 10 + rate // 2]
    phase = 2 * np.pi * freq * np.arange(window.size) / rate
    return float(abs(2 / window.size * np.sum(window * np.exp(-1j * phase))))


def db(ratio: float) -> float:
    return 20 * math.log10(max(ratio, 1e-12))


def paced(make: Callable[[int, int], _Ours | _Soxr], f: int, t: int) -> dict[str, object]:
    data, frame = noise(f, 2.0), 2 * f // 50
    stream, parts, held = make(f, t), [], []
    out_samples = 0
    for index, start in enumerate(range(0, len(data), frame)):
        part = stream.process(data[start : start + frame])
        parts.append(part)
        out_samples += len(part) // 2
        fed_ms = (start + frame) / 2 * 1000 / f
        if index >= 10:
            held.append(fed_ms - out_samples * 1000 / t)
    chunked = b"".join(parts) + stream.finish()
    reference = whole(make, f, t, data)
    got = np.frombuffer(chunked, dtype="<i2").astype(float)
    same = got.size == reference.size and bool(np.array_equal(got, reference))
    diff = float(np.abs(got - reference).max()) if got.size == reference.size else float("nan")
    return {
        "held_min_ms": min(held),
        "held_mean_ms": sum(held) / len(held),
        "held_max_ms": max(held),
        "chunking_identical": same,
        "chunking_max_diff": diff,
    }


def quality(make: Callable[[int, int], _Ours | _Soxr], f: int, t: int) -> dict[str, float]:
    low, high = min(f, t), max(f, t)
    out: dict[str, float] = {}
    edge = 3400 if low == 8000 else 7000
    out["passband_edge_db"] = db(level(whole(make, f, t, tone(edge, f)), edge, t) / 16000)
    worst = -math.inf
    if f < t:  # images of passband tones
        for freq in [300, 1000, 3000, edge]:
            got = whole(make, f, t, tone(freq, f, 30000))
            wanted = level(got, freq, t)
            for image in [low - freq, low + freq, 2 * low - freq, 2 * low + freq]:
                if 0 < image < high / 2:
                    worst = max(worst, db(level(got, image, t) / wanted))
    else:  # aliases folding into the passband
        probes = [4600, 5000, 6000, 7500, 9000, 10000, 11000] if low == 8000 else [9000, 9500, 10000, 11000, 11900]
        for freq in probes:
            alias = abs(freq - low * round(freq / low))
            got = whole(make, f, t, tone(freq, f, 30000))
            worst = max(worst, db(level(got, alias, t) / 30000))
    out["worst_image_or_alias_db"] = worst
    if (f, t) == (8000, 24000):
        signal = tone(1000, 8000, 10000)
        there = whole(make, 8000, 24000, signal).astype("<i2").tobytes()
        back = whole(make, 24000, 8000, there)
        reference = np.frombuffer(signal, dtype="<i2").astype(float)
        core = slice(400, -400)
        error = back[core] - reference[core]
        # A lossless round trip (every sample back exactly) reads as +inf.
        noise_power = float(np.mean(error**2))
        signal_power = float(np.mean(reference[core] ** 2))
        out["round_trip_snr_db"] = math.inf if noise_power == 0 else 10 * math.log10(signal_power / noise_power)
    return out


# --- instructions per frame ---------------------------------------------------------------------


def _phase(make: Callable[[int, int], _Ours | _Soxr], f: int, t: int, frames_per_call: int) -> None:
    calls = MEASURED_FRAMES // frames_per_call
    chunk_bytes = 2 * f // 50 * frames_per_call
    data = noise(f, (WARMUP_FRAMES + MEASURED_FRAMES) / 50)
    chunks = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
    process = make(f, t).process
    for chunk in chunks[:-calls]:
        process(chunk)
    os.getppid()
    for chunk in chunks[-calls:]:
        process(chunk)
    os.getppid()


def run_frames(labels_path: Path) -> None:
    """The callgrind child: one phase per candidate and direction, bounded by os.getppid(). Also the
    downlink as the bridge calls it: one 100 ms model delta (2400 samples) per call, still counted
    per 20 ms of audio so the rows compare."""
    segments: list[str | None] = [None]
    for name, make in candidates().items():
        for f, t in DIRECTIONS[:2] if "float" in name else DIRECTIONS:
            _phase(make, f, t, 1)
            segments += [f"{name} {f}->{t}", None]
        _phase(make, 24000, 8000, 5)
        segments += [f"{name} 24000->8000 by 100 ms", None]
    labels_path.write_text(json.dumps(segments))


_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)


def callgrind() -> dict[str, float]:
    out_dir = Path(tempfile.mkdtemp(prefix="resampler-soxr-cg-"))
    labels = out_dir / "labels.json"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--dump-before=getppid",
        "--dump-instr=no",
        f"--callgrind-out-file={out_dir}/cg.out",
        sys.executable,
        "-m",
        "bench.resampler_soxr",
        "--frames-child",
        str(labels),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(command, check=True, env=env, cwd=Path(__file__).resolve().parents[1], stderr=subprocess.DEVNULL)
    result: dict[str, float] = {}
    for index, label in enumerate(json.loads(labels.read_text()), start=1):
        if label is not None:
            match = _TOTALS.search((out_dir / f"cg.out.{index}").read_bytes())
            result[label] = int(match.group(1)) / MEASURED_FRAMES if match else float("nan")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per frame")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--frames-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames_child:
        run_frames(args.frames_child)
        return 0
    if soxr is None:
        print("soxr is not installed (pip install soxr): measuring ours only", file=sys.stderr)
    report: dict[str, object] = {
        "soxr": None if soxr is None else f"{soxr.__version__} (libsoxr {soxr.__libsoxr_version__})"
    }
    rows = []
    for name, make in candidates().items():
        for f, t in DIRECTIONS:
            rows.append({"candidate": name, "direction": f"{f}->{t}", **paced(make, f, t), **quality(make, f, t)})
    report["rows"] = rows
    if args.callgrind:
        if shutil.which("valgrind") is None:
            print("valgrind is not installed", file=sys.stderr)
            return 2
        report["ir_per_frame"] = callgrind()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"soxr: {report['soxr']}")
    header = "candidate         direction      held ms (min/mean/max)  chunking        edge dB  image/alias dB  SNR dB"
    print(header)
    for row in rows:
        chunking = "identical" if row["chunking_identical"] else f"±{row['chunking_max_diff']:.0f} LSB"
        snr = row.get("round_trip_snr_db")
        print(
            f"{row['candidate']:<17} {row['direction']:<14} "
            f"{row['held_min_ms']:5.1f} /{row['held_mean_ms']:5.1f} /{row['held_max_ms']:6.1f}   "
            f"{chunking:<15} {row['passband_edge_db']:7.2f}  {row['worst_image_or_alias_db']:14.1f}  "
            f"{'' if snr is None else f'{snr:6.1f}'}"
        )
    if args.callgrind:
        print("\nIr per 20 ms of audio (bytes in, bytes out, state carried):")
        for label, ir in report["ir_per_frame"].items():  # type: ignore[attr-defined]
            print(f"  {label:<32} {ir:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
