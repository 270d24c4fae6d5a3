"""`make demo`: one real simulated call through the real server and the embedded local engine.

Starts `telephony-bridge serve` as its own process (no API key: the embedded local engine answers),
places a call through the real HTTP webhook and media WebSocket with the phone simulator, and shows
the conversation live from the server's call journal: who speaks, transcripts, barge-in, tool calls,
hang-up. Ends with the paths of the recordings and of the JSON transcript.

The caller's audio is synthesised offline; its first question comes while the agent is still
greeting, so the scenario's barge-in fires.

`--dialect live` calls +15550900 instead (scenarios/live_receptionist.py): the same conversation on
GPT-Live, where the model itself yields to the caller (no clear from the bridge) and the tool is
delegated.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telephony_bridge.local_engine.tts import synthesize
from telephony_bridge.testing.processes import ServerProcess
from telephony_bridge.testing.simulator import TimelineEvent, place_call
from telephony_bridge.testing.transcript import LiveTranscript, tail_journal

CALLER_VOICE = "en-us+f3"
SAMPLE_RATE = 8000


@dataclass(frozen=True, slots=True)
class CallerLine:
    at_s: float
    text: str


# The caller barges in 2 s into the ~6 s greeting, asks the time, then says goodbye.
CALLER_SCRIPT = (
    CallerLine(2.0, "What time is it?"),
    CallerLine(8.5, "No, that's all. Bye!"),
)


def caller_audio(lines: tuple[CallerLine, ...] = CALLER_SCRIPT) -> bytes:
    """PCM16 8 kHz: silence with each line spoken at its time."""
    audio = bytearray()
    for line in lines:
        start = int(line.at_s * SAMPLE_RATE) * 2
        audio.extend(b"\x00" * max(0, start - len(audio)))
        audio.extend(synthesize(line.text, SAMPLE_RATE, CALLER_VOICE))
    return bytes(audio)


def _scenarios_dir() -> Path:
    for candidate in (Path.cwd() / "scenarios", Path(__file__).resolve().parents[1] / "scenarios"):
        if (candidate / "default.py").exists():
            return candidate
    raise SystemExit("demo: no scenarios/default.py found (run it from the project root)")


class Printer:
    """Turns journal entries and simulator events into a readable live transcript.

    What each side said goes through :class:`LiveTranscript`: the agent's words from the journal,
    printed once the caller has heard them, cut where the barge-in cut the audio (as the recording
    is); the rest of the journal (barge-in, tools, hang-up) is printed as it comes."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.seen_barge_in = False
        self.seen_tool_call = False
        self.hung_up = False
        self.agent_stops: list[dict[str, Any]] = []  # GPT-Live: the agent stopped speaking
        self.transcript = LiveTranscript(lambda _t_ms, who, text: self.line(who, text), with_journal=True)

    def line(self, who: str, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.2f}s] {who:<7} {text}", flush=True)

    def simulator_event(self, event: TimelineEvent) -> None:
        self.transcript.simulator_event(event.kind, event.data)

    def journal(self, entry: dict[str, Any]) -> None:
        kind = entry["event"]
        self.transcript.journal_entry(entry)
        if kind == "call.started":
            self.line(
                "call",
                f"{entry['call_sid']} from {entry['caller']} to {entry['number']} -> scenario '{entry['scenario']}'",
            )
        elif kind == "caller.speech_started":
            self.line("caller", "starts speaking")
        elif kind == "barge_in":
            self.seen_barge_in = True
            cuts = ", ".join(_describe_cut(c) for c in entry["truncations"]) or "nothing to truncate"
            self.line("bridge", f"BARGE-IN: playback cleared; {cuts}")
        elif kind == "agent.tool_call":
            self.seen_tool_call = True
            self.line("agent", f"calls tool {entry['name']}({entry['arguments']})")
        elif kind == "agent.tool_result":
            self.line("scenario", f"tool result: {entry['output']}")
        elif kind == "agent.stopped_speaking":
            self.agent_stops.append(entry)
            how = "stopped by the bridge" if entry.get("interrupted") else "stops speaking"
            self.line(
                "agent",
                f"{how} after {entry['duration_ms'] / 1000:.1f} s ({entry['heard_ms'] / 1000:.1f} s heard so far)",
            )
        elif kind == "call.hangup":
            self.hung_up = True
            self.line("scenario", f"hangs up ({entry['reason']})")
        elif kind == "call.ended":
            self.line("call", f"ended: {entry['reason']} after {entry['duration_s']:.1f} s")
        elif kind == "model.error":
            self.line("model", f"error {entry['code']}: {entry['message']}")


