"""What the two load generators' phones share (bench/loadgen.py: Twilio; bench/sip_loadgen.py: SIP):
the caller's audio, the pacing of every call's 20 ms frames, and the process's entry point.

Pacing: 20 phase buckets 1 ms apart, each one task on an absolute 20 ms schedule (never "last +
20 ms", which drifts by the loop's lag every frame). A call joins the bucket its index puts it in,
so the calls' frames leave spread over the period, never all at once, and no call has a timer of
its own. The time each frame was due is kept beside the time it left (the pacing slip).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import orjson

from bench.common import FRAME_S, ULAW_FRAME_BYTES, install_fast_loop
from telephony_bridge.audio.g711 import ulaw_encode

BUCKETS = 20  # 1 ms apart within the 20 ms frame period


def bucket_of(index: int) -> int:
    """The phase bucket of the index-th call: consecutive calls land 7 ms apart."""
    return (index * 7) % BUCKETS


def caller_ulaw(count: int = 50) -> list[bytes]:
    """One second of caller audio as 20 ms μ-law frames (a voiced tone with some noise), looped."""
    rate, n = 8000, count * ULAW_FRAME_BYTES
    t = np.arange(n) / rate
    rng = np.random.default_rng(7)
    signal = 4000 * np.sin(2 * np.pi * 140 * t) + 1500 * np.sin(2 * np.pi * 1100 * t) + rng.normal(0, 300, n)
    ulaw = ulaw_encode(np.clip(np.round(signal), -32768, 32767).astype("<i2").tobytes())
    return [ulaw[i : i + ULAW_FRAME_BYTES] for i in range(0, n, ULAW_FRAME_BYTES)]


class PacedCall(Protocol):
    bucket: int


C = TypeVar("C", bound=PacedCall)


class PhasePacer(Generic[C]):
    """Calls' frames on the phase buckets' schedule; a subclass's `send(call, due)` sends one
    call's next frame (and takes the call out with `remove` after its last)."""

    def __init__(self) -> None:
        self.buckets: list[list[C]] = [[] for _ in range(BUCKETS)]
        self.tasks: list[asyncio.Task[None]] = []
        self.base = time.monotonic()

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._run(b)) for b in range(BUCKETS)]

    def add(self, call: C) -> None:
        self.buckets[call.bucket].append(call)

    def remove(self, call: C) -> None:
        bucket = self.buckets[call.bucket]
        if call in bucket:  # not added yet, or done already
            bucket.remove(call)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _run(self, b: int) -> None:
        bucket, send = self.buckets[b], self.send
        due = self.base + b * FRAME_S / BUCKETS
        now, sleep = time.monotonic, asyncio.sleep
        while True:
            wait = due - now()
            if wait > 0:
                await sleep(wait)
            for call in tuple(bucket):
                await send(call, due)
            due += FRAME_S

    async def send(self, call: C, due: float) -> None:
        raise NotImplementedError


def main(build_parser: Callable[[], argparse.ArgumentParser],
         run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict]], argv: list[str] | None = None) -> int:
    """A load generator's process: run it on the fast loop, write its JSON results to --out, and say
    DONE with the count of failed calls on stdout (bench/load.py waits for that line)."""
    args = build_parser().parse_args(argv)
    loop = install_fast_loop()
    result = asyncio.run(run(args))
    result["loop"] = loop
    Path(args.out).write_bytes(orjson.dumps(result))
    failed = sum(1 for c in result["calls"] if c["error"])
    sys.stdout.write(f"DONE calls={len(result['calls'])} failed={failed}\n")
    sys.stdout.flush()
    return 0
