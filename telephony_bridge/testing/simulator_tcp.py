"""The simulator's TCP stream: what a carrier that streams over raw TCP (Asterisk AudioSocket)
looks like to `SimulatedCall`, which otherwise talks over a WebSocket client connection.

It has the few members the simulator uses of `websockets`' connection — `send`, iteration over
messages, `close`, `close_code` and `close_reason` — with AudioSocket's framing: each message is
one whole frame (carriers/audiosocket.FrameReader). A write after the bridge has gone is dropped,
as on a dead line; the stream's end is seen by the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from telephony_bridge.carriers.audiosocket import KIND_HANGUP, FrameReader

__all__ = ["TcpFrameStream"]


class TcpFrameStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._frames = FrameReader()
        self.close_code: int | None = None  # 1000 when the bridge hung up with a frame, 1006 without
        self.close_reason: str | None = None
        self._hung_up = False

    @classmethod
    async def open(cls, url: str, timeout_s: float) -> TcpFrameStream:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"not a tcp://HOST:PORT address: {url!r}")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout_s)
        return cls(reader, writer)

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            raise TypeError("a TCP frame stream carries bytes")
        if self._writer.is_closing():
            return
        with contextlib.suppress(OSError):
            self._writer.write(message)
            await self._writer.drain()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                data = await self._reader.read(4096)
            except OSError:
                data = b""
            if not data:
                if self.close_code is None:
                    self.close_code = 1000 if self._hung_up else 1006
                    self.close_reason = (
                        "hang-up frame" if self._hung_up else "connection closed without a hang-up frame"
                    )
                return
            for message in self._frames.feed(data):
                self._hung_up = self._hung_up or message[0] == KIND_HANGUP
                yield message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason or "closed by the caller"
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
