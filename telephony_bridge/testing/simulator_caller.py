"""The caller's half of a simulated stream (any carrier): its audio paced in real time, DTMF at its times,
and the hang-up after silence. Mixed into `SimulatedCall` (simulator_stream.py), which owns the
socket, the clock and the timeline."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from websockets.exceptions import ConnectionClosed

from telephony_bridge.audio.convert import Converter
from telephony_bridge.testing.carrier_profile import CarrierProfile
from telephony_bridge.testing.playout import SimulatedPlayout
from telephony_bridge.testing.simulator_result import CallResult
from telephony_bridge.testing.transcript import Span

FRAME_MS = 20  # Twilio's; a profile says its own (`frame_ms`)
FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz
ULAW_SILENCE_FRAME = b"\xff" * FRAME_BYTES


class CallerSide:
    """What the caller sends. The state and the clock are `SimulatedCall`'s, declared here."""

    result: CallResult
    stream_sid: str
    caller_audio: bytes  # μ-law 8 kHz, converted frame by frame to the profile's format
    profile: CarrierProfile
    caller_converter: Converter | None
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

    async def send(self, message: str | bytes | Callable[[int], str | bytes | None]) -> None:
        raise NotImplementedError

    async def sleep_until_ms(self, t_ms: float) -> None:
        raise NotImplementedError

    async def send_caller_side(self) -> None:
        """Caller frames paced on absolute times (no drift), DTMF at its times, until the duration."""
        result = self.result
        frame_ms = self.profile.frame_ms
        frame_bytes = frame_ms * 8  # of the μ-law 8 kHz caller audio
        frames = math.ceil(self.duration_ms / frame_ms - 1e-9)
        audio_frames = math.ceil(len(self.caller_audio) / frame_bytes)
        digits = deque(self.digits)
        while digits and digits[-1][0] * 1000 >= self.duration_ms:
            t, d = digits.pop()
            self.emit("dtmf", f"digit {d} at {t:.3f} s not sent: after the end of the call")
        try:
            for k in range(frames):
                due_ms = k * frame_ms
                while digits and digits[0][0] * 1000 <= due_ms:
                    await self.send_digit(*digits.popleft())
                await self.sleep_until_ms(due_ms)
                if self.should_hang_up_on_silence(k, audio_frames):
                    self.emit("hangup", f"nothing played to the caller for {self.hangup_after_silence_ms:.0f} ms")
                    return
                if k < audio_frames:
                    payload = self.caller_audio[k * frame_bytes : (k + 1) * frame_bytes].ljust(frame_bytes, b"\xff")
                else:
                    payload = b"\xff" * frame_bytes
                await self.send(partial(self.profile.audio_message, self.on_the_wire(payload), timestamp_ms=due_ms))
                self.caller_sent += payload
                result.frames_sent += 1
                while self.caller_spans and self.caller_spans[0].end_ms <= due_ms + frame_ms:
                    span = self.caller_spans.popleft()
                    self.emit(
                        "caller_speech",
                        f"caller speech {span.start_ms:.0f}-{span.end_ms:.0f} ms",
                        span.end_ms,
                        {"start_ms": span.start_ms, "end_ms": span.end_ms},
                    )
                if k == 0:
                    audio = f"{audio_frames * frame_ms} ms of caller audio"
                    self.emit("caller_audio", f"first frame; {audio}, then silence")
                elif k == audio_frames:
                    self.emit("caller_audio", "caller audio over: sending silence")
            while digits:
                await self.send_digit(*digits.popleft())
            await self.sleep_until_ms(frames * frame_ms)
            self.emit("hangup", f"duration {self.duration_ms:.0f} ms reached after {frames} frames")
        except ConnectionClosed:
            return

    async def send_digit(self, t: float, digit: str) -> None:
        await self.sleep_until_ms(t * 1000)
        await self.send(partial(self.profile.dtmf_message, digit))
        self.result.digits_sent.append((self.now_ms(), digit))
        self.emit("dtmf", f"digit {digit} (due at {t * 1000:.0f} ms)")

    def on_the_wire(self, ulaw: bytes) -> bytes:
        """A caller frame in the profile's audio format."""
        if self.caller_converter is None:
            return ulaw
        want = round(len(ulaw) / 8 * self.profile.audio_format.bytes_per_ms)
        return self.caller_converter.process(ulaw)[:want].ljust(want, b"\x00")

    def should_hang_up_on_silence(self, frame: int, audio_frames: int) -> bool:
        if self.hangup_after_silence_ms is None or frame < audio_frames:
            return False
        silent_since = max(audio_frames * self.profile.frame_ms, self.playout.busy_until_ms())
        return self.now_ms() - silent_since >= self.hangup_after_silence_ms
