"""WAV files: recordings of what a call sounded like, prompts to play, caller audio to simulate.

Off the hot path. Writing uses the plain ``wave`` module; reading converts any PCM WAV (8/16/24/32-bit,
any rate, any channel count, WAVE_FORMAT_EXTENSIBLE too) to mono PCM16 8 kHz, with pydub for the
conversion when the file is not already in that shape.
"""

from __future__ import annotations

import os
import wave
from typing import Union

import numpy as np

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # PCM16 little-endian

PathLike = Union[str, "os.PathLike[str]"]


def write_mono_wav(path: PathLike, pcm16: bytes, rate: int = SAMPLE_RATE) -> None:
    if len(pcm16) % SAMPLE_WIDTH:
        raise ValueError("PCM16 audio must have an even number of bytes")
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(rate)
        out.writeframes(pcm16)


def write_stereo_wav(path: PathLike, left: bytes, right: bytes, rate: int = SAMPLE_RATE) -> None:
    """Two mono PCM16 tracks side by side; the shorter one is padded with silence at the end."""
    if len(left) % SAMPLE_WIDTH or len(right) % SAMPLE_WIDTH:
        raise ValueError("PCM16 audio must have an even number of bytes")
    frames = max(len(left), len(right)) // SAMPLE_WIDTH
    stereo = np.zeros((frames, 2), dtype="<i2")
    stereo[: len(left) // SAMPLE_WIDTH, 0] = np.frombuffer(left, dtype="<i2")
    stereo[: len(right) // SAMPLE_WIDTH, 1] = np.frombuffer(right, dtype="<i2")
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(rate)
        out.writeframes(stereo.tobytes())


def read_wav_as_pcm16_8k_mono(path: PathLike) -> bytes:
    """Any PCM WAV file → mono PCM16 LE 8 kHz bytes (channels averaged)."""
    path = os.fspath(path)
    try:
        with wave.open(path, "rb") as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE):
                return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        pass  # e.g. WAVE_FORMAT_EXTENSIBLE, which wave in Python 3.11 does not read: pydub does
    segment = _pydub().AudioSegment.from_file(path, format="wav")
    segment = segment.set_sample_width(SAMPLE_WIDTH).set_channels(1).set_frame_rate(SAMPLE_RATE)
    return segment.raw_data


def _pydub():
    import warnings

    # pydub warns at import when ffmpeg is missing; WAV needs no ffmpeg. audioop (used by pydub for
    # rate conversion) warns that it is deprecated on 3.11/3.12.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pydub

    return pydub
