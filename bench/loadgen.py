"""Load generator: N simulated Twilio calls in one asyncio process.

    python -m bench.loadgen --url http://127.0.0.1:P --calls N --duration S --out results.json
    python -m bench.loadgen --url ... --calls 50 --soak-seconds 600 --call-seconds 10:30 --out ...

Each call does what Twilio does: POST the voice webhook, read the TwiML, open the `<Stream>` URL,
send `connected` and `start` (with the TwiML's `<Parameter>`s), then 160-byte μ-law `media` frames
every 20 ms, echo `mark`s once the audio sent before them has played, and `stop` at the end.

The caller starts talking once the agent's greeting arrives (the first `media` from the bridge):
until the model connection is up the bridge has nowhere to send caller audio, and this keeps
"frames lost" meaning frames lost in flight. Time to first audio is reported per call.

Pacing is drift-free and cheap: calls are spread over 20 phase buckets 1 ms apart; one task per
bucket wakes on an absolute 20 ms schedule (t0 + k·20 ms, never "sleep 20 ms") and sends that
tick's frame of every call in the bucket, so 200 calls cost 1000 wake-ups a second, not 10,000.
Every frame's send time (time.monotonic, just before the write) and scheduled time are kept; the
difference is the load generator's own pacing slip, reported so an overloaded harness shows.

Mark echoes follow Twilio's playout model: the buffer plays FIFO in real time, a mark is echoed
when the audio before it has finished (at once if nothing is buffered), `clear` flushes them all.
Echoes go out on the call's next tick (≤ 20 ms late, like Twilio's own packetisation).
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import math
import random
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from array import array
from collections import deque
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

if __package__ in (None, ""):  # `python bench/loadgen.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import phones  # noqa: E402
from bench.common import FRAME_S, pack_ints, pack_times  # noqa: E402
from bench.phones import PhasePacer, bucket_of, caller_ulaw  # noqa: E402
from telephony_bridge.testing import twilio_messages as messages  # noqa: E402

FIRST_AUDIO_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 5.0


def caller_frames() -> list[str]:
    """One second of caller audio as base64 μ-law frames, looped (bench/phones.py's tone)."""
    return [binascii.b2a_base64(frame, newline=False).decode() for frame in caller_ulaw()]


async def post_form(url: str, params: dict[str, str], timeout_s: float = 10.0) -> tuple[int, str]:
    """A minimal HTTP/1.1 form POST (Connection: close): all the webhook needs, no client library."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = urlencode(params).encode()
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: TwilioProxy/1.1\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head + body)
            return await reader.read()
        finally:
            writer.close()

    raw = await asyncio.wait_for(exchange(), timeout_s)
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, payload.decode("utf-8", "replace")


def parse_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    answer = messages.read_twiml(twiml)
    if answer.stream_url is None:
        raise ValueError(f"no <Connect><Stream url> in TwiML: {twiml[:200]}")
    return answer.stream_url, answer.parameters


class SimCall:
    __slots__ = (
        "index", "sid", "account", "frames_total", "bucket", "ws", "stream_sid", "seq", "k",
        "send_t", "sched_t", "recv_t", "recv_len", "pending_marks", "play_end", "marks_received",
        "marks_echoed", "clears", "other_messages", "first_media", "done", "error", "close_code",
        "t_webhook", "t_start", "t_media_start", "t_stop", "t_closed",
    )

    def __init__(self, index: int, duration_s: float, bucket: int) -> None:
        self.index = index
        self.sid = f"CA{index:08x}{secrets.token_hex(12)}"
        self.account = "AC" + "b" * 32
        self.frames_total = max(1, int(round(duration_s / FRAME_S)))
        self.bucket = bucket
        self.ws: ClientConnection | None = None
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.seq = 0
        self.k = 0
        self.send_t = array("d")
        self.sched_t = array("d")
        self.recv_t = array("d")
        self.recv_len = array("i")
        self.pending_marks: deque[tuple[float, str]] = deque()
        self.play_end = 0.0
        self.marks_received = 0
        self.marks_echoed = 0
        self.clears = 0
        self.other_messages = 0
        self.first_media = asyncio.Event()
        self.done = asyncio.Event()
        self.error: str | None = None
        self.close_code: int | None = None
        self.t_webhook = self.t_start = self.t_media_start = self.t_stop = self.t_closed = math.nan

    def next_seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    def to_json(self) -> dict:
        return {
            "index": self.index, "sid": self.sid, "error": self.error, "close_code": self.close_code,
            "frames_planned": self.frames_total, "frames_sent": len(self.send_t),
            "send_t": pack_times(self.send_t), "sched_t": pack_times(self.sched_t),
            "media_received": len(self.recv_t), "recv_t": pack_times(self.recv_t), "recv_len": pack_ints(self.recv_len),
            "marks_received": self.marks_received, "marks_echoed": self.marks_echoed, "clears": self.clears,
            "t_webhook": self.t_webhook, "t_start": self.t_start, "t_media_start": self.t_media_start,
            "t_stop": self.t_stop, "t_closed": self.t_closed,
        }


class Pacer(PhasePacer[SimCall]):
    """Each call's next `media` message on its bucket's schedule, with the marks due before it."""

    def __init__(self, frames: list[str], echo_marks: str) -> None:
        super().__init__()
        self.frames = frames
        self.echo_marks = echo_marks

    async def send(self, call: SimCall, due: float) -> None:
        ws = call.ws
        sid = call.stream_sid
        try:
            if call.pending_marks:
                t = time.monotonic()
                pending = call.pending_marks
                while pending and (pending[0][0] <= t or self.echo_marks == "immediate"):
                    _, name = pending.popleft()
                    await ws.send(messages.mark(seq=call.next_seq(), stream_sid=sid, name=name))
                    call.marks_echoed += 1
            k = call.k
            message = messages.media(seq=call.next_seq(), stream_sid=sid, chunk=k + 1, timestamp_ms=k * 20,
                                     payload=self.frames[k % len(self.frames)])
            call.sched_t.append(due)
            call.send_t.append(time.monotonic())
            await ws.send(message)
            call.k = k + 1
        except ConnectionClosed:
            call.error = call.error or f"connection closed by the server after {call.k} frames"
            call.k = call.frames_total
        if call.k >= call.frames_total:
            self.remove(call)
            call.done.set()


async def receive(call: SimCall, echo_marks: str) -> None:
    ws = call.ws
    assert ws is not None
    now, loads, a2b = time.monotonic, orjson.loads, binascii.a2b_base64
    recv_t, recv_len = call.recv_t, call.recv_len
    try:
        async for message in ws:
            t = now()
            event = loads(message)
            kind = event.get("event")
            if kind == "media":
                n = len(a2b(event["media"]["payload"]))
                recv_t.append(t)
                recv_len.append(n)
                call.play_end = max(call.play_end, t) + n / 8000
                if not call.first_media.is_set():
                    call.first_media.set()
            elif kind == "mark":
                call.marks_received += 1
                if echo_marks != "none":
                    call.pending_marks.append((call.play_end, event["mark"]["name"]))
            elif kind == "clear":
                call.clears += 1
                call.play_end = t
                call.pending_marks = deque((t, name) for _, name in call.pending_marks)
            else:
                call.other_messages += 1
        call.close_code = ws.close_code
    except ConnectionClosed as exc:
        call.close_code = exc.rcvd.code if exc.rcvd else 1006
    finally:
        call.t_closed = now()
        if not call.first_media.is_set():
            call.first_media.set()  # wake the call so it can report the failure


async def run_call(call: SimCall, args: argparse.Namespace, pacer: Pacer) -> None:
    now = time.monotonic
    call.t_webhook = now()
    try:
        if args.stream_url:
            stream_url, params = args.stream_url, {"scenario": "default", "From": "+15550199", "To": "+15550100", "CallSid": call.sid}
        else:
            status, twiml = await post_form(args.url.rstrip("/") + messages.WEBHOOK_PATH, messages.webhook_form(
                account_sid=call.account, call_sid=call.sid, from_="+15550199", to="+15550100"))
            if status != 200:
                raise RuntimeError(f"webhook answered HTTP {status}: {twiml[:200]}")
            stream_url, params = parse_twiml(twiml)
        call.ws = await connect(stream_url, compression=None, max_size=1 << 22, ping_interval=None,
                                user_agent_header="Twilio.TmeWs/1.0", open_timeout=15)
    except (OSError, TimeoutError, InvalidHandshake, RuntimeError, ValueError, ET.ParseError) as exc:
        call.error = f"setup failed: {type(exc).__name__}: {exc}"
        return
    ws = call.ws
    receiver = asyncio.create_task(receive(call, args.echo_marks))
    try:
        await ws.send(messages.connected())
        await ws.send(messages.start(seq=call.next_seq(), stream_sid=call.stream_sid, account_sid=call.account,
                                     call_sid=call.sid, custom_parameters=params))
        call.t_start = now()
        try:
            await asyncio.wait_for(call.first_media.wait(), FIRST_AUDIO_TIMEOUT_S)
        except TimeoutError:
            call.error = f"no model audio within {FIRST_AUDIO_TIMEOUT_S:.0f} s of start"
            return
        if receiver.done():
            call.error = call.error or f"stream closed before any audio (code {call.close_code})"
            return
        call.t_media_start = now()
        pacer.add(call)
        await call.done.wait()
        call.t_stop = now()
        try:
            await ws.send(messages.stop(seq=call.next_seq(), stream_sid=call.stream_sid, account_sid=call.account,
                                        call_sid=call.sid))
        except ConnectionClosed:
            pass
        # Twilio hangs up after `stop`; give the bridge a moment to close first, as it does.
        try:
            await asyncio.wait_for(asyncio.shield(receiver), CLOSE_TIMEOUT_S)
        except TimeoutError:
            call.error = call.error or "server did not close the stream after stop"
    except ConnectionClosed:
        call.error = call.error or "connection closed during setup"
    finally:
        await ws.close()
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)


async def run(args: argparse.Namespace) -> dict:
    frames = caller_frames()
    pacer = Pacer(frames, args.echo_marks)
    pacer.start()
    calls: list[SimCall] = []
    rng = random.Random(args.seed)
    cpu0, wall0 = time.process_time(), time.monotonic()

    def new_call(duration_s: float) -> SimCall:
        index = len(calls)
        call = SimCall(index, duration_s, bucket_of(index))
        calls.append(call)
        return call

    async def after(delay_s: float, coro) -> None:
        await asyncio.sleep(delay_s)
        await coro

    if args.soak_seconds:
        lo, hi = (float(x) for x in args.call_seconds.split(":"))
        deadline = wall0 + args.ramp + args.soak_seconds

        async def slot(i: int) -> None:
            await asyncio.sleep(args.ramp * i / max(1, args.calls))
            while True:
                remaining = deadline - time.monotonic()
                duration = min(rng.uniform(lo, hi), remaining)
                if duration < 1.0:
                    return
                await run_call(new_call(duration), args, pacer)
                await asyncio.sleep(rng.uniform(0, 0.5))  # the next caller dials in a moment later

        await asyncio.gather(*(slot(i) for i in range(args.calls)))
    else:
        jobs = [after(args.ramp * i / max(1, args.calls), run_call(new_call(args.duration), args, pacer)) for i in range(args.calls)]
        await asyncio.gather(*jobs)
    await pacer.stop()
    return {
        "calls": [c.to_json() for c in calls],
        "loadgen_cpu_s": time.process_time() - cpu0,
        "loadgen_wall_s": time.monotonic() - wall0,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the bridge's base URL (webhook at /incoming-call)")
    parser.add_argument("--stream-url", help="skip the webhook and open this media WebSocket directly")
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of caller audio per call")
    parser.add_argument("--ramp", type=float, default=3.0, help="spread call starts over this many seconds")
    parser.add_argument("--soak-seconds", type=float, default=0.0, help="soak: keep --calls calls going this long, each hanging up and redialling")
    parser.add_argument("--call-seconds", default="10:30", help="soak: each call lasts uniform(A, B) seconds")
    parser.add_argument("--echo-marks", choices=("playout", "immediate", "none"), default="playout")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="write the JSON results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    return phones.main(build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
