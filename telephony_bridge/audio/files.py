"""Audio files: recordings of what a call sounded like, prompts to play, caller audio to simulate.

Off the hot path. Writing uses the plain ``wave`` module. Reading parses the WAV's RIFF chunks itself
(``wave`` reads neither IEEE float nor WAVE_FORMAT_EXTENSIBLE) and converts with numpy, so any WAV a
recorder or an editor writes needs no ffmpeg: integer PCM of 8, 16, 24 or 32 bits, 32- or 64-bit
float, μ-law and A-law, any channel count (averaged to mono), any sample rate (resampled to 8 kHz).
Other formats (mp3, ogg, m4a...) are decoded by ffmpeg through pydub, and say so when it is missing.
"""

from __future__ import annotations

import os
import shutil
import struct
import wave
from types import ModuleType
from typing import Union

import numpy as np

from telephony_bridge.audio.g711 import alaw_decode, ulaw_decode

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # PCM16 little-endian

PathLike = Union[str, "os.PathLike[str]"]

_FORMAT_PCM, _FORMAT_FLOAT, _FORMAT_ALAW, _FORMAT_ULAW, _FORMAT_EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_FORMAT_NAMES = {2: "MS ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM 6.10", 0x55: "MPEG layer 3", 0x161: "WMA"}
_KAISER_BETA = 8.0
_SINC_ZERO_CROSSINGS = 16  # per side, at the lower of the two rates: > 60 dB stopband, plenty for a caller
_BLOCK = 8192  # output samples resampled at once: bounds the window matrix


class AudioFileError(ValueError):
    """The file cannot be read as audio (its message says why and what would help)."""


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
    """An audio file → mono PCM16 LE 8 kHz bytes (channels averaged).

    WAV needs nothing but numpy; other formats need ffmpeg. Raises :class:`AudioFileError` (a
    ``ValueError``) for a file that is not usable audio, ``OSError`` when it cannot be opened."""
    path = os.fspath(path)
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:4] in (b"RIFF", b"RIFX", b"RF64") and data[8:12] == b"WAVE":
        try:
            return _decode_wav(data)
        except AudioFileError:
            if shutil.which("ffmpeg") is None:
                raise
            # An encoded WAV (ADPCM, GSM...): ffmpeg knows more codecs than we do.
    return _decode_with_ffmpeg(path)


# -- WAV ---------------------------------------------------------------------------------------------


