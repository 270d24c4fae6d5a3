"""A scripted Realtime server for client tests: the test pushes server events, and reads back every
client event the bridge sent. Real WebSocket on 127.0.0.1, nothing else; with `webrtc=True` it also
takes WebRTC offers at `webrtc_url` (the local engine's WebRTC endpoint in front of the same
handler: events on the data channel, ICE on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import itertools
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve


class ScriptedModel:
    def __init__(self, require_key: str | None = None, *, webrtc: bool = False) -> None:
        self.require_key = require_key
        self.webrtc = webrtc
        self._webrtc: Any = None
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.connections: list[ServerConnection] = []
        self._connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    async def __aenter__(self) -> ScriptedModel:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=16 * 1024 * 1024, process_request=self._check_key)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1/realtime"
        if self.webrtc:
            from telephony_bridge.local_engine.webrtc_endpoint import WebRTCEndpoint

            self._webrtc = WebRTCEndpoint(self._handle, lambda: self.require_key, {"WEBRTC_HOST_ADDRESSES": "127.0.0.1"})
            await self._webrtc.start()
            self.webrtc_url = f"{self._webrtc.base_url}/realtime/calls"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._webrtc is not None:
            await self._webrtc.stop()
        self._server.close()
        await self._server.wait_closed()

    def _check_key(self, connection: ServerConnection, request: Any) -> Any:
        if self.require_key and request.headers.get("Authorization") != f"Bearer {self.require_key}":
            from http import HTTPStatus
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid api key\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        self.headers.append(ws.request.headers)  # case-insensitive Headers
        await ws.send(orjson.dumps({"type": "session.created", "event_id": "ev0", "session": {"id": "sess_1", "type": "realtime"}}).decode())
        self._connected.set()
        self._changed.set()
        async for raw in ws:
            event = orjson.loads(raw)
            event["_connection"] = len(self.connections) - 1 if ws is self.connections[-1] else self.connections.index(ws)
            self.received.append(event)
            self._changed.set()

    async def connected(self, timeout: float = 10) -> ServerConnection:
        await asyncio.wait_for(self._connected.wait(), timeout)
        return self.connections[-1]

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"ev{next(self._ids)}")
        await self.connections[-1].send(orjson.dumps(event).decode())

    def of_type(self, kind: str, connection: int | None = None) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind and (connection is None or e["_connection"] == connection)]

    async def drop(self, code: int = 1011, reason: str = "internal error") -> None:
        await self.connections[-1].close(code, reason)

    async def wait_for(self, predicate: Any, timeout: float = 10) -> None:
        await until_changed(self._changed, predicate, timeout)

    # --- conveniences for a GA response with audio ------------------------------------------
    async def response_started(self, response_id: str, item_id: str) -> None:
        await self.send({"type": "response.created", "response": {"id": response_id, "object": "realtime.response", "status": "in_progress", "output": []}})
        await self.send({"type": "response.output_item.added", "response_id": response_id, "output_index": 0,
                         "item": {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}})

    async def audio(self, response_id: str, item_id: str, ms: int, chunk_ms: int = 100, dialect: str = "ga") -> None:
        kind = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
        for start in range(0, ms, chunk_ms):
            samples = 24 * min(chunk_ms, ms - start)
            pcm = (b"\x00\x10" * samples)
            await self.send({"type": kind, "response_id": response_id, "item_id": item_id, "output_index": 0,
                             "content_index": 0, "delta": base64.b64encode(pcm).decode()})

    async def response_done(self, response_id: str, status: str = "completed") -> None:
        await self.send({"type": "response.done", "response": {"id": response_id, "object": "realtime.response", "status": status, "output": []}})


async def until_changed(changed: asyncio.Event, predicate: Any, timeout: float) -> None:
    """Wait until `predicate()` holds, re-checking each time `changed` is set (a model server sets
    it on every connection and event); fail after `timeout`."""
    async def loop() -> None:
        while not predicate():
            changed.clear()
            await changed.wait()
    await asyncio.wait_for(loop(), timeout)


async def eventually(predicate: Any, timeout: float = 5.0, interval: float = 0.005) -> None:
    """Wait until `predicate()` holds, checking as the loop turns; fail after `timeout`. For
    conditions no single event signals (a close finished, N handlers ran)."""
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(interval)
    await asyncio.wait_for(loop(), timeout)
