"""Caller audio to a GPT-Live session: the Uplink hot path, kept flowing in real time.

A Live session's timeline advances only with input: if input stops (a hold, a muted leg, a
carrier that sends nothing during silence), the model's acks and its output stall. So the Live
uplink keeps input flowing at the wall clock's pace: a keeper task tops it up with silence (in the
model's format: μ-law 0xFF, PCM16 zeros) whenever caller frames fall more than KEEP_SLACK_MS
behind real time.

The carrier-timestamp gap fill (audio/gaps.py, in the session's reader) then must not add the
same time again: after a 2 s hold the first frame comes with ~2 s of silence prepended, which the
keeper has already sent. A frame that would put the input more than AHEAD_MS ahead of the wall
clock loses that excess from its *leading silence* only (what gap filling prepends), never
speech, so a 2 s hold reaches the model as 2 s. Speech ahead of the clock (a pre-roll handed over
at once) is kept: the keeper then simply waits for real time to catch up.

Until the session has started (`session.started`), `ws` is None and frames are dropped and counted,
as while reconnecting.
"""

from __future__ import annotations

import asyncio
import binascii

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from telephony_bridge.audio.formats import L16_24K, ULAW_8K, AudioFormat, Encoding
from telephony_bridge.realtime import live_wire
from telephony_bridge.realtime.stats import ClientStatistics
from telephony_bridge.realtime.uplink import Uplink

KEEP_SLACK_MS = 200.0  # carrier jitter tolerated before silence is sent in the caller's place
AHEAD_MS = 100.0  # how far ahead of the clock a frame may take the input before its leading silence is trimmed
KEEPER_PERIOD_S = 0.1  # a timer per call: 10 wake-ups a second, not 50 (slack is 200 ms)

_SILENCE_BYTE = {Encoding.ULAW: b"\xff", Encoding.ALAW: b"\xd5", Encoding.L16: b"\x00"}


class LiveUplink(Uplink):
    __slots__ = ("_input_silence", "_sample_bytes", "_started_at", "filled_ms", "sent_ms", "trimmed_ms")

    def __init__(self, codec: str, stats: ClientStatistics, label: str) -> None:
        super().__init__(codec, stats, label)
        self.encode = live_wire.encode_input_audio_append
        self._started_at: float | None = None
        self.sent_ms = 0.0  # input the session has had (its timeline)
        self.filled_ms = 0.0  # of which silence the keeper sent
        self.trimmed_ms = 0.0  # gap fill not sent, because the keeper had already covered that time

    def set_input_format(self, audio_format: AudioFormat) -> None:
        super().set_input_format(audio_format)
        self._input_silence = _SILENCE_BYTE.get(audio_format.encoding, b"\x00")
        self._sample_bytes = 2 if audio_format.encoding is Encoding.L16 else 1

    def set_model_codec(self, codec: str, input_format: AudioFormat) -> None:
        """The session's format changed before it started (PCM16 asked for): new filter state."""
        self.model_format = L16_24K if codec == "pcm16" else ULAW_8K
        self.set_input_format(input_format)

    def session_started(self, now_s: float) -> None:
        """A (new) session's timeline starts now."""
        self._started_at = now_s
        self.sent_ms = 0.0

    async def accept_caller_audio(self, frame: bytes) -> None:
        started_at = self._started_at
        if started_at is not None and self.ws is not None:
            frame_ms = len(frame) / self._bytes_per_ms
            clock_ms = (asyncio.get_running_loop().time() - started_at) * 1000
            excess_ms = self.sent_ms + frame_ms - clock_ms - AHEAD_MS
            if excess_ms > 0:
                frame = self._trim_leading_silence(frame, excess_ms)
                if not frame:
                    return
        frames = self.stats.caller_frames
        await super().accept_caller_audio(frame)
        if self.stats.caller_frames != frames:
            self.sent_ms += len(frame) / self._bytes_per_ms

    def _trim_leading_silence(self, frame: bytes, excess_ms: float) -> bytes:
        silent = len(frame) - len(frame.lstrip(self._input_silence))
        cut = min(silent, int(excess_ms * self._bytes_per_ms))
        cut -= cut % self._sample_bytes
        if cut > 0:
            self.trimmed_ms += cut / self._bytes_per_ms
        return frame[cut:]

    async def keep_flowing(self) -> None:
        """Silence in the caller's place whenever their audio falls behind real time (the keeper task)."""
        loop = asyncio.get_running_loop()
        model_bytes_per_ms = self.model_format.bytes_per_ms
        silence_byte = b"\xff" if self.model_format.encoding is Encoding.ULAW else b"\x00"
        while True:
            await asyncio.sleep(KEEPER_PERIOD_S)
            ws, started_at = self.ws, self._started_at
            if ws is None or started_at is None or ws.state is not State.OPEN or ws.transport.is_closing():
                continue
            behind_ms = (loop.time() - started_at) * 1000 - self.sent_ms
            if behind_ms <= KEEP_SLACK_MS:
                continue
            fill_ms = int(behind_ms - KEEP_SLACK_MS / 2)
            if model_bytes_per_ms != self.model_format.bytes_per_ms:  # the codec changed
                model_bytes_per_ms = self.model_format.bytes_per_ms
                silence_byte = b"\xff" if self.model_format.encoding is Encoding.ULAW else b"\x00"
            silence = silence_byte * (fill_ms * int(model_bytes_per_ms))
            try:
                await ws.send(self.encode(binascii.b2a_base64(silence, newline=False)), text=True)
            except ConnectionClosed:
                continue
            self.sent_ms += fill_ms
            self.filled_ms += fill_ms
