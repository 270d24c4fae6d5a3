"""The caller-audio hot path: one caller frame, in the carrier's format, into the model's input buffer.

Per 20 ms frame: the carrier's format → the model's (one Converter for the stream, with the fewest
steps: μ-law 8k → PCM16 24k for a pcm16 session; nothing at all for μ-law into g711_ulaw; L16 16k
→ 24k for a wideband carrier) → base64 → one `input_audio_buffer.append` frame written to the
model socket. No logging, no allocation of filters (the resampler lives for the stream), no await.

Never blocks the carrier on the model: when the model is not taking audio (reconnecting, closing,
or its socket backed up past MAX_BUFFERED_AUDIO_BYTES) the frame is dropped and counted, and a
model that stays backed up for MODEL_STALL_TIMEOUT_S is cut off so that the connection's reader
reconnects.

The model connection (connection.py) tells the uplink which socket is current: `ws` is set when a
session is open and ready for audio, and None while reconnecting and after the close.
"""

from __future__ import annotations

import asyncio
import logging

import pybase64
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from telephony_bridge.audio.convert import converter
from telephony_bridge.audio.formats import L16_24K, ULAW_8K, AudioFormat
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.client_frames import masked_text_frame
from telephony_bridge.realtime.stats import ClientStatistics

log = logging.getLogger("telephony_bridge.realtime")

MAX_BUFFERED_AUDIO_BYTES = 256 * 1024  # ~2 s of PCM16 24 kHz as base64 JSON
MODEL_STALL_TIMEOUT_S = 5.0

# Caller audio is written straight to the connection's transport (see Uplink.accept_caller_audio),
# after flushing `protocol.writes` with `send_data()` of websockets' asyncio Connection (13.0
# onwards). Neither is documented API, so a release without them falls back to `await ws.send()`.
# Read per frame, so a test can take either way.
DIRECT_WRITE = callable(getattr(ClientConnection, "send_data", None))


class Uplink:
    """Caller audio to one model client, across its reconnects."""

    __slots__ = ("_bytes_per_ms", "_convert", "_stalled_since", "encode", "label", "model_format", "stats", "ws")

    def __init__(self, codec: str, stats: ClientStatistics, label: str) -> None:
        self.label = label
        self.stats = stats
        self.ws: ClientConnection | None = None  # set by the connection when the model can take audio
        self._stalled_since: float | None = None
        self.model_format = L16_24K if codec == "pcm16" else ULAW_8K
        # base64 audio -> the append frame's JSON bytes; a translation session's and GPT-Live's have their own.
        self.encode = wire.encode_input_audio_append
        self.set_input_format(ULAW_8K)

    def set_input_format(self, audio_format: AudioFormat) -> None:
        """The format caller frames arrive in (the carrier's): a new stream, new filter state."""
        self._convert = converter(audio_format, self.model_format).process
        self._bytes_per_ms = audio_format.bytes_per_ms

    async def accept_caller_audio(self, frame: bytes) -> None:
        """A caller frame for the model's input buffer. Never raises into the carrier's reader."""
        ws = self.ws
        if ws is None or ws.state is not State.OPEN:
            self.stats.caller_audio_dropped_ms += len(frame) / self._bytes_per_ms  # nowhere to go
            return
        transport = ws.transport
        if transport.is_closing():
            self.stats.caller_audio_dropped_ms += len(frame) / self._bytes_per_ms  # aborted: the reader reconnects
            return
        if transport.get_write_buffer_size() > MAX_BUFFERED_AUDIO_BYTES:
            self._backed_up(len(frame), transport)
            return
        self._stalled_since = None
        self.stats.caller_frames += 1
        audio = self._convert(frame)
        message = self.encode(pybase64.b64encode(audio))  # SIMD: ~11x binascii's on a PCM16 frame
        if not DIRECT_WRITE:
            try:
                await ws.send(message, text=True)
            except ConnectionClosed:
                pass  # the reader sees the close and reconnects
            return
        # Written straight to the connection's transport, not `await ws.send()`: send() costs an
        # async context manager, a drain and three coroutines per frame (a quarter of the bridge's
        # CPU above the relay floor at 100 calls, bench/README.md), and its one service here,
        # waiting while the socket is backed up, is the one thing the carrier must never do; the
        # write-buffer check above replaces it. The frame is built by client_frames.py (websockets'
        # Frame and serializer cost a getrandom syscall and a BytesIO per frame). Frames stay whole
        # and in order: anything websockets' protocol still holds (it flushes after every send and
        # every pong, so normally nothing) goes first. State is OPEN, the transport not closing.
        try:
            if ws.protocol.writes:
                ws.send_data()
            transport.write(masked_text_frame(message))
        except Exception:
            # What send() would do on an internal error: give up the connection (the reader
            # reconnects) rather than let the carrier's reader see an exception per frame.
            log.exception("%s: writing caller audio to the model failed; dropping the connection", self.label)
            self.stats.caller_audio_dropped_ms += len(frame) / self._bytes_per_ms
            transport.abort()

    def _backed_up(self, frame_bytes: int, transport: asyncio.WriteTransport) -> None:
        """The model is not reading: drop the frame; past MODEL_STALL_TIMEOUT_S, cut the model off."""
        self.stats.caller_audio_dropped_ms += frame_bytes / self._bytes_per_ms
        now = asyncio.get_running_loop().time()
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since > MODEL_STALL_TIMEOUT_S:
            log.warning(
                "%s: the model has not read audio for %.0f s; dropping its connection",
                self.label,
                now - self._stalled_since,
            )
            self._stalled_since = None
            transport.abort()
