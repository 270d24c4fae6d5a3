"""Offline speech synthesis with libespeak-ng (shipped by `espeakng-loader`), for the local engine's
voice and for anyone who needs caller speech (phone simulator, demo, tests).

libespeak-ng keeps global state and is not thread-safe: one lock serialises every call into it, and
the library is initialised once, lazily, on first use. Synthesis is CPU work of tens of milliseconds
per sentence, so callers on an event loop use `synthesize_async`, which runs it in a worker thread.
Rendered text is cached (LRU) because a script says the same lines on every call.

espeak renders at 22050 Hz; a windowed-sinc resampler (numpy, off the hot path) converts to the rate
asked for. Output is PCM16 little-endian mono.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from functools import _CacheInfo  # lru_cache's statistics tuple; public only as `cache_info()`'s result

__all__ = ["DEFAULT_WORDS_PER_MINUTE", "ESPEAK_RATE", "SpeechError", "cache_info", "synthesize", "synthesize_async"]

ESPEAK_RATE = 22050
DEFAULT_WORDS_PER_MINUTE = 175

_AUDIO_OUTPUT_RETRIEVAL = 1
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SpeechError(RuntimeError):
    pass


class _Espeak:
    """The one libespeak-ng instance of this process. Every method must be called with `lock` held."""

    lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise SpeechError(f"espeak_Initialize failed ({rate})")
        self.rate = rate
        self._lib = lib
        self._chunks: list[bytes] = []
        # Keep a reference: ctypes callbacks are freed with their Python object.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: bytes | None = None
        self._wpm: int | None = None

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def render(self, text: str, voice: str, words_per_minute: int) -> bytes:
        encoded_voice = voice.encode()
        if encoded_voice != self._voice:
            if self._lib.espeak_SetVoiceByName(encoded_voice) != _EE_OK:
                raise SpeechError(f"unknown espeak voice {voice!r}")
            self._voice = encoded_voice
            self._wpm = None  # a voice change resets the rate
        if words_per_minute != self._wpm:
            self._lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
            self._wpm = words_per_minute
        data = text.encode() + b"\0"
        buffer = ctypes.create_string_buffer(data, len(data))
        self._chunks = []
        status = self._lib.espeak_Synth(buffer, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise SpeechError(f"espeak_Synth failed ({status})")
        return b"".join(chunks)


_engine: _Espeak | None = None


def _render_native(text: str, voice: str, words_per_minute: int) -> tuple[bytes, int]:
    global _engine
    with _Espeak.lock:
        if _engine is None:
            _engine = _Espeak()
        return _engine.render(text, voice, words_per_minute), _engine.rate


def _kaiser_sinc_resample(samples: np.ndarray, from_rate: int, to_rate: int, half_width: int = 16) -> np.ndarray:
    """Band-limited resampling by direct windowed-sinc interpolation (cutoff at the lower Nyquist).

    Whole-signal, not streaming: this runs once per rendered sentence, never per frame.
    """
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float64)
    ratio = to_rate / from_rate
    cutoff = min(1.0, ratio) * 0.95  # of the input Nyquist; a little guard band against aliasing
    out_count = round(samples.size * ratio)
    positions = np.arange(out_count) / ratio  # in input samples
    base = np.floor(positions).astype(np.int64)
    frac = positions - base
    taps = np.arange(-half_width + 1, half_width + 1)
    padded = np.concatenate([np.zeros(half_width), samples.astype(np.float64), np.zeros(half_width + 1)])
    result = np.empty(out_count)
    beta = 8.0
    block = 8192  # bound the temporary (block x taps) matrices
    for start in range(0, out_count, block):
        stop = min(out_count, start + block)
        offsets = frac[start:stop, None] - taps[None, :]  # distance from each tap, in input samples
        edge = np.clip(1.0 - (offsets / half_width) ** 2, 0.0, None)
        kernel_window = np.i0(beta * np.sqrt(edge)) / np.i0(beta)
        kernel = cutoff * np.sinc(cutoff * offsets) * kernel_window
        indices = base[start:stop, None] + taps[None, :] + half_width
        result[start:stop] = np.sum(padded[indices] * kernel, axis=1)
    return result


def synthesize(text: str, sample_rate: int = 24000, voice: str = "en-us", speed: float = 1.0) -> bytes:
    """Speak `text` and return PCM16 little-endian mono at `sample_rate` (e.g. 8000 or 24000).

    `voice` is an espeak-ng voice name, optionally with a variant: "en-us", "en-gb", "en-us+f3" (a
    distinct voice for a simulated caller). `speed` scales the speaking rate (1.0 = 175 words/min).
    Thread-safe; results are cached (LRU). Empty or whitespace-only text gives b"".
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not text.strip():
        return b""
    return _synthesize_cached(text, int(sample_rate), voice, float(speed))


def cache_info() -> _CacheInfo:
    """Hits and misses of the rendered-speech cache (functools.lru_cache statistics)."""
    return _synthesize_cached.cache_info()


def _synthesize_uncached(text: str, sample_rate: int, voice: str, speed: float) -> bytes:
    words_per_minute = max(80, min(450, round(DEFAULT_WORDS_PER_MINUTE * speed)))
    native, native_rate = _render_native(text, voice, words_per_minute)
    samples = np.frombuffer(native, dtype="<i2")
    converted = _kaiser_sinc_resample(samples, native_rate, sample_rate)
    return np.clip(np.round(converted), -32768, 32767).astype("<i2").tobytes()


# Keyed on normalised positional arguments, so every way of calling `synthesize` shares entries.
_synthesize_cached = lru_cache(maxsize=256)(_synthesize_uncached)


async def synthesize_async(text: str, sample_rate: int = 24000, voice: str = "en-us", speed: float = 1.0) -> bytes:
    """`synthesize` without blocking the event loop (runs in a worker thread)."""
    return await asyncio.to_thread(synthesize, text, sample_rate, voice, speed)
