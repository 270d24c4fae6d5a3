"""Running SIPp (Debian's sip-tester) against the bridge from a test."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")
needs_sipp = pytest.mark.skipif(
    SIPP is None, reason="SIPp is not installed: apt-get install -y sip-tester (.ci/run does it)"
)


@dataclass
class SippRun:
    returncode: int
    output: str

    def explain(self) -> str:
        return f"sipp exited {self.returncode}:\n{self.output[-3000:]}"


async def run_sipp(
    scenario: Path | str,
    port: int,
    service: str,
    workdir: Path,
    *,
    transport: str = "u1",
    calls: int = 1,
    rate: float | None = None,
    extra: tuple[str, ...] = (),
    timeout_s: float = 15.0,
) -> SippRun:
    """One SIPp UAC run (its own random local port), until `calls` calls are done or it times out."""
    assert SIPP is not None
    path = scenario if isinstance(scenario, Path) else SCENARIOS / f"{scenario}.xml"
    args = [
        SIPP,
        f"127.0.0.1:{port}",
        "-sf",
        str(path),
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-t",
        transport,
        "-m",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{int(timeout_s)}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(workdir / "sipp_errors.log"),
        *(("-r", str(rate)) if rate else ()),
        *extra,
    ]
    process = await asyncio.create_subprocess_exec(
        *args, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout_s + 10):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    errors = workdir / "sipp_errors.log"
    text = output.decode("utf-8", "replace")
    if errors.exists():
        text += "\n--- errors ---\n" + errors.read_text("utf-8", "replace")
    return SippRun(process.returncode if process.returncode is not None else -1, text)
