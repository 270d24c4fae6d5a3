"""A lean Realtime-API stand-in for load: counts caller audio, streams model audio, keeps timestamps.

    python -m bench.engine --port 0 [--delta-ms 100 --response-ms 2000 --speed 1]

Why not `telephony_bridge.local_engine.LocalEngine`: it runs VAD on every appended frame and
espeak for every answer — the right thing for call-flow tests, but on a 2-core box its CPU would
sit next to the bridge's and blur the measurement. This engine does per call only what the load
needs and nothing the bridge could be blamed for:

* `/v1/realtime?call=<CallSid>[&codec=g711_ulaw]` (the call id comes from the bench scenario, the
  codec from the relay; default PCM16 24 kHz as the bridge sends). Any other query is ignored.
* Sends `session.created`; answers `session.update` with `session.updated`.
* Every `input_audio_buffer.append` is recognised by its first bytes (no JSON parse) and its receive
  time (time.monotonic) is appended to the call's list — the uplink half of the latency join.
* Once the first `session.update` arrives it streams model audio for as long as the connection is
  open: responses of `--response-ms` (`response.created`, `response.output_item.added`, deltas of
  `--delta-ms` each, `response.output_audio.done`, `response.done`). With `--speed 1` deltas are paced
  in real time on an absolute schedule (one 100 ms delta every 100 ms, back to back across
  responses); with `--speed 4` each response is sent 4x faster than real time and followed by a pause,
  in bursts as the real API sends, still averaging real time. The send time of each delta is kept —
  the downlink half of the join.
* `/v1/live/sessions?call=<CallSid>` (GPT-Live, `bench.load --dialect live`): answers `session.start`
  with `session.started` (μ-law 8 kHz unless the session asks for PCM), then streams
  `session.output_audio.delta`s continuously on the same absolute schedule; appends are
  `session.input_audio.append`, recognised the same way.
* `--webrtc-port N` (bench.load --transport webrtc): the same sessions over WebRTC as well, offers
  at `http://127.0.0.1:N/v1/realtime/calls?call=<CallSid>` (the local engine's WebRTC endpoint
  and data-channel socket, telephony_bridge/local_engine/webrtc_*.py, in front of this engine's
  handler: appends are the track's 20 ms frames, deltas go onto the track in real time).
* `GET /stats` returns every call's record as JSON (timestamps as base64 float64 arrays, see
  bench/common.py); `GET /stats?reset=1` also forgets them. `GET /healthz` answers ok.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import math
import sys
import time
from array import array
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

if __package__ in (None, ""):  # `python bench/engine.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REALTIME_PATH, install_fast_loop, pack_times  # noqa: E402
from telephony_bridge.audio.g711 import ulaw_encode  # noqa: E402
from telephony_bridge.local_engine.server import json_response  # noqa: E402

log = logging.getLogger("bench.engine")

_APPEND_MARK = b"input_audio_buffer.append"
_LIVE_APPEND_MARK = b"session.input_audio.append"
LIVE_PATH = "/v1/live/sessions"


def model_audio(duration_ms: int, rate: int = 24000) -> bytes:
    """A voiced-sounding signal at conversational level (content does not change the bridge's cost)."""
    n = rate * duration_ms // 1000
    t = np.arange(n) / rate
    signal = 5000 * np.sin(2 * np.pi * 180 * t) + 2500 * np.sin(2 * np.pi * 720 * t) + 1200 * np.sin(2 * np.pi * 2100 * t)
    return np.round(signal).astype("<i2").tobytes()


class CallRecord:
    __slots__ = ("call", "codec", "opened_at", "closed_at", "appends", "append_bytes", "deltas", "responses", "errors")

    def __init__(self, call: str, codec: str) -> None:
        self.call = call
        self.codec = codec
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.appends = array("d")
        self.append_bytes = 0  # JSON text bytes of all appends (sanity: audio really flowed)
        self.deltas = array("d")
        self.responses = 0
        self.errors: list[str] = []

    def to_json(self) -> dict:
        return {
            "call": self.call,
            "codec": self.codec,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "appends": len(self.appends),
            "append_bytes": self.append_bytes,
            "append_t": pack_times(self.appends),
            "deltas": len(self.deltas),
            "delta_t": pack_times(self.deltas),
            "responses": self.responses,
            "errors": self.errors,
        }


class BenchEngine:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, delta_ms: int = 100, response_ms: int = 2000, speed: float = 1.0,
                 webrtc_port: int = 0) -> None:
        if delta_ms <= 0 or response_ms < delta_ms or not speed >= 1.0:
            raise ValueError("need delta_ms > 0, response_ms >= delta_ms and speed >= 1")
        self.host, self.port = host, port
        self.delta_ms, self.speed = delta_ms, speed
        self.deltas_per_response = max(1, round(response_ms / delta_ms))
        self.response_s = self.deltas_per_response * delta_ms / 1000
        pcm = model_audio(delta_ms)
        self._delta_b64 = {
            "pcm16": base64.b64encode(pcm),
            "g711_ulaw": base64.b64encode(ulaw_encode(model_audio(delta_ms, 8000))),
        }
        self.calls: dict[str, CallRecord] = {}
        self.open_connections = 0
        self._server = None
        self._ids = 0
        self._webrtc = None
        if webrtc_port:
            from telephony_bridge.local_engine.webrtc_endpoint import WebRTCEndpoint

            self._webrtc = WebRTCEndpoint(self._handle, lambda: None, {"WEBRTC_HOST_ADDRESSES": host}, host, webrtc_port)

    async def start(self) -> BenchEngine:
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._process_request,
            compression=None, max_size=1 << 22, ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self._webrtc is not None:
            await self._webrtc.start()
        return self

    async def stop(self) -> None:
        if self._webrtc is not None:
            await self._webrtc.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def stats(self, reset: bool = False) -> dict:
        body = {"open_connections": self.open_connections, "calls": [r.to_json() for r in self.calls.values()]}
        if reset:
            self.calls = {k: v for k, v in self.calls.items() if v.closed_at is None}
        return body

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path in (REALTIME_PATH, LIVE_PATH):
            return None
        if parts.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if parts.path == "/stats":
            reset = parse_qs(parts.query).get("reset", ["0"])[0] == "1"
            return json_response(connection, HTTPStatus.OK, orjson.dumps(self.stats(reset)))
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _handle(self, ws: ServerConnection) -> None:
        if urlsplit(ws.request.path).path == LIVE_PATH:
            await self._handle_live(ws)
            return
        query = parse_qs(urlsplit(ws.request.path).query)
        self._ids += 1
        call = query.get("call", [f"conn{self._ids}"])[0]
        codec = "g711_ulaw" if query.get("codec", ["pcm16"])[0] in ("g711_ulaw", "g711", "ulaw") else "pcm16"
        if call in self.calls:
            call = f"{call}#{self._ids}"
        record = self.calls[call] = CallRecord(call, codec)
        self.open_connections += 1
        streamer: asyncio.Task | None = None
        appends, now = record.appends, time.monotonic
        try:
            await ws.send(orjson.dumps({"type": "session.created", "event_id": f"evt_{self._ids}_0",
                                        "session": {"id": f"sess_{self._ids}", "object": "realtime.session"}}).decode())
            while True:
                message = await ws.recv(decode=False)
                t = now()
                if _APPEND_MARK in message[:48]:
                    appends.append(t)
                    record.append_bytes += len(message)
                    continue
                try:
                    event = orjson.loads(message)
                except orjson.JSONDecodeError:
                    record.errors.append("non-JSON frame")
                    continue
                if event.get("type") == "session.update":
                    await ws.send(orjson.dumps({"type": "session.updated", "event_id": f"evt_su_{self._ids}",
                                                "session": event.get("session") or {}}).decode())
                    if streamer is None:
                        streamer = asyncio.create_task(self._stream(ws, record))
        except ConnectionClosed:
            pass
        finally:
            record.closed_at = now()
            self.open_connections -= 1
            if streamer is not None:
                streamer.cancel()
                try:
                    await streamer
                except (asyncio.CancelledError, ConnectionClosed):
                    pass

    async def _handle_live(self, ws: ServerConnection) -> None:
        """GPT-Live: silent until session.start; then continuous output, appends counted by their first bytes."""
        query = parse_qs(urlsplit(ws.request.path).query)
        self._ids += 1
        call = query.get("call", [f"conn{self._ids}"])[0]
        if call in self.calls:
            call = f"{call}#{self._ids}"
        record = self.calls[call] = CallRecord(call, "g711_ulaw")
        self.open_connections += 1
        streamer: asyncio.Task | None = None
        appends, now = record.appends, time.monotonic
        try:
            while True:
                message = await ws.recv(decode=False)
                t = now()
                if _LIVE_APPEND_MARK in message[:48]:
                    appends.append(t)
                    record.append_bytes += len(message)
                    continue
                event = orjson.loads(message)
                if event.get("type") == "session.start" and streamer is None:
                    session = event.get("session") or {}
                    if ((session.get("audio") or {}).get("format") or {}).get("type") == "audio/pcm":
                        record.codec = "pcm16"
                    await ws.send(orjson.dumps({"type": "session.started", "event_id": f"evt_{self._ids}_0", "session": {
                        "id": f"live_{self._ids}", "expires_at": 0, "status": "active", **session}}).decode())
                    streamer = asyncio.create_task(self._stream_live(ws, record))
                elif event.get("type") == "session.close":
                    break
        except (ConnectionClosed, orjson.JSONDecodeError):
            pass
        finally:
            record.closed_at = now()
            self.open_connections -= 1
            if streamer is not None:
                streamer.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await streamer

    async def _stream_live(self, ws: ServerConnection, record: CallRecord) -> None:
        message = b'{"type":"session.output_audio.delta","delta":"' + self._delta_b64[record.codec] + b'"}'
        delta_s = self.delta_ms / 1000
        deltas, now, sleep = record.deltas, time.monotonic, asyncio.sleep
        t0 = now()
        i = 0
        try:
            while True:
                wait = t0 + i * delta_s - now()
                if wait > 0:
                    await sleep(wait)
                deltas.append(now())
                await ws.send(message, text=True)
                i += 1
        except ConnectionClosed:
            pass

    async def _stream(self, ws: ServerConnection, record: CallRecord) -> None:
        delta_b64 = self._delta_b64[record.codec]
        delta_s = self.delta_ms / 1000
        step_s = delta_s / self.speed
        deltas, now, sleep = record.deltas, time.monotonic, asyncio.sleep
        t0 = now()
        r = 0
        try:
            while True:
                start = t0 + r * self.response_s
                wait = start - now()
                if wait > 0:
                    await sleep(wait)
                rid, iid = f"resp_{r}", f"item_{r}"
                await ws.send(orjson.dumps({"type": "response.created", "event_id": f"e{r}a",
                                            "response": {"id": rid, "object": "realtime.response", "status": "in_progress"}}).decode())
                await ws.send(orjson.dumps({"type": "response.output_item.added", "event_id": f"e{r}b", "response_id": rid,
                                            "output_index": 0, "item": {"id": iid, "type": "message", "role": "assistant"}}).decode())
                prefix = (b'{"type":"response.output_audio.delta","response_id":"' + rid.encode() + b'","item_id":"'
                          + iid.encode() + b'","output_index":0,"content_index":0,"delta":"')
                message = prefix + delta_b64 + b'"}'
                for i in range(self.deltas_per_response):
                    wait = start + i * step_s - now()
                    if wait > 0:
                        await sleep(wait)
                    deltas.append(now())
                    await ws.send(message, text=True)
                await ws.send(orjson.dumps({"type": "response.output_audio.done", "event_id": f"e{r}c", "response_id": rid,
                                            "item_id": iid, "output_index": 0, "content_index": 0}).decode())
                await ws.send(orjson.dumps({"type": "response.done", "event_id": f"e{r}d",
                                            "response": {"id": rid, "object": "realtime.response", "status": "completed", "output": []}}).decode())
                record.responses += 1
                r += 1
        except ConnectionClosed:
            pass


async def _serve(args: argparse.Namespace) -> None:
    engine = await BenchEngine(args.host, args.port, delta_ms=args.delta_ms, response_ms=args.response_ms, speed=args.speed,
                               webrtc_port=args.webrtc_port).start()
    print(f"READY port={engine.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await engine.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.engine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delta-ms", type=int, default=100, help="audio per response.output_audio.delta")
    parser.add_argument("--response-ms", type=int, default=2000, help="audio per response")
    parser.add_argument("--speed", type=float, default=1.0, help="1 = paced in real time; >1 = bursts this much faster, then a pause")
    parser.add_argument("--webrtc-port", type=int, default=0, help="also take WebRTC offers on this HTTP port (0: no WebRTC)")
    args = parser.parse_args(argv)
    if not (args.delta_ms > 0 and args.response_ms >= args.delta_ms and math.isfinite(args.speed) and args.speed >= 1):
        parser.error("need --delta-ms > 0, --response-ms >= --delta-ms, --speed >= 1")
    install_fast_loop()
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
