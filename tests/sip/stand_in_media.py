"""A stand-in for the SIP media side (server/sip_media.py), for signalling tests only.

It keeps the media contract (`open`, `configure`, `begin`, `inject_dtmf`, `hang_up_by_peer`,
`on_closed`, `aclose`, a session transport) without any RTP: what the signalling told the media is
recorded for the tests to assert on. The real `RtpStream` replaces it wherever audio matters.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.websockets import WebSocketState

from telephony_bridge.audio.formats import ALAW_8K, ULAW_8K
from telephony_bridge.carriers.base import AudioReceived, CallStarted, DtmfReceived
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.server.asgi import TRANSPORT_ABORT_SCOPE_KEY


class StandInStream:
    def __init__(self, media: StandInMedia, call_id: str, port: int) -> None:
        self.media, self.call_id, self.local_port = media, call_id, port
        self.on_closed: Callable[[], None] | None = None
        self.heard_lead_ms = 40.0
        self.configured: list[dict[str, Any]] = []
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.scope: Mapping[str, Any] = {"type": "sip", TRANSPORT_ABORT_SCOPE_KEY: self.abort}
        self.query_params: Mapping[str, str] = {}
        self._inbox: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        self.closed = False

    def configure(
        self, remote: tuple[str, int], payload_type: int, telephone_event_pt: int | None, direction: str
    ) -> None:
        self.configured.append(
            {"remote": remote, "payload_type": payload_type, "event": telephone_event_pt, "direction": direction}
        )

    def begin(self, start: CallStarted) -> None:
        text = json.dumps(
            {
                "call_id": start.call_id,
                "caller": start.caller,
                "number": start.number,
                "custom": dict(start.custom_parameters),
                "alaw": start.audio_format == ALAW_8K,
            }
        )
        self._inbox.put_nowait({"type": "websocket.receive", "text": text})

    def inject_dtmf(self, digit: str) -> None:
        self._inbox.put_nowait({"type": "websocket.receive", "text": json.dumps({"dtmf": digit})})

    def hang_up_by_peer(self) -> None:
        self.client_state = WebSocketState.DISCONNECTED
        self._inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def receive(self) -> Mapping[str, Any]:
        return await self._inbox.get()

    async def send_text(self, data: str) -> None:
        pass

    async def send_bytes(self, data: bytes) -> None:
        pass

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if self.application_state is WebSocketState.DISCONNECTED:
            return
        self.application_state = WebSocketState.DISCONNECTED
        if self.on_closed is not None:
            self.on_closed()

    def abort(self) -> None:
        self.application_state = self.client_state = WebSocketState.DISCONNECTED

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.media.ports.discard(self.local_port)


class StandInCodec:
    audio_event = AudioReceived

    def __init__(self) -> None:
        self.started = False

    def parse(self, message: str | bytes) -> Any:
        if isinstance(message, bytes):
            return AudioReceived(message)
        data = json.loads(message)
        if "dtmf" in data:
            return DtmfReceived(data["dtmf"])
        if self.started:
            raise CarrierProtocolError("a second start")
        self.started = True
        return CallStarted(
            call_id=data["call_id"],
            stream_id=data["call_id"],
            audio_format=ALAW_8K if data["alaw"] else ULAW_8K,
            custom_parameters=data["custom"],
            caller=data["caller"],
            number=data["number"],
        )

    def audio(self, payload: bytes) -> bytes:
        return payload

    def mark(self, name: str) -> bytes:
        return b""

    def clear(self) -> bytes:
        return b""


class StandInMedia:
    def __init__(self, first: int = 20000, count: int = 1000) -> None:
        self.first, self.count = first, count
        self.ports: set[int] = set()
        self.streams: dict[str, StandInStream] = {}

    def open(self, call_id: str) -> StandInStream | None:
        for port in range(self.first, self.first + 2 * self.count, 2):
            if port not in self.ports:
                self.ports.add(port)
                stream = StandInStream(self, call_id, port)
                self.streams[call_id] = stream
                return stream
        return None

    def new_codec(self) -> StandInCodec:
        return StandInCodec()
