"""WebRTCModelConnection: the Realtime model session over WebRTC instead of a WebSocket.

A transport under the same machinery: everything ModelConnection does with a session (the
reader and writer, reconnect with backoff and replay, the answer watchdog, recycling, the error
policy, session-update tracking, the conversation mirror, the typed events told to the consumer)
is inherited unchanged. What differs is only how bytes move:

- **signalling**: an SDP offer POSTed to the provider's calls endpoint (`/v1/realtime/calls`,
  `Authorization: Bearer`, `Content-Type: application/sdp`, the model in `?model=`); the answer
  comes back in the body (201). A reconnect is a new offer.
- **events**: JSON on the `oai-events` data channel, through `DataChannelLink`, which offers the
  part of a websockets connection ModelConnection uses (send, close, iterate, state, transport
  abort), so the inherited reader, writer and replay run on it as they are.
- **caller audio**: the uplink converts each frame once to PCM16 at the model codec's rate (the
  same plan as on a WebSocket) and writes it to the outgoing track; aiortc's Opus encoder takes it
  to 48 kHz. No base64, no JSON.
- **model audio**: the incoming Opus track, decoded and resampled once (48 kHz -> the model codec's
  format, webrtc/audio_frames.py), goes to the consumer as audio deltas would. A track carries no
  item ids and never stops (silence between answers), so the data channel frames it: OpenAI sends
  `output_audio_buffer.started` (with the response id) when a response's audio starts on the
  track and `output_audio_buffer.stopped` / `.cleared` when it ends. Audio in between belongs to
  that response's message item; audio outside is silence and dropped. A response's
  `response.output_audio.done` and `response.done` arrive on the channel before its audio has
  finished on the track, so they are held back until the track has delivered it (`stopped`), to
  keep the order the consumer's playout ledger relies on (all audio, then done).
- **barge-in**: the consumer's barge-in is the WebSocket one (clear the playout, truncate at what
  the caller heard, cancel). A cancelled answer also gets `output_audio_buffer.clear`, so the
  server stops its audio on the track at once (WebRTC only), and the frames still in flight are
  dropped here.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.protocol import State

from telephony_bridge.audio.formats import L16_8K, L16_24K, ULAW_8K
from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.realtime.connection import ModelConnection, RealtimeConnectionError
from telephony_bridge.realtime.events import RealtimeAPIEvents, event_for_wire_type
from telephony_bridge.realtime.stats import ClientStatistics
from telephony_bridge.realtime.uplink import Uplink
from telephony_bridge.webrtc.audio_frames import IncomingAudio, OutgoingAudioTrack
from telephony_bridge.webrtc.peer import PeerConnection, new_peer_connection, selected_addresses

__all__ = [
    "DataChannelLink",
    "WebRTCModelConnection",
    "WebRTCUplink",
    "calls_url_for",
    "open_link",
    "post_to_provider",
]

log = logging.getLogger("telephony_bridge.realtime")

EVENTS_CHANNEL = "oai-events"
# Caller audio queued on the outgoing track beyond this (the sender paces 20 ms a frame, so only a
# stalled peer connection lets it grow) is dropped, as the WebSocket uplink drops a backed-up socket's.
MAX_TRACK_LAG_MS = 500.0
# After "stopped", an answer's last frames may still be in flight (loopback: a frame or two; a
# network: the jitter buffer's depth). They are taken until the track's first silent frame, up to
# this many frames (200 ms), then the answer's end is told.
DRAIN_FRAMES = 10
SILENCE_MAX = 4  # |sample| at most this (of 32767) is the silence a sender pads with
_HELD_UNTIL_AUDIO_ENDS = frozenset({RealtimeAPIEvents.ResponseAudioDone, RealtimeAPIEvents.ResponseDone})


def calls_url_for(realtime_url: str) -> str:
    """The WebRTC calls endpoint beside a Realtime WebSocket URL (wss://h/v1/realtime?model=m ->
    https://h/v1/realtime/calls?model=m)."""
    scheme, sep, rest = realtime_url.partition("://")
    http_scheme = {"wss": "https", "ws": "http"}.get(scheme, scheme)
    path, qsep, query = rest.partition("?")
    path = path.rstrip("/")
    if not path.endswith("/calls"):
        path += "/calls"
    return f"{http_scheme}{sep}{path}{qsep}{query}"


class _LinkTransport:
    """The transport face of a DataChannelLink: what ModelConnection asks of a socket's transport."""

    __slots__ = ("_link",)

    def __init__(self, link: DataChannelLink) -> None:
        self._link = link

    def abort(self) -> None:
        self._link.abort()

    def is_closing(self) -> bool:
        return self._link.state is not State.OPEN

    def get_write_buffer_size(self) -> int:
        return self._link.channel.bufferedAmount


class DataChannelLink:
    """One peer connection's data channel, as the socket ModelConnection reads and writes."""

    def __init__(self, pc: PeerConnection, channel: RTCDataChannel, outgoing: OutgoingAudioTrack) -> None:
        self.pc = pc
        self.channel = channel
        self.outgoing = outgoing
        self.state = State.CONNECTING
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.transport = _LinkTransport(self)
        self.remote_track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._failed = False
        self._selected: tuple[tuple[str, int], tuple[str, int]] | None = None
        self._closing: asyncio.Task[None] | None = None
        channel.on("open", self._opened)
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._end(failed=self.state is State.OPEN))
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    def _opened(self) -> None:
        if self.state is State.CONNECTING:
            self.state = State.OPEN

    def _on_message(self, message: str | bytes) -> None:
        self._inbox.put_nowait(message if isinstance(message, str) else message.decode("utf-8", "replace"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and not self.remote_track.done():
            self.remote_track.set_result(track)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._end(failed=self.state is State.OPEN)

    def _end(self, *, failed: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._failed = failed
        self._inbox.put_nowait(None)

    def _addresses(self) -> tuple[tuple[str, int], tuple[str, int]] | None:
        # Kept from the open: a closed peer connection forgets its candidate pair, and the
        # addresses are asked for after the close too (the call-flow kit matches them).
        if self._selected is None:
            self._selected = selected_addresses(self.pc)
        return self._selected

    @property
    def local_address(self) -> tuple[str, int] | None:
        addresses = self._addresses()
        return addresses[0] if addresses else None

    @property
    def remote_address(self) -> tuple[str, int] | None:
        addresses = self._addresses()
        return addresses[1] if addresses else None

    async def send(self, message: str | bytes, text: bool | None = None) -> None:
        if self.state is not State.OPEN or self.channel.readyState != "open":
            raise ConnectionClosedError(None, None)
        self.channel.send(message.decode() if isinstance(message, bytes) else message)

    async def recv(self, decode: bool | None = None) -> str | bytes:
        """The next event, as websockets' `recv` gives it (bytes with `decode=False`); a close is
        ConnectionClosedOK (asked for) or ConnectionClosedError (dropped), as there."""
        message = await self._inbox.get()
        if message is None:
            self._inbox.put_nowait(None)  # every later recv ends too
            if self._failed:
                raise ConnectionClosedError(None, None)
            raise ConnectionClosedOK(None, None)
        return message.encode() if decode is False else message

    def __aiter__(self) -> AsyncIterator[str]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str]:
        while True:
            message = await self._inbox.get()
            if message is None:
                if self._failed:
                    raise ConnectionClosedError(None, None)  # read as a drop: the reader reconnects
                return
            yield message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._end(failed=False)
        self.outgoing.stop()
        await asyncio.shield(self.pc.close())  # a close cancelled half-way wedges every later one

    def abort(self) -> None:
        """Drop the connection now (a stalled model): the reader sees a drop and reconnects."""
        self._end(failed=True)
        self.outgoing.stop()
        if self._closing is None:  # kept: a task nobody references may be collected mid-close
            self._closing = asyncio.get_running_loop().create_task(self.pc.close())


class WebRTCUplink(Uplink):
    """Caller audio to the outgoing track: the Uplink's conversion, then the track instead of JSON.
    `ws` is set while the model takes audio (the base class's flag); `track` is the current one."""

    __slots__ = ("track",)

    def __init__(self, codec: str, stats: ClientStatistics, label: str) -> None:
        super().__init__(codec, stats, label)
        self.track: OutgoingAudioTrack | None = None
        # PCM16 at the codec's rate on the track (the Opus encoder resamples once, to 48 kHz): a
        # μ-law carrier with a g711_ulaw session is a G.711 decode only.
        self.model_format = L16_24K if codec == "pcm16" else L16_8K
        self.set_input_format(ULAW_8K)

    async def accept_caller_audio(self, frame: bytes) -> None:
        track = self.track
        if self.ws is None or track is None or track.readyState != "live" or track.buffered_ms > MAX_TRACK_LAG_MS:
            # Nowhere to go, or the sender has stopped taking frames (a stalled peer connection):
            # dropped and counted, never queued without bound.
            self.stats.caller_audio_dropped_ms += len(frame) / self._bytes_per_ms
            return
        self.stats.caller_frames += 1
        track.write(self._convert(frame))


class WebRTCModelConnection(ModelConnection):
    """A Realtime session over WebRTC (see the module docstring); `url` is the calls endpoint."""

    def __init__(self, *, webrtc_config: Mapping[str, str] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.webrtc_config: Mapping[str, str] = dict(webrtc_config or {})
        self.uplink: WebRTCUplink = WebRTCUplink(self.codec, self.stats, self.tasks.label)
        self._track_rate = 24000 if self.codec == "pcm16" else 8000
        self._audio_items: dict[str, str] = {}  # response id -> its message item (whose audio the track carries)
        self._speaking: str | None = None  # the response whose audio is on the track now
        # The response whose "stopped" came while its last frames are still in flight (network,
        # jitter buffer): its audio is taken up to the track's first silent frame, at most
        # DRAIN_FRAMES frames, and only then is its end (the held events) told.
        self._draining: str | None = None
        self._drain_left = 0
        self._cut: set[str] = set()  # responses cancelled here: their frames still in flight are dropped
        self._held: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    # --- transport -------------------------------------------------------------------------
    async def _open(self, timeout_s: float) -> ClientConnection:
        return await open_link(self, self._track_rate, self._post_offer, timeout_s)

    async def _post_offer(self, offer: str, timeout_s: float) -> str:
        headers = {"Content-Type": "application/sdp", "Accept": "application/sdp"}
        response = await post_to_provider(self, timeout_s, content=offer, headers=headers)
        return response.text

    def _ready(self, ws: ClientConnection) -> None:
        super()._ready(ws)
        link = cast(DataChannelLink, ws)
        self.uplink.track = link.outgoing
        self._speaking = None
        self._own_tasks.append(self.tasks.spawn(self._receive_audio(link), name=f"model audio {self.name}"))

    def _down(self) -> None:
        super()._down()
        self.uplink.track = None
        for response_id in list(self._held):
            self._held.pop(response_id)  # the replay's session never finishes the old answers' audio
        self._speaking = self._draining = None

    # --- model audio from the track ----------------------------------------------------------
    async def _receive_audio(self, link: DataChannelLink) -> None:
        track = await link.remote_track
        incoming = IncomingAudio(self._track_rate)
        to_model = ulaw_encode if self.codec == "g711_ulaw" else None
        delta_type = self.audio_delta_type
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, AudioFrame):
                continue
            response_id = self._speaking or self._draining
            if response_id is None or response_id in self._cut:
                incoming.pcm16(frame)  # keep the resampler's stream whole; the frame is silence
                continue
            audio = incoming.pcm16(frame)
            if response_id == self._draining:
                self._drain_left -= 1
                if self._drain_left < 0 or _silent(audio):
                    await self._finish_draining()
                    continue
            if to_model is not None:
                audio = to_model(audio)
            if not audio:
                continue
            item_id = self._audio_items.get(response_id, "")
            # Audio on the track is the model being heard (the data channel may be quiet for a
            # whole answer): the answer watchdog must not take it for a stall.
            self._answer_stall.last_heard_at = loop.time()
            duration_ms = self._account_audio(item_id, audio)
            # The delta event a WebSocket would have carried, for listeners of ResponseAudioDelta.
            event = {
                "type": delta_type,
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": binascii.b2a_base64(audio, newline=False).decode(),
            }
            await self._events.on_audio_delta(response_id, item_id, 0, audio, duration_ms, event)

    # --- server events -----------------------------------------------------------------------
    async def _dispatch_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        member = event_for_wire_type(kind, self.dialect) if isinstance(kind, str) else RealtimeAPIEvents.Unknown
        if member is RealtimeAPIEvents.ResponseOutputItemAdded:
            item = event.get("item") or {}
            if item.get("type") == "message" and isinstance(event.get("response_id"), str):
                self._audio_items[event["response_id"]] = item.get("id", "")
        elif member is RealtimeAPIEvents.OutputAudioBufferStarted:
            response_id = event.get("response_id")
            await self._finish_draining()  # the next answer's audio is on the track now
            previous, self._speaking = self._speaking, response_id if isinstance(response_id, str) else None
            if previous is not None and previous != self._speaking:
                # A server that never said "stopped" for the previous answer: its track audio is
                # over all the same, so what was held for it goes on now.
                for held in self._held.pop(previous, []):
                    await self._forward(held)
        elif member is RealtimeAPIEvents.OutputAudioBufferStopped:
            ended = event.get("response_id") if isinstance(event.get("response_id"), str) else self._speaking
            self._speaking = None
            await super()._dispatch_event(event)
            if ended is not None:
                await self._finish_draining()
                self._draining, self._drain_left = ended, DRAIN_FRAMES  # its tail is still in flight
            return
        elif member is RealtimeAPIEvents.OutputAudioBufferCleared:
            ended = event.get("response_id") if isinstance(event.get("response_id"), str) else self._speaking
            self._speaking = None
            await super()._dispatch_event(event)
            await self._finish_draining()
            for held in self._held.pop(ended or "", []):  # cut: nothing more of it is coming
                await self._forward(held)
            return
        response_id = _response_id_of(event)
        on_the_track = (self._speaking, self._draining)
        if member in _HELD_UNTIL_AUDIO_ENDS and response_id is not None and response_id in on_the_track:
            self._held[response_id].append(event)  # its audio is still coming on the track
            return
        await self._forward(event)

    async def _finish_draining(self) -> None:
        """The draining answer's audio is all in: tell its end (the events held for it)."""
        response_id, self._draining = self._draining, None
        if response_id is not None:
            for held in self._held.pop(response_id, []):
                await self._forward(held)

    async def _forward(self, event: dict[str, Any]) -> None:
        if event.get("type") == "response.done":
            response_id = _response_id_of(event)
            self._audio_items.pop(response_id or "", None)
            self._cut.discard(response_id or "")
        await super()._dispatch_event(event)

    def response_cancelled(self, response_id: str | None = None) -> None:
        super().response_cancelled(response_id)
        speaking = self._speaking
        if speaking is not None and response_id in (None, speaking):
            self._cut.add(speaking)  # what is still in flight on the track is not played
            # After the response.cancel the caller queues right after this call (OpenAI: clear
            # follows a cancel).
            asyncio.get_running_loop().call_soon(self.send, {"type": "output_audio_buffer.clear"})


async def open_link(
    connection: ModelConnection,
    track_rate: int,
    post_offer: Callable[[str, float], Awaitable[str]],
    timeout_s: float,
) -> ClientConnection:
    """A new peer connection for `connection`: an outgoing audio track at `track_rate`, the events
    channel, the offer through `post_offer` (which returns the answer), up to the channel's open.
    Failures are RealtimeConnectionError, without the API key."""
    pc = new_peer_connection(getattr(connection, "webrtc_config", {}))
    outgoing = OutgoingAudioTrack(track_rate)
    pc.addTrack(outgoing)
    channel = pc.createDataChannel(EVENTS_CHANNEL)
    link = DataChannelLink(pc, channel, outgoing)
    try:
        async with asyncio.timeout(timeout_s):
            await pc.setLocalDescription(await pc.createOffer())
            answer = await post_offer(pc.localDescription.sdp, timeout_s)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            opened = asyncio.Event()
            channel.on("open", opened.set)
            if channel.readyState != "open":
                await opened.wait()
            link.state = State.OPEN
            link.local_address  # noqa: B018 (remember the candidate pair while it is there)
    except BaseException as exc:
        await asyncio.shield(pc.close())
        if isinstance(exc, RealtimeConnectionError):
            raise
        if isinstance(exc, TimeoutError | OSError | ValueError):
            raise RealtimeConnectionError(
                f"cannot connect to model endpoint {connection.safe_url()} over WebRTC: "
                f"{connection.redact(str(exc)) or type(exc).__name__}"
            ) from None
        raise
    # DataChannelLink offers the part of ClientConnection that ModelConnection uses; the uplink
    # never writes to it (caller audio goes to the track).
    return cast(ClientConnection, link)


async def post_to_provider(connection: ModelConnection, timeout_s: float, **request: Any) -> httpx.Response:
    """POST an offer to `connection.url` with its API key; a refusal is a RealtimeConnectionError
    naming the status (never the key)."""
    headers = dict(request.pop("headers", {}))
    if connection.api_key:
        headers["Authorization"] = f"Bearer {connection.api_key}"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            response = await http.post(connection.url, headers=headers, **request)
    except httpx.HTTPError as exc:
        raise RealtimeConnectionError(
            f"cannot connect to model endpoint {connection.safe_url()}: {type(exc).__name__}"
        ) from None
    if response.status_code not in (200, 201):
        hint = " (authentication failed: check the API key)" if response.status_code in (401, 403) else ""
        raise RealtimeConnectionError(
            f"model endpoint {connection.safe_url()} refused the WebRTC offer: HTTP {response.status_code}{hint}"
        )
    return response


def _silent(pcm16: bytes) -> bool:
    """Digital silence, as a sender pads its track with between answers (Opus gives it back as zeros
    or within a step or two of them)."""
    samples = np.frombuffer(pcm16, dtype="<i2")
    return not samples.size or int(np.abs(samples.astype(np.int32)).max()) <= SILENCE_MAX


def _response_id_of(event: dict[str, Any]) -> str | None:
    response_id = event.get("response_id")
    if response_id is None:
        response_id = (event.get("response") or {}).get("id")
    return response_id if isinstance(response_id, str) else None
