"""The engine's side of one WebRTC connection, shaped as the WebSocket its session runner reads.

`_ConnectionRunner` (server.py) pumps an engine session over anything with `request`,
`remote_address`, `send(str)` and async iteration of client messages (`EngineSocket`). This is
that, over a peer connection, so the engine's session logic runs unchanged on WebRTC:

- client events arrive on the `oai-events` data channel and are handed over as they are;
- caller audio arrives on the Opus track and is handed over as the append events a WebSocket
  client would send (`input_audio_buffer.append`, GPT-Live's `session.input_audio.append`), in
  the session's input format, converted from 48 kHz with one carried resampler;
- server events go out on the data channel, except audio deltas, which are decoded and written to
  the outgoing track, paced in real time there (the engine bursts audio faster than real time, as
  the real API does on a WebSocket; on WebRTC the server paces).

What OpenAI's WebRTC transport adds, imitated here (Realtime only): `output_audio_buffer.started`
when a response's audio starts going out, `output_audio_buffer.stopped` when it has all gone,
`output_audio_buffer.cleared` when it was cut: by the client's `output_audio_buffer.clear` (taken
here, never shown to the session, which does not know it) or by the caller starting to speak
(server VAD's `input_audio_buffer.speech_started`), which stops the agent's audio at once.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiortc import MediaStreamTrack, RTCDataChannel
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from websockets.exceptions import ConnectionClosedOK
from websockets.http11 import Request

from ..audio.convert import converter
from ..audio.formats import ALAW_8K, L16_16K, L16_24K, ULAW_8K, AudioFormat
from ..audio.g711 import alaw_encode, ulaw_encode
from ..webrtc.audio_frames import IncomingAudio, OutgoingAudioTrack

__all__ = ["TRACK_RATE", "DataChannelSocket", "audio_format_of"]

log = logging.getLogger(__name__)

TRACK_RATE = 24000  # the outgoing track's rate; aiortc's Opus encoder takes it to 48 kHz
_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta", "session.output_audio.delta")
_DELTA_HEADS = tuple(f'{{"type":"{kind}"'.encode() for kind in _AUDIO_DELTAS)
_SESSION_HEADS = tuple(
    f'{{"type":"{kind}"'.encode() for kind in ("session.created", "session.updated", "session.started")
)
_AUDIO_DONE_HEADS = tuple(
    f'{{"type":"{kind}"'.encode() for kind in ("response.output_audio.done", "response.audio.done")
)
_SPEECH_STARTED_HEAD = b'{"type":"input_audio_buffer.speech_started"'
_CLEAR = "output_audio_buffer.clear"


def audio_format_of(fmt: Any) -> AudioFormat | None:
    """A GA / Live `{"type": "audio/pcm", "rate": …}` format object as an AudioFormat."""
    if not isinstance(fmt, dict):
        return None
    kind, rate = fmt.get("type"), fmt.get("rate")
    if kind == "audio/pcmu":
        return ULAW_8K
    if kind == "audio/pcma":
        return ALAW_8K
    if kind == "audio/pcm":
        return L16_16K if rate == 16000 else L16_24K
    return None


class DataChannelSocket:
    """One WebRTC connection as an `EngineSocket` (see the module docstring)."""

    def __init__(
        self,
        *,
        request: Request,
        remote_address: Any,
        channel: RTCDataChannel,
        outgoing: OutgoingAudioTrack,
        first_messages: tuple[str, ...] = (),
        realtime: bool = True,
    ) -> None:
        self.request = request
        self.remote_address = remote_address
        self.channel = self._channel = channel
        self._outgoing = outgoing
        self._realtime = realtime  # Realtime (output_audio_buffer.* events) or GPT-Live
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        for message in first_messages:
            self._inbox.put_nowait(message)
        self._input_format = L16_24K
        self._output = _OutputAudio(L16_24K)
        self._append_type = "input_audio_buffer.append" if realtime else "session.input_audio.append"
        # Realtime: the responses whose audio is on the track, oldest (on air) first, each with the
        # track position its audio ends at; and those that have sent all their audio.
        self._segments: deque[list[Any]] = deque()  # [response_id, end position]
        self._audio_done: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._inbox.put_nowait(None))
        if realtime:
            outgoing.on_frame = self._track_moved

    # --- what the runner reads -------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[str]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str]:
        while True:
            message = await self._inbox.get()
            if message is None:
                return
            yield message

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")  # the session reports it as bad JSON if it is
        if self._realtime and _CLEAR in message[:80]:
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(message)
                if isinstance(event, dict) and event.get("type") == _CLEAR:
                    self._clear_audio()
                    return
        self._inbox.put_nowait(message)

    def receive_track(self, track: MediaStreamTrack) -> None:
        """Caller audio from `track`, as append events, until the track ends."""
        task = asyncio.create_task(self._pump_caller_audio(track), name="engine webrtc caller audio")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump_caller_audio(self, track: MediaStreamTrack) -> None:
        incoming = IncomingAudio(self._input_format.rate)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, AudioFrame):
                continue
            fmt = self._input_format
            if fmt.rate != incoming.rate:  # a session.update changed the format: a new stream
                incoming = IncomingAudio(fmt.rate)
            audio = incoming.pcm16(frame)
            if fmt is ULAW_8K:
                audio = ulaw_encode(audio)
            elif fmt is ALAW_8K:
                audio = alaw_encode(audio)
            if audio:
                encoded = binascii.b2a_base64(audio, newline=False).decode()
                self._inbox.put_nowait(f'{{"type":"{self._append_type}","audio":"{encoded}"}}')

    async def recv(self, decode: bool | None = None) -> str | bytes:
        """The next client message, as websockets' `recv` gives it (bytes with `decode=False`)."""
        message = await self._inbox.get()
        if message is None:
            self._inbox.put_nowait(None)  # every later recv ends too
            raise ConnectionClosedOK(None, None)
        return message.encode() if decode is False else message

    # --- what the runner sends ---------------------------------------------------------------
    async def send(self, message: str | bytes, text: bool | None = None) -> None:
        if self._channel.readyState != "open":
            raise ConnectionClosedOK(None, None)
        if isinstance(message, bytes):
            message = message.decode()
        head = message[:48].encode()
        if head.startswith(_DELTA_HEADS):
            self._play(orjson.loads(message))
            return
        if head.startswith(_SESSION_HEADS):
            self._learn_formats(orjson.loads(message))
        elif self._realtime and head.startswith(_SPEECH_STARTED_HEAD) and self._segments:
            self._clear_audio()  # the caller barged in: the server stops its audio at once (WebRTC)
        self._channel.send(message)
        if self._realtime and head.startswith(_AUDIO_DONE_HEADS):
            # All of the response's audio is on the track: "stopped" once the track has sent it.
            response_id = orjson.loads(message).get("response_id")
            if isinstance(response_id, str) and any(segment[0] == response_id for segment in self._segments):
                self._audio_done.add(response_id)
                self._track_moved()

    def _play(self, event: dict[str, Any]) -> None:
        try:
            audio = binascii.a2b_base64(event["delta"])
        except (KeyError, TypeError, binascii.Error):
            return
        self._outgoing.write(self._output.pcm16(audio))
        response_id = event.get("response_id")
        if not self._realtime or not isinstance(response_id, str):
            return
        segments = self._segments
        if segments and segments[-1][0] == response_id:
            segments[-1][1] = self._outgoing.written_bytes
            return
        segments.append([response_id, self._outgoing.written_bytes])
        if len(segments) == 1:
            self._event("output_audio_buffer.started", response_id)

    def _track_moved(self) -> None:
        """After each frame sent: the answer on air has ended once the track is past its audio
        and it is done (or the next answer's audio is already queued behind it); then the next
        one is on air. One buffer, one stream: OpenAI stops one answer before starting the next."""
        segments, consumed = self._segments, self._outgoing.consumed_bytes
        while segments and consumed >= segments[0][1] and (segments[0][0] in self._audio_done or len(segments) > 1):
            response_id = segments.popleft()[0]
            self._audio_done.discard(response_id)
            self._event("output_audio_buffer.stopped", response_id)
            if segments:
                self._event("output_audio_buffer.started", segments[0][0])

    def _clear_audio(self) -> None:
        self._outgoing.clear()
        response_id = self._segments[0][0] if self._segments else None
        self._segments.clear()
        self._audio_done.clear()
        self._event("output_audio_buffer.cleared", response_id)

    def _event(self, kind: str, response_id: str | None) -> None:
        if self._channel.readyState == "open":
            self._channel.send(
                orjson.dumps({"type": kind, "event_id": f"event_{id(self):x}", "response_id": response_id}).decode()
            )

    def _learn_formats(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            return
        audio = session.get("audio") or {}
        if self._realtime:
            input_fmt = audio_format_of((audio.get("input") or {}).get("format"))
            output_fmt = audio_format_of((audio.get("output") or {}).get("format"))
        else:
            input_fmt = output_fmt = audio_format_of(audio.get("format"))
        if input_fmt is not None:
            self._input_format = input_fmt
        if output_fmt is not None and output_fmt != self._output.source:
            self._output = _OutputAudio(output_fmt)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Hang up this session (websockets' `close`; a data channel has no close code)."""
        self._channel.close()
        self._inbox.put_nowait(None)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._inbox.put_nowait(None)


class _OutputAudio:
    """The session's output format -> PCM16 at the track's rate, one converter for the stream."""

    __slots__ = ("_convert", "source")

    def __init__(self, source: AudioFormat) -> None:
        self.source = source
        self._convert: Callable[[bytes], bytes] = converter(source, L16_24K).process  # TRACK_RATE

    def pcm16(self, audio: bytes) -> bytes:
        return self._convert(audio)
