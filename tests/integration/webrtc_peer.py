"""A bare WebRTC client of the local engine for tests: aiortc and httpx, nothing of the bridge's
model connection, so the engine's WebRTC endpoint is checked by an independent peer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from aiortc import MediaStreamTrack, RTCSessionDescription

from telephony_bridge.webrtc.audio_frames import OutgoingAudioTrack, pcm16_from_track
from telephony_bridge.webrtc.peer import new_peer_connection

LOOPBACK = {"WEBRTC_HOST_ADDRESSES": "127.0.0.1"}


class EnginePeer:
    """One WebRTC session with the engine: `events` (server events, in order), `heard` (the agent's
    audio, PCM16 24 kHz), `say(pcm16)` (caller audio at 24 kHz), `send(event)`."""

    def __init__(self) -> None:
        self.pc = new_peer_connection(LOOPBACK)
        self.channel = self.pc.createDataChannel("oai-events")
        self.mic = OutgoingAudioTrack(24000)
        self.pc.addTrack(self.mic)
        self.events: list[dict[str, Any]] = []
        self.heard = bytearray()
        self.response: httpx.Response | None = None
        self._changed = asyncio.Condition()
        self._opened = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.channel.on("open", self._opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str) -> None:
        self.events.append(json.loads(message))
        self._tasks.append(asyncio.ensure_future(self._notify()))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        async for pcm in pcm16_from_track(track, 24000):
            self.heard += pcm
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def connect(self, url: str, *, key: str = "sk-test", **request: Any) -> httpx.Response:
        """POST the offer (`request`: httpx arguments; the offer is `content` unless given) and
        complete the connection with the answer; returns the HTTP response."""
        offer = await self.offer()
        if "content" not in request and "files" not in request and "json" not in request:
            request = {"content": offer, "headers": {"Content-Type": "application/sdp"}, **request}
        headers = {"Authorization": f"Bearer {key}", **request.pop("headers", {})}
        async with httpx.AsyncClient(timeout=10) as http:
            self.response = response = await http.post(url, headers=headers, **request)
        if response.status_code == 201:
            answer = response.json()["transport"]["sdp"] if url.endswith("/live/sessions") else response.text
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(self._opened.wait(), 20)
        return response

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def wait_for(self, predicate: Any, timeout: float = 20) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def types(self) -> list[str]:
        return [event.get("type", "") for event in self.events]

    async def event(self, kind: str, timeout: float = 20) -> dict[str, Any]:
        await self.wait_for(lambda: kind in self.types(), timeout)
        return next(e for e in self.events if e.get("type") == kind)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.mic.stop()
        await self.pc.close()
