"""Peers that misbehave, and calls that must not notice: helpers for the hostile-input and leak tests.

- `open_peer`: a Twilio-like media-stream peer over a real socket, optionally with a tiny receive
  buffer and no permessage-deflate (Twilio negotiates none; with it, a constant test tone compresses
  ~50x and a "stalled" peer never fills anything).
- `Bystander`: a well-behaved call running alongside a hostile one. Every media frame it sends must
  reach its scenario before it sends the next, and its DTMF, stop and scenario events must complete.
- `ModelServer`: a scripted Realtime server with one handle per connection, that can stop reading
  (a stalled model) and counts the connections still open.
- `raw_http`: bytes on a socket, for requests that HTTP clients normalise away (`/a/../b`, `//b`).
- Process gauges: RSS, open file descriptors, live objects by class name, uvicorn's WebSocket queues.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import socket
from collections import Counter
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.protocol import State

from tests.integration.probe import Probe
from tests.integration.scripted_model import until_changed
from tests.integration.twilio_peer import TwilioPeer, sid

FRAME = b"\xff" * 160
PROBE_EVENTS = ["alerting", "connected", "tone", "disconnected", "terminated"]


def ws_url(runtime: Any, path: str = "/media-stream") -> str:
    return f"ws://127.0.0.1:{runtime.settings.port}{path}"


async def open_peer(url: str, *, rcvbuf: int | None = None, headers: dict[str, str] | None = None,
                    max_queue: int | None = 16, compression: str | None = None) -> TwilioPeer:
    """A media-stream peer without compression. `rcvbuf` shrinks its kernel receive buffer (set
    before connecting, so the TCP window is small from the start): once it stops reading, the
    bridge's socket backs up after a few hundred KiB instead of megabytes."""
    sock = None
    if rcvbuf is not None:
        host_port = url.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await connect(url, sock=sock, additional_headers=headers or {}, open_timeout=5,
                       compression=compression, max_queue=max_queue)
    return TwilioPeer(ws, sid("CA"), sid("MZ"), url)


async def start_call(peer: TwilioPeer, probe: Probe, **parameters: str) -> None:
    """`connected` + `start`, then wait until the scenario has answered (its alerting handler is a
    coroutine: caller audio before `answer()` goes nowhere, as on a real unanswered call)."""
    await peer.start({"scenario": "default", **parameters})
    await probe.wait_for(lambda: "connected" in probe.kinds(peer.call_sid))


class Bystander:
    """A call that must stay undisturbed: `async with Bystander(url, probe):` starts it and keeps
    media flowing, paced at 20 ms, each frame confirmed by the scenario; `finish()` sends a DTMF
    and a stop, and checks every event of the call completed and the close was clean."""

    def __init__(self, url: str, probe: Probe, digit: str = "5") -> None:
        self.url, self.probe, self.digit = url, probe, digit
        self.frames = 0
        self.max_wait_ms = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Bystander:
        self.peer = await open_peer(self.url)
        await start_call(self.peer, self.probe)
        self._task = asyncio.create_task(self._media())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.peer.ws.close()

    async def _media(self) -> None:
        loop = asyncio.get_running_loop()
        call_id = self.peer.call_sid
        while not self._stop.is_set():
            await self.peer.media(FRAME)
            self.frames += 1
            sent_at = loop.time()
            expected = self.frames * len(FRAME)
            await self.probe.wait_for(lambda expected=expected: self.probe.media_bytes[call_id] >= expected, timeout=5)
            self.max_wait_ms = max(self.max_wait_ms, (loop.time() - sent_at) * 1000)
            await asyncio.sleep(0.02)

    async def finish(self, min_frames: int = 5) -> None:
        while self.frames < min_frames:
            await asyncio.sleep(0.02)
        self._stop.set()
        assert self._task is not None
        await self._task  # raises if a frame was not delivered within 5 s
        call_id = self.peer.call_sid
        await self.peer.dtmf(self.digit)
        await self.probe.wait_for(lambda: "tone" in self.probe.kinds(call_id))
        await self.peer.stop()
        code, _ = await self.peer.wait_closed()
        await self.probe.wait_for(lambda: "terminated" in self.probe.kinds(call_id))
        assert code == 1000
        assert self.probe.kinds(call_id) == PROBE_EVENTS
        assert self.probe.media_bytes[call_id] == self.frames * len(FRAME)


