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

What runs, per target:

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
import base64
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

if __package__ in (None, ""):  # `python bench/frame_cost.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.websockets import WebSocketState
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from bench import relay as relay_module
from bench.common import ULAW_FRAME_BYTES, install_fast_loop
from bench.engine import model_audio
from bench.relay import CarrierClosed, relay_call
from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.testing import twilio_messages as twilio

STREAM_SID = "MZ" + "0" * 31 + "1"
CALL_SID = "CA" + "0" * 31 + "1"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
DELTAS_PER_RESPONSE = 20
DELTA_MS = 100
WARMUP_FRAMES = 100
WARMUP_DELTAS = 40


# --- the two in-memory sockets -------------------------------------------------------------------
class MemoryCarrierSocket:
    """The carrier's WebSocket as the session (MediaTransport) and the relay see it: messages in from
    a deque, messages out counted. A sent mark is kept: it is, byte for byte, a valid echo of itself."""

    application_state = WebSocketState.CONNECTED
    client_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.query_params: dict[str, str] = {}
        self.inbox: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None
        self.sent = 0
        self.sent_chars = 0
        self.marks: list[str] = []

    async def receive(self) -> dict[str, Any]:
        while not self.inbox:
            if self._idle is not None and not self._idle.done():
                self._idle.set_result(None)
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.inbox.popleft()

    async def feed(self, texts: list[str]) -> None:
        """Hand the reader these messages and return once it has taken them all and waits again."""
        self.inbox.extend({"type": "websocket.receive", "text": text} for text in texts)
        self._idle = asyncio.get_running_loop().create_future()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        await self._idle

    async def hang_up(self) -> None:
        self.inbox.append({"type": "websocket.disconnect", "code": 1000})
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def send_text(self, data: str) -> None:
        self.sent += 1
        self.sent_chars += len(data)
        if "mark" in data[:18]:  # '{"event":"mark"' (orjson) or '{"event": "mark"' (json)
            self.marks.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent += 1

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


