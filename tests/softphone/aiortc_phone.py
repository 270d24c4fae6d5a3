"""A softphone page stand-in made of aiortc: the same signalling and data channel messages as
server/softphone_static/softphone.js, without a browser (cheaper, for the per-protocol checks)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import numpy as np
import orjson
from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from telephony_bridge.webrtc.audio_frames import IncomingAudio, OutgoingAudioTrack
from telephony_bridge.webrtc.peer import new_peer_connection

LOOPBACK = {"WEBRTC_HOST_ADDRESSES": "127.0.0.1"}
RATE = 24000
SILENCE = 30  # |sample| at or under this is the agent's silence (Opus leaves a little noise)


class AiortcPhone:
    """One call: `microphone.write(pcm16 24 kHz)` speaks, `heard_ms` is the agent audio received."""

    def __init__(self, base_url: str, token: str | None = None, codec: str | None = None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.pc = new_peer_connection(LOOPBACK)
        self.microphone = OutgoingAudioTrack(RATE)
        # The track before the data channel, as a browser's page does: an aiortc offerer with
        # max-bundle that makes its data channel first never connects (aiortc 1.16).
        transceiver = self.pc.addTransceiver(self.microphone, direction="sendrecv")
        if codec is not None:  # offer this codec only (a peer without Opus: "audio/PCMU")
            codecs = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType == codec])
        self.channel = self.pc.createDataChannel("softphone")
        self.messages: list[dict[str, Any]] = []
        self.hung_up = asyncio.Event()
        self.audible = asyncio.Event()
        self.heard_ms = 0.0
        self.call_id = ""
        self._reader: asyncio.Task[Any] | None = None
        self.pc.on("track", self._track)
        self.channel.on("message", self._message)

    def _message(self, message: Any) -> None:
        if isinstance(message, str):
            value = orjson.loads(message)
            self.messages.append(value)
            if value.get("type") == "hangup":
                self.hung_up.set()

    def _track(self, track: Any) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: Any) -> None:
        incoming = IncomingAudio(RATE)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, AudioFrame):
                    samples = np.frombuffer(incoming.pcm16(frame), dtype="<i2")
                    if samples.size and int(np.abs(samples).max()) > SILENCE:
                        self.heard_ms += samples.size * 1000 / RATE
                        self.audible.set()

    async def call(self, number: str = "", scenario: str = "", **extra: Any) -> httpx.Response:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"type": "offer", "sdp": self.pc.localDescription.sdp, "number": number, "scenario": scenario, **extra}
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.post(f"{self.base_url}/softphone/offer", json=body, headers=self.headers)
        if response.status_code == 200:
            answer = response.json()
            self.call_id = answer["call_id"]
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        return response

    async def connected(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.pc.connectionState != "connected" or self.channel.readyState != "open":
                await asyncio.sleep(0.02)

    def send(self, message: dict[str, Any]) -> None:
        self.channel.send(orjson.dumps(message).decode())

    async def close(self) -> None:
        self.microphone.stop()
        if self._reader is not None:
            self._reader.cancel()
        await self.pc.close()
