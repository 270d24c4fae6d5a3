"""A phone built on any simulator profile (testing/carrier_profile.py), for end-to-end tests.

It asks the bridge's answer endpoint for the call as the carrier does, opens the stream the answer
names, streams the caller's audio in real time, and plays what the bridge sends through a jitter
buffer, keeping exactly what it played: a clear drops what was buffered, and a mark is echoed once
the audio sent before it has played (for profiles whose carrier echoes marks), never for audio a
clear dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from telephony_bridge.testing.carrier_profile import BridgeAudio, BridgeClear, BridgeMark, CarrierProfile

BURST_GAP_MS = 300  # agent audio arriving after a pause this long is a new answer


@dataclass
class Played:
    """One agent message as the phone played it: from `start` for `ms` (cut short by a clear)."""

    arrived: float
    start: float
    ms: float
    received_ms: float


@dataclass
class ProfilePhone:
    profile: CarrierProfile
    base_url: str
    jitter_ms: float = 40.0  # what the phone buffers before it plays
    caller: str = "+15550199"
    number: str = "+15550100"
    played: list[Played] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # bridge messages the profile would not accept
    close_code: int | None = None
    _play_end: float = 0.0
    _generation: int = 0
    _sequence: int = 1

    async def call(self, caller_audio: bytes, duration_s: float, call_id: str | None = None) -> None:
        profile = self.profile
        new_call_id = getattr(profile, "new_call_id", None)
        call_id = call_id or (new_call_id() if new_call_id is not None else os.urandom(16).hex())
        spec = profile.answer_request(call_id, self.caller, self.number)
        async with httpx.AsyncClient(timeout=5) as http:
            if spec.method == "GET":
                answer = await http.get(self.base_url + spec.path, params=dict(spec.form), headers=dict(spec.headers))
            elif spec.json is not None:  # the bytes the profile signed (Vonage's payload_hash)
                answer = await http.post(self.base_url + spec.path, content=orjson.dumps(spec.json),
                                         headers={"Content-Type": "application/json", **spec.headers})
            else:
                answer = await http.post(self.base_url + spec.path, data=dict(spec.form), headers=dict(spec.headers))
        target = profile.read_answer(answer.status_code, answer.headers.get("content-type", ""), answer.text,
                                     self.base_url)
        stream_headers = getattr(profile, "stream_headers", None)
        headers = stream_headers(target) if stream_headers is not None else {}
        async with connect(target.url, additional_headers=headers, compression=None, open_timeout=5,
                           close_timeout=5) as ws:
            for message in profile.start_messages(call_id, "st-" + os.urandom(12).hex(), target):
                await ws.send(message)
            receiver = asyncio.create_task(self._receive(ws))
            await self._stream(ws, caller_audio, duration_s)
            stop = profile.stop_message(self._next())
            if stop is not None:
                await ws.send(stop)
                await asyncio.wait_for(receiver, 10)
            else:
                await ws.close()
                await asyncio.wait_for(receiver, 10)
            self.close_code = ws.close_code

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    async def _stream(self, ws: Any, audio: bytes, duration_s: float) -> None:
        loop = asyncio.get_running_loop()
        frame_ms = self.profile.frame_ms
        frame_bytes = self.profile.audio_format.bytes_per_ms * frame_ms
        start = loop.time()
        frames = int(duration_s * 1000 / frame_ms)
        silence = b"\xff" if self.profile.audio_format.encoding.value == "ulaw" else b"\x00"
        audio = audio.ljust(frames * frame_bytes, silence)
        for index in range(frames):
            await ws.send(self.profile.audio_message(audio[index * frame_bytes:(index + 1) * frame_bytes], self._next(),
                                                     index * frame_ms))
            await asyncio.sleep(max(0.0, start + (index + 1) * frame_ms / 1000 - loop.time()))

    async def _receive(self, ws: Any) -> None:
        loop = asyncio.get_running_loop()
        audio_format = self.profile.audio_format
        async for message in ws:
            now = loop.time() * 1000
            try:
                event = self.profile.parse(message)
            except ValueError as exc:
                self.refused.append(str(exc))
                continue
            if isinstance(event, BridgeAudio):
                length_ms = audio_format.duration_ms(len(event.payload))
                start = max(now + self.jitter_ms, self._play_end)
                self._play_end = start + length_ms
                self.played.append(Played(now, start, length_ms, length_ms))
            elif isinstance(event, BridgeMark) and self.profile.echoes_marks:
                asyncio.get_running_loop().create_task(self._echo(ws, event.name, self._play_end, self._generation))
            elif isinstance(event, BridgeClear):
                self.clears.append(now)
                self._generation += 1  # marks of dropped audio are never echoed
                for frame in self.played:
                    frame.ms = min(frame.ms, max(0.0, now - frame.start))
                self._play_end = now

    async def _echo(self, ws: Any, name: str, at_ms: float, generation: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, at_ms / 1000 - loop.time()))
        if generation == self._generation:
            self.marks_echoed.append(name)
            with contextlib.suppress(Exception):  # the stream closed meanwhile
                await ws.send(self.profile.mark_echo(name, self._next()))

    def answers(self) -> list[list[Played]]:
        bursts: list[list[Played]] = []
        for frame in self.played:
            if not bursts or frame.arrived - bursts[-1][-1].arrived > BURST_GAP_MS:
                bursts.append([])
            bursts[-1].append(frame)
        return bursts