class NullTransport(asyncio.Transport):
    """The model socket's TCP connection: every write counted and dropped, never backed up."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def memory_model_socket(url: str) -> ClientConnection:
    """An open websockets client connection over a NullTransport (no handshake): the real framing."""
    protocol = ClientProtocol(parse_uri(url), state=State.OPEN, max_size=16 * 1024 * 1024)
    ws = ClientConnection(protocol, ping_interval=None, ping_timeout=None, close_timeout=1.0, write_limit=1 << 20)
    ws.connection_made(NullTransport())
    ws.response = Response(101, "Switching Protocols", Headers())  # as if the handshake had happened
    ws.response_rcvd.set_result(None)
    return ws


def server_frame(text: bytes) -> bytes:
    """One unmasked text frame as a server sends it."""
    return Frame(Opcode.TEXT, text).serialize(mask=False)


async def model_settled(ws: ClientConnection) -> None:
    """Let the model socket's reader take everything fed to it (it waits for the next frame again).
    Each loop turn is one task step; with in-memory sockets nothing else is waiting."""
    messages = ws.recv_messages
    for _ in range(1000):
        await asyncio.sleep(0)
        if messages.get_in_progress and not len(messages.frames):
            return
    raise RuntimeError("the model reader did not settle")


# --- the workload --------------------------------------------------------------------------------
def caller_messages(count: int, first: int = 0) -> list[str]:
    """`count` Twilio media messages (distinct sequence numbers and timestamps, one 20 ms payload)."""
    payload = base64.b64encode(ulaw_encode(model_audio(20, 8000))[:ULAW_FRAME_BYTES]).decode()
    return [
        twilio.media(seq=k + 2, stream_sid=STREAM_SID, chunk=k + 1, timestamp_ms=k * 20, payload=payload)
        for k in range(first, first + count)
    ]


def model_frames(codec: str, responses: int, first: int = 0) -> list[list[bytes]]:
    """Per answer, its server frames in order, as bench/engine.py sends them (each answer a list)."""
    audio = model_audio(DELTA_MS) if codec == "pcm16" else ulaw_encode(model_audio(DELTA_MS, 8000))
    delta_b64 = base64.b64encode(audio)
    out = []
    for r in range(first, first + responses):
        rid, iid = f"resp_{r}", f"item_{r}"
        created = {
            "type": "response.created",
            "event_id": f"e{r}a",
            "response": {"id": rid, "object": "realtime.response", "status": "in_progress"},
        }
        added = {
            "type": "response.output_item.added",
            "event_id": f"e{r}b",
            "response_id": rid,
            "output_index": 0,
            "item": {"id": iid, "type": "message", "role": "assistant"},
        }
        delta = (
            b'{"type":"response.output_audio.delta","response_id":"'
            + rid.encode()
            + b'","item_id":"'
            + iid.encode()
            + b'","output_index":0,"content_index":0,"delta":"'
            + delta_b64
            + b'"}'
        )
        done_audio = {
            "type": "response.output_audio.done",
            "event_id": f"e{r}c",
            "response_id": rid,
            "item_id": iid,
            "output_index": 0,
            "content_index": 0,
        }
        done = {
            "type": "response.done",
            "event_id": f"e{r}d",
            "response": {"id": rid, "object": "realtime.response", "status": "completed", "output": []},
        }
        texts = [
            json.dumps(created).encode(),
            json.dumps(added).encode(),
            *[delta] * DELTAS_PER_RESPONSE,
            json.dumps(done_audio).encode(),
            json.dumps(done).encode(),
        ]
        out.append([server_frame(text) for text in texts])
    return out


# --- the targets ---------------------------------------------------------------------------------
class Target:
    """One call through the bridge or the relay: `up(texts)` caller messages, `down(frames)` model frames."""

    name = ""
    model_codec = "pcm16"

    def __init__(self) -> None:
        self.carrier = MemoryCarrierSocket()
        self.model: ClientConnection | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def up(self, texts: list[str]) -> None:
        await self.carrier.feed(texts)

    async def down(self, frames: list[bytes]) -> None:
        """Each model frame in turn; after each, the marks the carrier got are echoed back."""
        assert self.model is not None
        carrier, model = self.carrier, self.model
        for frame in frames:
            model.data_received(frame)
            await model_settled(model)
            if carrier.marks:
                echoes, carrier.marks = carrier.marks, []
                await carrier.feed(echoes)

    async def stop(self) -> None:
        await self.carrier.hang_up()


class Relay(Target):
    name = "relay"
    model_codec = "g711_ulaw"

    async def start(self) -> None:
        carrier = self.carrier

        async def connect_engine(url: str, **_: Any) -> ClientConnection:
            self.model = memory_model_socket(url)
            return self.model

        # As bench/relay.py's create_app wraps the Starlette WebSocket.
        async def receive_text() -> str:
            while True:
                message = await carrier.receive()
                if message["type"] == "websocket.disconnect":
                    raise CarrierClosed
                text = message.get("text")
                if text is not None:
                    return text

        async def send_text(text: str) -> None:
            await carrier.send_text(text)

        self.task = asyncio.create_task(
            relay_call(receive_text, send_text, "ws://engine.invalid/v1/realtime", connect_engine)
        )
        await carrier.feed([twilio.connected(), start_message()])


class RelayOrjson(Relay):
    """bench/relay.py with `--json orjson`: how much of the floor is the standard library's JSON."""

    name = "relay-orjson"

    async def start(self) -> None:
        relay_module.use_json("orjson")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        relay_module.use_json("std")


