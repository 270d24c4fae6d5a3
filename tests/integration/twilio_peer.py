"""A raw Twilio-like media-stream peer for server tests: sends exactly the JSON we tell it to,
including broken frames, so tests can check the server's codec handling from the outside."""

from __future__ import annotations

import base64
import itertools
import os
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect


def sid(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


class TwilioPeer:
    def __init__(self, ws: ClientConnection, call_sid: str, stream_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._seq = itertools.count(1)
        self._chunk = itertools.count(1)
        self.timestamp_ms = 0

    @classmethod
    async def open(cls, url: str, headers: dict[str, str] | None = None) -> TwilioPeer:
        ws = await connect(url, additional_headers=headers or {}, open_timeout=5)
        return cls(ws, sid("CA"), sid("MZ"))

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else orjson.dumps(message).decode())

    async def start(self, parameters: dict[str, str]) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send({
            "event": "start", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
            "start": {"accountSid": sid("AC"), "streamSid": self.stream_sid, "callSid": self.call_sid,
                      "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                      "customParameters": {"CallSid": self.call_sid, **parameters}},
        })

    async def media(self, payload: bytes = b"\xff" * 160) -> None:
        await self.send({
            "event": "media", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
            "media": {"track": "inbound", "chunk": str(next(self._chunk)), "timestamp": str(self.timestamp_ms),
                      "payload": base64.b64encode(payload).decode()},
        })
        self.timestamp_ms += len(payload) // 8

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
                         "dtmf": {"track": "inbound_track", "digit": digit}})

    async def mark(self, name: str) -> None:
        await self.send({"event": "mark", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid, "mark": {"name": name}})

    async def stop(self) -> None:
        await self.send({"event": "stop", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
                         "stop": {"accountSid": sid("AC"), "callSid": self.call_sid}})

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int | None, str | None]:
        import asyncio

        async def drain() -> None:
            async for _ in self.ws:
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except Exception:
            pass
        return self.ws.close_code, self.ws.close_reason
