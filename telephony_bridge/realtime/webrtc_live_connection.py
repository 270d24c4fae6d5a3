"""WebRTCLiveConnection: a GPT-Live session over WebRTC, under the LiveConnection machinery.

GPT-Live's WebRTC transport (shared/reference/gpt-live.md) differs from its WebSocket one in
signalling only: `POST /v1/live/sessions` with `{"session": <the start config>, "transport":
{"type": "webrtc", "sdp": <offer>}}` answers `201 {"session": {"id"}, "transport": {"sdp"}}`,
and there is no `session.start` on the data channel: the config travels in the POST. So the peer
connection opens when the scenario starts the session (`start`), not at `connect`; events queued
before that wait in the outbox as they would for a WebSocket still opening. A reconnect posts the
same config seeded with the transcript so far (LiveConnection's reseed, put in the POST).

Audio: caller audio goes on the outgoing track (WebRTCUplink: one conversion); the track flows in
real time by itself, silence included, which is what Live's input timeline wants, so the Live
uplink's silence keeper is not run. Model audio: Live output is continuous with no ids, so every
frame of the incoming track is output, told to the consumer as `session.output_audio.delta` is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import orjson
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from websockets.asyncio.client import ClientConnection

from telephony_bridge.audio.formats import L16_8K, L16_24K, AudioFormat
from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.realtime import live_wire
from telephony_bridge.realtime.connection import ModelConnection, RealtimeConnectionError
from telephony_bridge.realtime.live_connection import LiveConnection
from telephony_bridge.realtime.webrtc_connection import DataChannelLink, WebRTCUplink, open_link, post_to_provider
from telephony_bridge.webrtc.audio_frames import IncomingAudio

__all__ = ["WebRTCLiveConnection", "WebRTCLiveUplink"]

log = logging.getLogger("telephony_bridge.realtime")


class WebRTCLiveUplink(WebRTCUplink):
    """The WebRTC uplink with the Live uplink's face (what LiveConnection and the Live client ask of
    it). The track paces the input by itself: nothing is filled or trimmed here."""

    __slots__ = ("filled_ms", "sent_ms", "trimmed_ms")

    def __init__(self, codec: str, stats: Any, label: str) -> None:
        super().__init__(codec, stats, label)
        self.sent_ms = 0.0
        self.filled_ms = 0.0
        self.trimmed_ms = 0.0

    def set_model_codec(self, codec: str, input_format: AudioFormat) -> None:
        """The session's format, set before the session starts (so before the track exists)."""
        self.model_format = L16_24K if codec == "pcm16" else L16_8K
        self.set_input_format(input_format)

    def session_started(self, at: float) -> None:
        self.sent_ms = 0.0

    async def accept_caller_audio(self, frame: bytes) -> None:
        if self.ws is not None:
            self.sent_ms += len(frame) / self._bytes_per_ms
        await super().accept_caller_audio(frame)


class WebRTCLiveConnection(LiveConnection):
    """A GPT-Live session over WebRTC (see the module docstring); `url` is the sessions endpoint."""

    def __init__(self, *, webrtc_config: Mapping[str, str] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.webrtc_config: Mapping[str, str] = dict(webrtc_config or {})
        self.uplink = WebRTCLiveUplink(self.codec, self.stats, self.tasks.label)  # type: ignore[assignment]
        self._connect_timeout_s = 10.0
        self._opened_once = False

    @property
    def _track_rate(self) -> int:
        return 24000 if self.codec == "pcm16" else 8000

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Nothing to open yet: the offer goes with the session's config (`start`)."""
        self._connect_timeout_s = timeout_s

    def start(self, config: dict[str, Any], event_id: str | None = None) -> None:
        self.start_config = config
        self.tasks.spawn(self._open_session(), name=f"live webrtc open {self.name}")

    async def _open_session(self) -> None:
        try:
            # ModelConnection's connect, past LiveConnection's: its silence keeper is not wanted on
            # a track that flows by itself.
            await ModelConnection.connect(self, self._connect_timeout_s)
        except RealtimeConnectionError as exc:
            log.error("%s: %s", self.tasks.label, exc)
            if not self._closed:
                self._closed = True
                self._events.on_closing()
                self._report_close(1006, str(exc), False)

    async def _open(self, timeout_s: float) -> ClientConnection:
        return await open_link(self, self._track_rate, self._post_offer, timeout_s)

    async def _post_offer(self, offer: str, timeout_s: float) -> str:
        config = dict(self.start_config or {})
        if self._opened_once:  # a reconnect: the new session is seeded with the conversation so far
            seeded = live_wire.seed_input(self.transcript)
            config["input"] = (list(config.get("input") or []) + seeded)[-live_wire.MAX_INPUT_MESSAGES :]
            self.output_ms = 0.0
        body = {"session": config, "transport": {"type": "webrtc", "sdp": offer}}
        response = await post_to_provider(
            self, timeout_s, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        try:
            answer = orjson.loads(response.content)
            sdp = answer["transport"]["sdp"]
            self.session_id = answer["session"]["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise RealtimeConnectionError(f"model endpoint {self.safe_url()} answered without an SDP answer") from None
        if not isinstance(sdp, str):
            raise RealtimeConnectionError(f"model endpoint {self.safe_url()} answered without an SDP answer")
        self._opened_once = True
        return sdp

    async def _replay(self, ws: ClientConnection, resume: bool) -> int:
        # The seeded config went with the offer (_post_offer); nothing to send on the channel.
        return min(len(live_wire.seed_input(self.transcript)), live_wire.MAX_INPUT_MESSAGES)

    def _ready(self, ws: ClientConnection) -> None:
        super()._ready(ws)
        link = cast(DataChannelLink, ws)
        uplink = cast(WebRTCLiveUplink, self.uplink)
        uplink.track = link.outgoing
        self._own_tasks.append(self.tasks.spawn(self._receive_audio(link), name=f"live audio {self.name}"))

    def _down(self) -> None:
        super()._down()
        cast(WebRTCLiveUplink, self.uplink).track = None

    async def _receive_audio(self, link: DataChannelLink) -> None:
        track = await link.remote_track
        incoming = IncomingAudio(self._track_rate)
        to_model = ulaw_encode if self.codec == "g711_ulaw" else None
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, AudioFrame):
                continue
            audio = incoming.pcm16(frame)
            if to_model is not None:
                audio = to_model(audio)
            if not audio:
                continue
            duration_ms = self._account_audio("", audio)
            self.output_ms += duration_ms
            await self._events.on_audio_delta("", "", 0, audio, duration_ms, {"type": live_wire.OUTPUT_AUDIO_DELTA})