class Bridge(Target):
    name = "bridge"

    def __init__(self, codec: str = "pcm16") -> None:
        super().__init__()
        self.model_codec = codec
        self.directory = tempfile.TemporaryDirectory(prefix="frame-cost-")

    async def start(self) -> None:
        from telephony_bridge.carriers.twilio_carrier import TwilioCarrier
        from telephony_bridge.server.journal import CallJournal
        from telephony_bridge.server.metrics import BridgeMetrics
        from telephony_bridge.server.session import CallSession
        from telephony_bridge.tasks import TaskOwner
        from telephony_bridge.voxengine.call import Call
        from telephony_bridge.voxengine.realtime_client import RealtimeAPIClient

        runtime = SimpleNamespace(metrics=BridgeMetrics())
        session = CallSession(self.carrier, runtime, 1, TwilioCarrier({}))  # type: ignore[arg-type]
        self.session = session
        session.tasks = tasks = TaskOwner("stream 1")
        reader = asyncio.create_task(session._read_carrier())
        await self.carrier.feed([twilio.connected()])
        # The start, as CallSession._start takes it, without the scenario machinery: the same
        # objects, wired as bench/scenarios/default.py wires them (answer, client, sendMediaBetween).
        started = session.codec.parse(start_message())
        link, _ = session._bind(CALL_SID, started)  # type: ignore[arg-type]
        session.journal = CallJournal(session.label, Path(self.directory.name))
        session.journal.open(CALL_SID)
        call = Call(
            call_sid=CALL_SID,
            caller_id="+15550001111",
            number="+15550002222",
            custom_data={},
            link=link,
            tasks=tasks,
            clock_ms=session.now_ms,
            on_hangup=session.hangup_requested,
        )
        session.call = call
        client = RealtimeAPIClient(
            url="ws://engine.invalid/v1/realtime",
            api_key="bench",
            model="gpt-realtime",
            dialect="ga",
            codec=self.model_codec,
            tasks=tasks,
            ping_interval_s=None,
            answer_stall_timeout_s=0,
        )
        client.observer = session._observe_model

        async def open_model(timeout_s: float) -> ClientConnection:
            self.model = memory_model_socket(client.url)
            return self.model

        client._connection._open = open_model  # type: ignore[method-assign]
        await client.connect()
        call.answer()
        call.sendMediaTo(client)
        client.sendMediaTo(call)
        await asyncio.sleep(0)  # Connected fires on the next loop turn
        self.client, self.call, self.reader = client, call, reader

    async def stop(self) -> None:
        await super().stop()
        await self.reader
        await self.client.aclose()
        self.directory.cleanup()


def start_message() -> str:
    return twilio.start(seq=1, stream_sid=STREAM_SID, account_sid=ACCOUNT_SID, call_sid=CALL_SID, custom_parameters={})


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
_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)
_FN_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)(?:\s+\[(.*)\])?$")

# Where a C function's instructions go, by its object file (or name): the groups of the breakdown.
_GROUPS = (
    ("numpy + BLAS (the DSP)", lambda fn, obj: "numpy" in obj),
    ("base64 (binascii)", lambda fn, obj: "binascii_" in fn),
    ("orjson", lambda fn, obj: "orjson" in obj),
    ("std json (_json)", lambda fn, obj: "_json" in obj or "/_json.c" in fn),
    ("websockets C speedups (masking)", lambda fn, obj: "websockets" in obj),
    ("uvloop", lambda fn, obj: "uvloop" in obj),
    ("asyncio C (_asyncio)", lambda fn, obj: "_asynciomodule" in fn or "_asyncio." in obj),
    ("libc (memcpy, malloc, …)", lambda fn, obj: "libc.so" in obj or "libm.so" in obj),
    ("CPython: eval loop", lambda fn, obj: "_PyEval_EvalFrameDefault" in fn),
    ("CPython: memory (obmalloc, gc)", lambda fn, obj: "obmalloc.c" in fn or "gcmodule.c" in fn),
    ("CPython: everything else", lambda fn, obj: True),
)


def dump_totals(path: Path) -> int:
    match = _TOTALS.search(path.read_bytes())
    return int(match.group(1)) if match else 0


def exclusive_costs(path: Path) -> dict[tuple[str, str], int]:
    """Exclusive Ir per (file:function, object) of one dump, from callgrind_annotate. A dump taken
    mid-run charges each function still on the stack (main, the event loop, …) with everything under
    it; those entries (≥ 95 % of the dump) are left out."""
    total = dump_totals(path)
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True, check=True
    ).stdout
    out: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        match = _FN_LINE.match(line)
        if not match or match.group(2) == "PROGRAM TOTALS":
            continue
        ir = int(match.group(1).replace(",", ""))
        if ir >= 0.95 * total:
            continue
        key = (match.group(2), match.group(3) or "")
        out[key] = out.get(key, 0) + ir
    return out


