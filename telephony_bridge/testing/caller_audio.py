"""The simulated caller's side of a call-flow test as PCM16 8 kHz: lines spoken by an offline voice
at their times (or a recording), long enough to reach the last key press."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from telephony_bridge.local_engine import synthesize_async

__all__ = ["CALLER_VOICE", "SAMPLE_RATE", "caller_audio_pcm16"]

CALLER_VOICE = "en-us+f3"  # espeak-ng voice of simulated callers (the agent's is the script's, en-us)
SAMPLE_RATE = 8000


async def caller_audio_pcm16(
    caller_says: Sequence[tuple[float, str]], audio: bytes | str | Path | None, digits: Sequence[tuple[float, str]]
) -> bytes:
    """PCM16 8 kHz of the whole caller side: each line at its time, silence between, long enough to
    reach the last key press (the simulator's silence hang-up only starts after the caller's audio)."""
    if audio is not None and caller_says:
        raise ValueError("give the caller's speech as `audio` or as `caller_says`, not both")
    if audio is not None and not isinstance(audio, (bytes, bytearray, memoryview)):
        from telephony_bridge.audio.files import read_wav_as_pcm16_8k_mono

        audio = await asyncio.to_thread(read_wav_as_pcm16_8k_mono, audio)
    if audio is not None:
        samples = np.frombuffer(bytes(audio), dtype="<i2").astype(np.int32)
    else:
        samples = np.zeros(0, dtype=np.int32)
        for at, text in sorted(caller_says):
            if at < 0:
                raise ValueError(f"caller line {text!r} at {at} s: times are seconds >= 0")
            speech = np.frombuffer(await synthesize_async(text, SAMPLE_RATE, CALLER_VOICE), dtype="<i2").astype(
                np.int32
            )
            start = round(at * SAMPLE_RATE)
            if len(samples) < start + len(speech):
                samples = np.concatenate([samples, np.zeros(start + len(speech) - len(samples), dtype=np.int32)])
            samples[start : start + len(speech)] += speech  # overlapping lines mix, as two voices would
    last_key = max((float(t) for t, _ in digits), default=-math.inf)
    wanted = math.ceil((last_key + 0.1) * SAMPLE_RATE) if last_key > -math.inf else 0
    if len(samples) < wanted:
        samples = np.concatenate([samples, np.zeros(wanted - len(samples), dtype=np.int32)])
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()