def _decode_wav(data: bytes) -> bytes:
    if data[:4] != b"RIFF":
        raise AudioFileError(
            f"{data[:4].decode('latin-1')} WAV files (big-endian or 64-bit) are not supported: "
            "convert to a plain PCM WAV"
        )
    fmt, payload = None, None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]  # a streamed WAV's sizes may overrun: take what is there
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            payload = body
            break
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    if fmt is None or len(fmt) < 16:
        raise AudioFileError("not a usable WAV file: no 'fmt ' chunk")
    if payload is None:
        raise AudioFileError("not a usable WAV file: no 'data' chunk")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the first two bytes of the SubFormat GUID
    if channels < 1 or rate < 1:
        raise AudioFileError(f"not a usable WAV file: {channels} channels at {rate} Hz")
    if tag not in (_FORMAT_PCM, _FORMAT_FLOAT, _FORMAT_ALAW, _FORMAT_ULAW):
        name = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
        raise AudioFileError(f"{name} WAV needs ffmpeg to decode (apt-get install ffmpeg), or convert it to a PCM WAV")
    width = block_align // channels if block_align else (bits + 7) // 8
    if width < 1:
        raise AudioFileError(f"not a usable WAV file: {bits} bits per sample")
    payload = payload[: len(payload) // (width * channels) * width * channels]
    if tag == _FORMAT_PCM and (channels, width, rate) == (1, SAMPLE_WIDTH, SAMPLE_RATE):
        return payload  # already what we want: no conversion, bit for bit
    samples = _samples(payload, tag, width, bits).reshape(-1, channels).mean(axis=1)
    return _to_pcm16(_resample(samples, rate, SAMPLE_RATE))


def _samples(payload: bytes, tag: int, width: int, bits: int) -> np.ndarray:
    """Interleaved samples as float64, full scale = ±1."""
    if tag in (_FORMAT_ALAW, _FORMAT_ULAW):
        if width != 1:
            raise AudioFileError(f"G.711 WAV with {width}-byte samples: expected 1")
        pcm = (alaw_decode if tag == _FORMAT_ALAW else ulaw_decode)(payload)
        return np.frombuffer(pcm, dtype="<i2") / 32768.0
    if tag == _FORMAT_FLOAT:
        if width not in (4, 8):
            raise AudioFileError(f"float WAV with {width}-byte samples: expected 4 or 8")
        floats = np.frombuffer(payload, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
        return np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0)
    if width == 1:
        return (np.frombuffer(payload, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0  # 8-bit PCM is unsigned
    if width in (2, 4):
        return np.frombuffer(payload, dtype=f"<i{width}") / float(1 << (8 * width - 1))
    if width == 3:
        raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value & 0x800000, value - (1 << 24), value)
        return value / float(1 << 23)
    raise AudioFileError(f"PCM WAV with {bits}-bit ({width}-byte) samples is not supported: 8, 16, 24 or 32 bits")


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited (Kaiser-windowed sinc) resampling between any two rates.

    Any ratio, so 44.1 kHz works too (the hot path's ``Resampler`` takes integer ratios and small
    fractions such as 3:2 only); the cut-off sits just under the lower rate's Nyquist frequency,
    so nothing folds back."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    step = from_rate / to_rate  # input samples per output sample
    cutoff = min(1.0, 1.0 / step) * 0.95  # in cycles per input sample × 2 (1 = input Nyquist)
    half = int(np.ceil(_SINC_ZERO_CROSSINGS / cutoff))
    offsets = np.arange(-half + 1, half + 1)
    padded = np.concatenate([np.zeros(half), samples, np.zeros(half + 1)])
    n_out = int(np.ceil(samples.size / step))
    out = np.empty(n_out)
    for start in range(0, n_out, _BLOCK):
        positions = np.arange(start, min(n_out, start + _BLOCK)) * step
        base = np.floor(positions).astype(np.int64)
        taps = base[:, None] + offsets[None, :]  # input indices around each output instant
        distance = positions[:, None] - taps
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (distance / half) ** 2, 0, None))) / np.i0(_KAISER_BETA)
        kernel = cutoff * np.sinc(cutoff * distance) * window
        out[start : start + positions.size] = (padded[taps + half] * kernel).sum(axis=1)
    return out


def _to_pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


# -- everything else: ffmpeg -------------------------------------------------------------------------


def _decode_with_ffmpeg(path: str) -> bytes:
    kind = os.path.splitext(path)[1].lower() or "this file (not a WAV)"
    if shutil.which("ffmpeg") is None:
        raise AudioFileError(
            f"reading {kind} needs ffmpeg (apt-get install ffmpeg); WAV files (PCM, float, μ-law, A-law) need nothing"
        )
    try:
        segment = _pydub().AudioSegment.from_file(path)
    except Exception as e:  # pydub raises CouldntDecodeError, or ffmpeg's own failure
        raise AudioFileError(
            f"ffmpeg could not decode {kind}: {str(e).strip().splitlines()[-1] if str(e).strip() else e!r}"
        ) from e
    return segment.set_sample_width(SAMPLE_WIDTH).set_channels(1).set_frame_rate(SAMPLE_RATE).raw_data


def _pydub() -> ModuleType:
    import warnings

    # pydub warns at import when ffmpeg is missing; audioop (which pydub uses for rate conversion)
    # warns that it is deprecated on 3.11/3.12.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pydub

    return pydub
