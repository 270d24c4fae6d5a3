"""A Twilio-like peer that plays the bridge's audio out in real time and echoes marks as Twilio
does (after the audio before them played; all pending ones at once on clear)."""

from __future__ import annotations

import asyncio
import base64

import orjson

from telephony_bridge.testing.playout import SimulatedPlayout
from tests.integration.twilio_peer import TwilioPeer


class PlayoutPeer:
    def __init__(self, peer: TwilioPeer) -> None:
        self.peer = peer
        self.playout = SimulatedPlayout()
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.media_messages = 0
        self.played_at_clear: list[float] = []
        self._wake = asyncio.Event()

    def now_ms(self) -> float:
        return (self.loop.time() - self.t0) * 1000

    def played_ms(self) -> float:
        return self.playout.stats(self.now_ms()).played_ms

    async def run(self) -> None:
        await asyncio.gather(self._receive(), self._echo_marks())

    async def _receive(self) -> None:
        async for raw in self.peer.ws:
            message = orjson.loads(raw)
            kind, now = message["event"], self.now_ms()
            if kind == "media":
                self.media_messages += 1
                self.playout.enqueue_media(base64.b64decode(message["media"]["payload"]), now)
            elif kind == "mark":
                self.playout.enqueue_mark(message["mark"]["name"], now)
            elif kind == "clear":
                self.played_at_clear.append(self.playout.stats(now).played_ms)
                for name in self.playout.clear(now):
                    await self.peer.mark(name)
            self._wake.set()

    async def _echo_marks(self) -> None:
        while True:
            for name in self.playout.advance(self.now_ms()):
                await self.peer.mark(name)
            due = self.playout.next_mark_due_ms()
            self._wake.clear()
            timeout = None if due is None else max(0.0, (due - self.now_ms()) / 1000)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def wait_played(self, ms: float, timeout: float = 10) -> None:
        async def loop() -> None:
            while self.played_ms() < ms:
                await asyncio.sleep(0.005)  # a playout clock, not a synchronisation sleep
        await asyncio.wait_for(loop(), timeout)
