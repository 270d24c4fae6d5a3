"""One softphone call's aiortc peer connection as the session's `MediaTransport`.

Like the AudioSocket listener's TCP adapter (server/audiosocket.py), this hands the ordinary
`CallSession` one message per `receive()`, so the session drives the call unchanged:

- first, the transport's own start (carriers/webrtc.py `start_message`: the call the signalling
  exchange admitted and its single-use token), once the peer connection is up;
- then caller audio as bytes: each frame aiortc decodes from the browser's track (Opus 48 kHz or
  PCMU 8 kHz), resampled once, with its state carried for the call, to the stream's L16 24 kHz;
- and the page's data channel messages as text (DTMF, hang-up). Its playout reports stop here:
  they are compared with what the transport sent (`sent_ms`, `page_played_ms`, `lag_ms`).

Sends go the other way: bytes are the Playout's paced 20 ms frames of L16 24 kHz, queued for the
outgoing track (webrtc/audio_frames.py, silence while the agent is quiet), which aiortc encodes for
the wire; text goes to the page over the data channel. `close` tells the page why (a `hangup`
message) and closes the peer connection.

Caller frames are read only as fast as the session takes them (a bounded queue between aiortc's
receiver and `receive()`), so a slow call loses frames in aiortc's jitter buffer, not memory here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from starlette.websockets import WebSocketState

from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.webrtc import MAX_CONTROL_CHARS, STREAM_FORMAT, hangup_message, read_playout_report
from telephony_bridge.server.asgi import TRANSPORT_ABORT_SCOPE_KEY
from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.softphone_track import TalkTrack
from telephony_bridge.webrtc.audio_frames import IncomingAudio

__all__ = ["SoftphoneTransport"]

log = logging.getLogger("telephony_bridge.softphone")

INBOX_MESSAGES: Final = 25  # half a second of caller frames (and control messages) between aiortc and the session
_DISCONNECTED: Final = {"type": "websocket.disconnect", "code": 1006}
_HANGUP: Final = {"type": "websocket.disconnect", "code": 1000}


class SoftphoneTransport:
    """The session's `MediaTransport` (server/media_transport.py) over one peer connection."""

    def __init__(
        self, pc: RTCPeerConnection, start: str, outgoing: TalkTrack, label: str, metrics: BridgeMetrics | None = None
    ) -> None:
        self._metrics = metrics or BridgeMetrics()
        self._pc = pc
        self._start: str | None = start
        self._outgoing = outgoing
        self.label = label  # the call id, for logs
        self._inbox: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(INBOX_MESSAGES)
        self._connected = asyncio.Event()
        self._gone: Mapping[str, Any] | None = None
        self._channel: RTCDataChannel | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.scope: Mapping[str, Any] = {"type": "webrtc", TRANSPORT_ABORT_SCOPE_KEY: self.abort}
        self.query_params: Mapping[str, str] = {}
        self.control_dropped = 0  # data channel messages dropped here (too long, bad reports, a flood)
        self.bad_reports = 0  # playout reports among them
        self.page_played_ms = 0.0  # what the page last said it played of the agent's audio
        self.page_delay_ms = 0.0  # the browser's jitter buffer delay, as it last said
        self.lag_ms = 0.0  # sent less played at the page's last report: the playout lead, measured
        pc.on("track", self._track)
        pc.on("datachannel", self._datachannel)
        pc.on("connectionstatechange", self._state_changed)

    @property
    def sent_ms(self) -> float:
        return self._outgoing.sent_ms

    @property
    def stretches(self) -> int:
        """Stretches of the agent's speech sent so far (each framed by silence the page counts too)."""
        return self._outgoing.stretches

    # --- peer connection events ---------------------------------------------------------------
    def _track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_audio(track))

    def _datachannel(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            return  # the page opens one; any other is ignored
        self._channel = channel
        channel.on("message", self._control)
        # A closed tab takes its data channel with it (SCTP): a hang-up, well before ICE's consent
        # checks would notice the peer is gone.
        channel.on("close", lambda: self._went(_HANGUP))

    def _state_changed(self) -> None:
        state = self._pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._went(_DISCONNECTED if state == "failed" else _HANGUP)

    def _went(self, message: Mapping[str, Any]) -> None:
        if self._gone is None:
            self._gone = message
            self.client_state = WebSocketState.DISCONNECTED
            self._connected.set()
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(message)  # wakes a waiting receive(); otherwise it sees _gone

    def _control(self, message: str | bytes) -> None:
        if not isinstance(message, str) or len(message) > MAX_CONTROL_CHARS:
            self._refused(
                f"a data channel message of {len(message)} {'characters' if isinstance(message, str) else 'bytes'}"
            )
            return
        try:
            report = read_playout_report(message)
        except CarrierProtocolError as exc:
            self.bad_reports += 1
            self._refused(exc.reason)
            return
        if report is not None:
            self.page_played_ms, self.page_delay_ms = report.played_ms, report.delay_ms
            self.lag_ms = max(0.0, self.sent_ms - report.played_ms)
            return
        try:
            self._inbox.put_nowait({"type": "websocket.receive", "text": message})
        except asyncio.QueueFull:  # the session is behind by half a second: a flood, not a caller
            self._refused("a data channel message while half a second of messages waits")

    def _refused(self, reason: str) -> None:
        """A data channel message the transport drops: logged (a few) and counted, the call goes on."""
        self.control_dropped += 1
        self._metrics.frames_rejected += 1
        if self.control_dropped <= 10 or self.control_dropped % 100 == 0:
            log.warning("call %s: data channel message #%d dropped: %s", self.label, self.control_dropped, reason)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        incoming = IncomingAudio(STREAM_FORMAT.rate)
        inbox = self._inbox
        try:
            while self._gone is None:
                frame = await track.recv()
                if not isinstance(frame, AudioFrame):
                    continue
                pcm16 = incoming.pcm16(frame)
                if pcm16:
                    await inbox.put({"type": "websocket.receive", "bytes": pcm16})
        except MediaStreamError:
            pass  # the track ended: the connection's state says why

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"softphone {self.label}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- MediaTransport -----------------------------------------------------------------------
    async def receive(self) -> Mapping[str, Any]:
        if self._start is not None:
            await self._connected.wait()
            if self._gone is not None:
                return self._gone
            start, self._start = self._start, None
            return {"type": "websocket.receive", "text": start}
        if self._gone is not None and self._inbox.empty():
            return self._gone
        return await self._inbox.get()

    async def send_bytes(self, data: bytes) -> None:
        if self.application_state is WebSocketState.DISCONNECTED or self._gone is not None:
            raise RuntimeError("the softphone's peer connection is closed")
        if data:
            self._outgoing.write(data)

    async def send_text(self, data: str) -> None:
        channel = self._channel
        if self.application_state is WebSocketState.DISCONNECTED or self._gone is not None:
            raise RuntimeError("the softphone's peer connection is closed")
        if channel is not None and channel.readyState == "open":
            channel.send(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Tell the page why over the data channel, then close the peer connection."""
        if self.application_state is WebSocketState.DISCONNECTED:
            return
        self.application_state = WebSocketState.DISCONNECTED
        channel = self._channel
        if channel is not None and channel.readyState == "open" and self._gone is None:
            # SCTP sends from its own task: give it a moment to get the message out before the close.
            drained = asyncio.Event()
            channel.on("bufferedamountlow", drained.set)
            channel.send(hangup_message(reason or ""))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await drained.wait()
        await self.aclose()

    async def aclose(self) -> None:
        """Close the peer connection and stop everything of this call (idempotent)."""
        self.application_state = WebSocketState.DISCONNECTED
        self._outgoing.stop()
        for task in list(self._tasks):
            task.cancel()
        await self._pc.close()
        self._went(_HANGUP)

    def abort(self) -> None:
        """The session gave up on a peer that stopped reading: close without waiting."""
        self.application_state = self.client_state = WebSocketState.DISCONNECTED
        self._spawn(self._pc.close())
