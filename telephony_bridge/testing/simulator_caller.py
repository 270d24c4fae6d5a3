"""The caller's half of a simulated Twilio stream: its audio paced in real time, DTMF at its times,
and the hang-up after silence. Mixed into `SimulatedCall` (simulator_stream.py), which owns the
socket, the clock and the timeline."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from websockets.exceptions import ConnectionClosed

from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.playout import SimulatedPlayout
from telephony_bridge.testing.simulator_result import CallResult
from telephony_bridge.testing.transcript import Span

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz
ULAW_SILENCE_FRAME = b"\xff" * FRAME_BYTES


def _media(seq: int, *, stream_sid: str, chunk: int, timestamp_ms: int, payload: bytes) -> str:
    return messages.media(seq=seq, stream_sid=stream_sid, chunk=chunk, timestamp_ms=timestamp_ms, payload=payload)


class CallerSide:
    """What the caller sends. The state and the clock are `SimulatedCall`'s, declared here."""

    result: CallResult
    stream_sid: str
    caller_audio: bytes  # μ-law 8 kHz
    digits: list[tuple[float, str]]
    duration_ms: float
    hangup_after_silence_ms: float | None
    caller_spans: deque[Span]
    caller_sent: bytearray
    playout: SimulatedPlayout

    def emit(self, kind: str, detail: str, t_ms: float | None = None, data: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError

    def now_ms(self) -> float:
        raise NotImplementedError

    async def send(self, message: str | Callable[[int], str]) -> None:
        raise NotImplementedError

    async def sleep_until_ms(self, t_ms: float) -> None:
        raise NotImplementedError

    async def send_caller_side(self) -> None:
        """Caller frames paced on absolute times (no drift), DTMF at its times, until the duration."""
        result = self.result
        frames = math.ceil(self.duration_ms / FRAME_MS - 1e-9)
        audio_frames = math.ceil(len(self.caller_audio) / FRAME_BYTES)
        digits = deque(self.digits)
        while digits and digits[-1][0] * 1000 >= self.duration_ms:
            t, d = digits.pop()
            self.emit("dtmf", f"digit {d} at {t:.3f} s not sent: after the end of the call")
        try:
            for k in range(frames):
                due_ms = k * FRAME_MS
                while digits and digits[0][0] * 1000 <= due_ms:
                    await self.send_digit(*digits.popleft())
                await self.sleep_until_ms(due_ms)
                if self.should_hang_up_on_silence(k, audio_frames):
                    self.emit("hangup", f"nothing played to the caller for {self.hangup_after_silence_ms:.0f} ms")
                    return
                if k < audio_frames:
                    payload = self.caller_audio[k * FRAME_BYTES : (k + 1) * FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
                else:
                    payload = ULAW_SILENCE_FRAME
                await self.send(partial(_media, stream_sid=self.stream_sid, chunk=k + 1, timestamp_ms=due_ms,
                                        payload=payload))
                self.caller_sent += payload
                result.frames_sent += 1
                while self.caller_spans and self.caller_spans[0].end_ms <= due_ms + FRAME_MS:
                    span = self.caller_spans.popleft()
                    self.emit("caller_speech", f"caller speech {span.start_ms:.0f}-{span.end_ms:.0f} ms", span.end_ms,
                              {"start_ms": span.start_ms, "end_ms": span.end_ms})
                if k == 0:
                    audio = f"{audio_frames * FRAME_MS} ms of caller audio"
                    self.emit("caller_audio", f"first frame; {audio}, then silence")
                elif k == audio_frames:
                    self.emit("caller_audio", "caller audio over: sending silence")
            while digits:
                await self.send_digit(*digits.popleft())
            await self.sleep_until_ms(frames * FRAME_MS)
            self.emit("hangup", f"duration {self.duration_ms:.0f} ms reached after {frames} frames")
        except ConnectionClosed:
            return

    async def send_digit(self, t: float, digit: str) -> None:
        await self.sleep_until_ms(t * 1000)
        await self.send(lambda seq: messages.dtmf(seq=seq, stream_sid=self.stream_sid, digit=digit))
        self.result.digits_sent.append((self.now_ms(), digit))
        self.emit("dtmf", f"digit {digit} (due at {t * 1000:.0f} ms)")

    def should_hang_up_on_silence(self, frame: int, audio_frames: int) -> bool:
        if self.hangup_after_silence_ms is None or frame < audio_frames:
            return False
        silent_since = max(audio_frames * FRAME_MS, self.playout.busy_until_ms())
        return self.now_ms() - silent_since >= self.hangup_after_silence_ms
