"""Reading caller audio: every WAV flavour without ffmpeg, and a clear error for what needs it."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from telephony_bridge.audio import files
from telephony_bridge.audio.files import AudioFileError, read_wav_as_pcm16_8k_mono
from telephony_bridge.audio.g711 import alaw_encode, ulaw_encode

TONE_HZ = 440.0
AMPLITUDE = 0.5
SECONDS = 0.5


def tone(rate: int, seconds: float = SECONDS) -> np.ndarray:
    return AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(round(rate * seconds)) / rate)


def riff(tag: int, channels: int, rate: int, bits: int, payload: bytes, *, extensible: bool = False,
         extra_chunks: bytes = b"") -> bytes:
    width = (bits + 7) // 8
    block = width * channels
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
        fmt += struct.pack("<H", tag) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def encode(samples: np.ndarray, kind: str) -> tuple[int, int, bytes]:
    """(format tag, bits, interleaved bytes) for float samples in [-1, 1)."""
    if kind == "u8":
        return 1, 8, np.round(samples * 127 + 128).astype(np.uint8).tobytes()
    if kind == "s16":
        return 1, 16, np.round(samples * 32767).astype("<i2").tobytes()
    if kind == "s24":
        ints = np.round(samples * (2**23 - 1)).astype("<i4")
        return 1, 24, ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    if kind == "s32":
        return 1, 32, np.round(samples * (2**31 - 1)).astype("<i4").tobytes()
    if kind == "f32":
        return 3, 32, samples.astype("<f4").tobytes()
    if kind == "f64":
        return 3, 64, samples.astype("<f8").tobytes()
    pcm16 = np.round(samples * 32767).astype("<i2").tobytes()
    if kind == "ulaw":
        return 7, 8, ulaw_encode(pcm16)
    if kind == "alaw":
        return 6, 8, alaw_encode(pcm16)
    raise AssertionError(kind)


def dominant_hz(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum)) * 8000 / samples.size


def rms(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768
    core = samples[400:-400]  # away from the edges, where the filter meets the file's ends
    return float(np.sqrt(np.mean(core**2)))


@pytest.fixture(autouse=True)
def no_ffmpeg(monkeypatch):
    """Whatever this machine has installed, these files must be read without ffmpeg."""
    monkeypatch.setattr(files.shutil, "which", lambda name: None)


@pytest.mark.parametrize("kind", ["u8", "s16", "s24", "s32", "f32", "f64", "ulaw", "alaw"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_every_wav_flavour_reads_as_the_same_8k_mono_tone(tmp_path, kind, rate, channels):
    tag, bits, payload = encode(np.repeat(tone(rate), channels), kind)
    path = tmp_path / "in.wav"
    path.write_bytes(riff(tag, channels, rate, bits, payload, extensible=kind in ("s24", "f32")))
    pcm = read_wav_as_pcm16_8k_mono(path)
    assert len(pcm) // 2 == pytest.approx(8000 * SECONDS, abs=1)
    assert dominant_hz(pcm) == pytest.approx(TONE_HZ, abs=5)
    assert rms(pcm) == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.03)


def test_pcm16_8k_mono_is_returned_bit_for_bit(tmp_path):
    raw = np.arange(-800, 800, dtype="<i2").tobytes()
    path = tmp_path / "in.wav"
    path.write_bytes(riff(1, 1, 8000, 16, raw, extra_chunks=b"LIST" + struct.pack("<I", 3) + b"abc\x00"))
    assert read_wav_as_pcm16_8k_mono(path) == raw


def test_stereo_channels_are_averaged(tmp_path):
    left = np.full(800, 0.5)
    right = np.full(800, -0.25)
    tag, bits, payload = encode(np.stack([left, right], axis=1).reshape(-1), "f32")
    path = tmp_path / "in.wav"
    path.write_bytes(riff(tag, 2, 8000, bits, payload))
    assert set(np.frombuffer(read_wav_as_pcm16_8k_mono(path), dtype="<i2")) == {round(0.125 * 32768)}


def test_downsampling_does_not_fold_high_frequencies_back(tmp_path):
    rate = 44100
    t = np.arange(rate // 2) / rate
    loud_6k = 0.5 * np.sin(2 * np.pi * 6000 * t)  # above 8 kHz's Nyquist: must vanish, not alias to 2 kHz
    tag, bits, payload = encode(loud_6k, "s16")
    path = tmp_path / "in.wav"
    path.write_bytes(riff(tag, 1, rate, bits, payload))
    assert rms(read_wav_as_pcm16_8k_mono(path)) < 0.005


def test_mp3_without_ffmpeg_says_what_to_install(tmp_path):
    path = tmp_path / "hello.mp3"
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 100)
    with pytest.raises(AudioFileError, match=r"reading \.mp3 needs ffmpeg \(apt-get install ffmpeg\)"):
        read_wav_as_pcm16_8k_mono(path)


def test_encoded_wav_without_ffmpeg_names_its_codec(tmp_path):
    path = tmp_path / "adpcm.wav"
    path.write_bytes(riff(2, 1, 8000, 4, b"\x00" * 256))
    with pytest.raises(AudioFileError, match="MS ADPCM WAV needs ffmpeg"):
        read_wav_as_pcm16_8k_mono(path)


@pytest.mark.parametrize("data, problem", [
    (b"RIFF\x04\x00\x00\x00WAVE", "no 'fmt ' chunk"),
    (b"RIFF\x1c\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16), "no 'data' chunk"),
])
def test_broken_wav_files_are_refused_with_the_reason(tmp_path, data, problem):
    path = tmp_path / "broken.wav"
    path.write_bytes(data)
    with pytest.raises(AudioFileError, match=problem):
        read_wav_as_pcm16_8k_mono(path)
