"""Fault injection between the bridge and the engine: the same call under each fault, measured.

Used by tests/integration/test_faults.py (a small run that asserts) and runnable on its own to
produce the figures table in docs/reliability.md:

    .venv/bin/python -m tests.integration.faults --calls 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from telephony_bridge.local_engine import LocalEngine, Script
from telephony_bridge.local_engine.tts import synthesize
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.fault_proxy import FaultProxy
from telephony_bridge.testing.servers import running_bridge
from telephony_bridge.testing.simulator import place_call

SCENARIOS = Path(__file__).parent / "fault_scenarios"
CALL_S = 9.5
FAULT_AT_S = 3.0
FAULTS = ("none", "delay 80±40 ms", "connection dropped", "half-open socket", "engine down 2 s")


@dataclass
class FaultRow:
    fault: str
    calls: int
    calls_kept: int
    answered_after_fault: int
    recovery_ms: list[float]
    caller_audio_lost_ms: list[float]
    silent_before_ms: list[float]

    def cells(self) -> list[str]:
        def med(values: list[float]) -> str:
            return f"{statistics.median(values):.0f}" if values else "–"

        def mx(values: list[float]) -> str:
            return f"{max(values):.0f}" if values else "–"

        return [self.fault, f"{self.calls_kept}/{self.calls}", f"{self.answered_after_fault}/{self.calls}",
                med(self.silent_before_ms), med(self.recovery_ms), mx(self.recovery_ms),
                med(self.caller_audio_lost_ms), mx(self.caller_audio_lost_ms)]


def caller_audio() -> bytes:
    """The caller speaks once before the fault and once after it."""
    audio = bytearray()
    for at_s, text in ((1.0, "Hello, are you there?"), (6.0, "Can you hear me now?")):
        audio += b"\x00" * (int(at_s * 8000) * 2 - len(audio))
        audio += synthesize(text, 8000, "en-us+f3")
    audio += b"\x00" * (int(CALL_S * 8000) * 2 - len(audio))
    return bytes(audio)


async def inject(fault: str, proxy: FaultProxy) -> None:
    await asyncio.sleep(FAULT_AT_S)  # the fault's place on the call's clock
    if fault == "connection dropped":
        proxy.drop_all()
    elif fault == "half-open socket":
        proxy.make_half_open()
    elif fault == "engine down 2 s":
        proxy.refusing = True
        proxy.drop_all()
        await asyncio.sleep(2.0)
        proxy.refusing = False


async def run_fault(fault: str, calls: int, work: Path) -> FaultRow:
    lines = ["Hi, this is Acme.", "Yes, I am here.", "Yes, loud and clear.", "Still here."]
    async with LocalEngine(script=Script.from_turns(lines)) as engine, FaultProxy(engine.port) as proxy:
        if fault.startswith("delay"):
            proxy.delay_ms, proxy.jitter_ms = 80, 40
        calls_dir = work / fault.replace(" ", "_")
        settings = Settings(scenarios_dir=SCENARIOS, realtime_url=proxy.url(), calls_dir=calls_dir)
        audio = await asyncio.to_thread(caller_audio)
        async with running_bridge(settings) as runtime:
            sids = [f"CA{index:032x}" for index in range(calls)]
            placing = [place_call(runtime.settings.base_url, caller_audio=audio, duration_s=CALL_S, call_sid=sid) for sid in sids]
            results = await asyncio.gather(*placing, inject(fault, proxy))
    journals = [orjson.loads((calls_dir / f"{sid}.json").read_bytes()) for sid in sids]
    row = FaultRow(fault, calls, 0, 0, [], [], [])
    for result, journal in zip(results, journals, strict=False):
        ended = journal[-1]
        row.calls_kept += ended["event"] == "call.ended" and ended["reason"] == "caller hung up" and result.error is None
        fault_t = next((e["t"] for e in journal if e["event"] == "call.started"), 0) + FAULT_AT_S
        row.answered_after_fault += any(e["event"] == "agent.audio_started" and e["t"] > fault_t + 0.5 for e in journal)
        for entry in journal:
            if entry["event"] == "model.reconnected":
                row.recovery_ms.append(entry["downtimeMs"])
                row.caller_audio_lost_ms.append(entry["callerAudioLostMs"])
                row.silent_before_ms.append(entry["modelSilentBeforeMs"])
    return row


async def run_all(calls: int, faults: tuple[str, ...] = FAULTS) -> list[FaultRow]:
    with tempfile.TemporaryDirectory() as work:
        return list(await asyncio.gather(*(run_fault(f, calls, Path(work)) for f in faults)))


HEADER = ["fault (at 3 s into a 9.5 s call)", "calls kept", "answered after", "model silent before detection p50 ms",
          "reconnect p50 ms", "reconnect max ms", "caller audio dropped p50 ms", "dropped max ms"]


def table(rows: list[FaultRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5, help="calls per fault (all faults run at once)")
    args = parser.parse_args(argv)
    print(table(asyncio.run(run_all(args.calls))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