def _describe_cut(cut: dict[str, Any]) -> str:
    if cut["deleted"]:
        return f"{cut['item_id']} deleted (nothing of it was heard)"
    return f"{cut['item_id']} truncated at {cut['audio_end_ms'] / 1000:.2f} s (what the caller heard)"


@dataclass(slots=True)
class DemoRun:
    exit_code: int
    call: Any  # the simulator's CallResult
    transcript_path: Path
    problems: list[str]
    agent_lines: list[str]  # the agent's lines as printed: as heard, cut at a barge-in


DEFAULT_NUMBER = "+15550100"
LIVE_NUMBER = "+15550900"
GREETING_S = 5.0  # the default script's greeting lasts about 6 s: a Live turn shorter than this was cut by the model


async def run_demo(out_dir: Path, dialect: str = "realtime") -> DemoRun:
    out_dir.mkdir(parents=True, exist_ok=True)
    calls_dir = out_dir / "calls"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "REALTIME_URL", "TWILIO_AUTH_TOKEN", "PUBLIC_URL")
    }
    env.update(SCENARIOS_DIR=str(_scenarios_dir()), CALLS_DIR=str(calls_dir))
    server = ServerProcess(out_dir / "server.log", env)
    printer = Printer()
    print("telephony_bridge demo: a simulated phone call through the real server and the embedded local engine.")
    print("(The local engine simulates a model for development and testing; it is not a language model.)\n")
    try:
        await server.start()
        assert server.process is not None  # start() returned: the process runs
        printer.line("server", f"listening on {server.base_url} (pid {server.process.pid}, log {server.log_path})")
        audio = await asyncio.to_thread(caller_audio)
        call_sid = "CA" + os.urandom(16).hex()
        stop_tail = asyncio.Event()
        tail = asyncio.create_task(tail_journal(calls_dir / f"{call_sid}.jsonl", printer.journal, stop_tail))
        result = await place_call(
            server.base_url,
            caller_audio=audio,
            duration_s=30,
            call_sid=call_sid,
            on_event=printer.simulator_event,
            to=LIVE_NUMBER if dialect == "live" else DEFAULT_NUMBER,
        )
        transcript = calls_dir / f"{call_sid}.json"
        deadline = time.monotonic() + 10
        while not transcript.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop_tail.set()
        await tail
        printer.transcript.finish()
    finally:
        await server.stop()
    log_path = server.log_path
    heard, stereo = out_dir / "heard.wav", out_dir / "call-stereo.wav"
    result.write_heard_wav(heard)
    result.write_stereo_wav(stereo)
    print()
    heard_ms = result.playout.played_ms if result.playout is not None else 0  # None: the call never connected
    print(
        f"Caller heard {heard_ms / 1000:.1f} s of agent audio; {len(result.clears)} barge-in clear(s) from the bridge."
    )
    print(f"Recording (stereo, left caller / right agent as heard): {stereo}")
    print(f"What the caller heard (mono):                           {heard}")
    print(f"JSON transcript of the call:                            {transcript}")
    print(f"Server log:                                             {log_path}")
    problems = []
    if result.error:
        problems.append(f"the call failed: {result.error}")
    if dialect == "live":
        if not printer.agent_stops or printer.agent_stops[0]["duration_ms"] > GREETING_S * 1000:
            problems.append("the model did not yield to the caller")
    elif not printer.seen_barge_in or not result.clears:
        problems.append("no barge-in happened")
    if not printer.seen_tool_call:
        problems.append("no tool call happened")
    if not printer.hung_up:
        problems.append("the agent did not hang up")
    if not transcript.exists():
        problems.append("the server wrote no JSON transcript")
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    return DemoRun(1 if problems else 0, result, transcript, problems, printer.transcript.agent_lines)


def main(out_dir: str | os.PathLike[str] = "out/demo", dialect: str = "realtime") -> int:
    return asyncio.run(run_demo(Path(out_dir), dialect)).exit_code


if __name__ == "__main__":
    sys.exit(main())