class ModelServer:
    """A scripted Realtime model on 127.0.0.1. Each connection gets `session.created`; then the model
    reads every client event (`received[i]` per connection) — unless `stall_after` is set, in which
    case it stops reading once it has read that many events, until `resume()`. With `answer_s` it
    also streams an answer that long on every connection after the first client event. Its listening socket
    has a small receive buffer (inherited by accepted sockets), so a stalled model backs the bridge
    up after ~100 KiB rather than after the kernel's autotuned megabytes."""

    def __init__(self, stall_after: int | None = None, answer_s: float | None = None) -> None:
        self.stall_after = stall_after
        self.answer_s = answer_s  # stream an answer of this length on every connection at once
        self.connections: list[ServerConnection] = []
        self.received: list[list[dict[str, Any]]] = []
        self.stalled = asyncio.Event()
        self._resume = asyncio.Event()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> ModelServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.bind(("127.0.0.1", 0))
        self._server = await serve(self._handle, sock=sock, max_size=16 * 1024 * 1024, max_queue=4, compression=None)
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}/v1/realtime"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._resume.set()
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        received: list[dict[str, Any]] = []
        self.received.append(received)
        self._changed.set()
        await ws.send(orjson.dumps({"type": "session.created", "event_id": "ev0", "session": {"id": "sess_1", "type": "realtime"}}).decode())
        answering = None
        try:
            async for raw in ws:
                received.append(orjson.loads(raw))
                self._changed.set()
                if self.answer_s is not None and answering is None:
                    answering = asyncio.create_task(self.audio(self.connections.index(ws), "resp_1", "item_1", self.answer_s))
                if self.stall_after is not None and len(received) >= self.stall_after and not self._resume.is_set():
                    self.stalled.set()
                    await self._resume.wait()
        except Exception:
            pass  # an aborted connection is one of the things these tests provoke
        finally:
            if answering is not None:
                answering.cancel()
                await asyncio.gather(answering, return_exceptions=True)
            self._changed.set()

    def resume(self) -> None:
        self._resume.set()

    def open_connections(self) -> int:
        return sum(1 for ws in self.connections if ws.state is not State.CLOSED)

    async def wait_for(self, predicate: Any, timeout: float = 10) -> None:
        await until_changed(self._changed, predicate, timeout)

    async def audio(self, index: int, response_id: str, item_id: str, seconds: float, chunk_ms: int = 100) -> None:
        """Stream `seconds` of noise-like PCM16 24 kHz answer audio on connection `index` (noise, so
        that nothing on the way compresses it)."""
        ws = self.connections[index]
        await ws.send(orjson.dumps({"type": "response.created", "response": {"id": response_id, "object": "realtime.response", "status": "in_progress", "output": []}}).decode())
        await ws.send(orjson.dumps({"type": "response.output_item.added", "response_id": response_id, "output_index": 0,
                                    "item": {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}}).decode())
        chunk = os.urandom(48 * chunk_ms)
        delta = base64.b64encode(chunk).decode()
        for _ in range(int(seconds * 1000 / chunk_ms)):
            await ws.send(orjson.dumps({"type": "response.output_audio.delta", "response_id": response_id, "item_id": item_id,
                                        "output_index": 0, "content_index": 0, "delta": delta}).decode())


async def raw_http(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send `request` verbatim; return the response status and body (as far as the server sent it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    response = b""
    try:
        writer.write(request)
        await writer.drain()
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            response += chunk
    except ConnectionError:
        pass  # a server may answer and reset before reading an oversized body to the end
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, body


def form_request(path: str, body: bytes, content_type: bytes = b"application/x-www-form-urlencoded",
                 extra_headers: bytes = b"", host: bytes = b"127.0.0.1") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra_headers + b"Connection: close\r\n\r\n" + body)


# --- process gauges -------------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


LEAK_TYPES = ("Call", "CallSession", "TaskOwner", "RealtimeAPIClient", "PlayoutChannel", "VoxEngine",
              "CallJournal", "MediaLink", "PlaybackLedger", "WebSocketsSansIOProtocol")


def live_objects(names: tuple[str, ...] = LEAK_TYPES) -> Counter[str]:
    """Live instances of the bridge's (and uvicorn's) per-call classes. Matched by module as well as
    name: hypothesis keeps `ast.Call` nodes of the lambdas it describes, which are no calls of ours."""
    gc.collect()
    wanted = set(names)
    return Counter(
        type(o).__name__ for o in gc.get_objects()
        if type(o).__name__ in wanted and type(o).__module__.startswith(("telephony_bridge.", "uvicorn."))
    )


def uvicorn_ws_protocols() -> list[Any]:
    """uvicorn's per-connection WebSocket protocol objects (their `queue` holds received messages
    the application has not read yet)."""
    return [o for o in gc.get_objects() if type(o).__name__ == "WebSocketsSansIOProtocol"]