_ALLOCATORS = {
    "_PyObject_Malloc": "python",
    "_PyObject_Calloc": "python",
    "_PyObject_Realloc": "python",
    "malloc": "libc",
    "calloc": "libc",
    "realloc": "libc",
}


def allocation_calls(path: Path) -> dict[str, int]:
    """Calls into CPython's object allocator and libc's malloc in one dump (from its `calls=` lines):
    the allocations a phase made, freed or not."""
    names: dict[str, str] = {}
    counts = {"python": 0, "libc": 0}
    callee = None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith(("fn=", "cfn=")):
                ident, _, name = line.partition(")")
                ident = ident.split("(", 1)[-1]
                if name.strip():
                    names[ident] = name.strip()
                callee = ident if line.startswith("cfn=") else None
            elif line.startswith("calls=") and callee is not None:
                kind = _ALLOCATORS.get(names.get(callee, "").split("'", 1)[0])
                if kind:
                    counts[kind] += int(line[6:].split()[0])
                callee = None
    return counts


def grouped(costs: dict[tuple[str, str], int]) -> dict[str, int]:
    out = {name: 0 for name, _ in _GROUPS}
    for (fn, obj), ir in costs.items():
        out[next(name for name, match in _GROUPS if match(fn, obj))] += ir
    return out


def short(fn: str) -> str:
    """'…/Objects/dictobject.c:_Py_dict_lookup' → 'dictobject.c:_Py_dict_lookup'."""
    path, _, name = fn.rpartition(":")
    return f"{path.rsplit('/', 1)[-1]}:{name}" if path else fn


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


def report(rows: dict[str, dict[str, Any]], meta: dict[str, Any], args: argparse.Namespace) -> None:
    table = []
    print(
        f"{'phase':<14} {'units':>6} {'Ir per unit':>12}   (unit: a 20 ms caller frame up; a 100 ms model delta down)"
    )
    for label, row in rows.items():
        per = row["ir"] / row["units"]
        row["per_unit"] = per
        table.append({"phase": label, "units": row["units"], "ir_per_unit": round(per)})
        allocs = allocation_calls(row["dump"])
        row["allocs"] = {k: v / row["units"] for k, v in allocs.items()}
        table[-1]["allocations_per_unit"] = row["allocs"]
        print(
            f"{label:<14} {row['units']:>6} {per:>12,.0f}   allocations per unit: "
            f"{row['allocs']['python']:.1f} CPython objects, {row['allocs']['libc']:.1f} malloc"
        )
    for way in ("up", "down"):
        bridge, lean = rows.get(f"bridge {way}"), rows.get(f"relay-orjson {way}")
        if bridge and lean:
            print(f"bridge ÷ relay-orjson {way}: {bridge['per_unit'] / lean['per_unit']:.2f}×")
    for way in ("up", "down"):
        bridge, relay = rows.get(f"bridge {way}"), rows.get(f"relay {way}")
        if bridge and relay:
            print(
                f"bridge ÷ relay {way}: {bridge['per_unit'] / relay['per_unit']:.2f}×  "
                f"(excess {bridge['per_unit'] - relay['per_unit']:,.0f} Ir per unit)"
            )
            b, r = exclusive_costs(bridge["dump"]), exclusive_costs(relay["dump"])
            bu, ru = bridge["units"], relay["units"]
            gb, gr = grouped(b), grouped(r)
            print(f"  {'where (C level)':<36} {'bridge':>10} {'relay':>10} {'excess':>10}   Ir per unit")
            for name in gb:
                print(
                    f"  {name:<36} {gb[name] / bu:>10,.0f} {gr[name] / ru:>10,.0f} {gb[name] / bu - gr[name] / ru:>10,.0f}"
                )
            if args.top:
                excess = {key: b.get(key, 0) / bu - r.get(key, 0) / ru for key in set(b) | set(r)}
                print(f"  top {args.top} C functions by excess Ir per unit (bridge, relay):")
                for key, ir in sorted(excess.items(), key=lambda kv: -abs(kv[1]))[: args.top]:
                    print(
                        f"    {ir:>10,.0f}  {short(key[0])[:80]}  ({b.get(key, 0) / bu:,.0f}, {r.get(key, 0) / ru:,.0f})"
                    )
    if args.json:
        print(json.dumps(table))


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
