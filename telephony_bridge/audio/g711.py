"""ITU-T G.711 μ-law and A-law codec, bit-exact with the G.191 reference, on PCM16 bytes.

Why our own codec and not ``audioop``: ``audioop.lin2ulaw`` negates a negative sample *after*
shifting it to 14 bits, so it differs from the ITU reference on 508 negative inputs (-1..-4 encode
to 0x7E instead of 0x7F, and 4 inputs at every other decision boundary likewise). G.191's encoders
take the one's complement of negatives *before* shifting. ``audioop`` is also gone from the standard
library from Python 3.13 on.

Why lookup tables: G.711 is a pure function of a 16-bit sample, so encoding is one gather from a
65,536-entry table (64 KiB) built once at import from the reference algorithm; decoding is a
gather from a 256-entry table. For a 20 ms frame that costs about as much as a couple of numpy
calls (~2 µs), which is what the per-frame hot path can afford.

PCM16 is little-endian signed mono throughout, whatever the host's byte order.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ALAW_SILENCE",
    "ULAW_SILENCE",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

#: μ-law +0: the byte carriers expect for silence (0x7F, -0, also decodes to 0).
ULAW_SILENCE = 0xFF
#: A-law has no exact zero; 0xD5 (+8) is the conventional silence byte.
ALAW_SILENCE = 0xD5

_PCM16 = np.dtype("<i2")


def _ulaw_compress(pcm: np.ndarray) -> np.ndarray:
    """G.191 ``ulaw_compress`` vectorised: int32 samples in [-32768, 32767] -> μ-law codes."""
    negative = pcm < 0
    # One's complement of negatives before the shift to 14 bits: this is the detail audioop gets
    # wrong. 33 is the μ-law bias (0x84) on the 14-bit scale.
    absno = np.where(negative, ~pcm, pcm) >> 2
    absno = np.minimum(absno + 33, 0x1FFF)
    # Segment = 1 + bit length of (absno >> 6); written as the reference's shift loop.
    segno = np.ones_like(absno)
    rest = absno >> 6
    for _ in range(7):
        segno += rest != 0
        rest >>= 1
    high_nibble = 8 - segno
    low_nibble = 0xF - ((absno >> segno) & 0xF)
    code = (high_nibble << 4) | low_nibble
    return np.where(negative, code, code | 0x80).astype(np.uint8)


def _ulaw_expand(code: np.ndarray) -> np.ndarray:
    """G.191 ``ulaw_expand`` vectorised: μ-law codes -> int32 samples (±32124 at the extremes)."""
    sign = np.where(code < 0x80, -1, 1)
    mantissa = ~code & 0xFF
    exponent = (mantissa >> 4) & 0x7
    step = 4 << (exponent + 1)
    mantissa &= 0xF
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def _alaw_compress(pcm: np.ndarray) -> np.ndarray:
    """G.191 ``alaw_compress`` vectorised: int32 samples -> A-law codes (even bits toggled)."""
    negative = pcm < 0
    ix = np.where(negative, ~pcm, pcm) >> 4  # 12-bit magnitude, one's complement for negatives
    # Exponent: how many halvings bring ix down to at most 31 (the reference's while loop).
    iexp = np.ones_like(ix)
    mant = ix.copy()
    for _ in range(7):
        shift = mant > 16 + 15
        mant = np.where(shift, mant >> 1, mant)
        iexp += shift
    code = np.where(ix > 15, (mant - 16) + (iexp << 4), ix)
    code = np.where(negative, code, code | 0x80)
    return (code ^ 0x55).astype(np.uint8)


def _alaw_expand(code: np.ndarray) -> np.ndarray:
    """G.191 ``alaw_expand`` vectorised: A-law codes -> int32 samples (±32256 at the extremes)."""
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0xF
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 8  # left-justify and add half a quantisation step
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(code > 127, mant, -mant)


def _frozen(table: np.ndarray) -> np.ndarray:
    table.flags.writeable = False
    return table


# Index = the sample's bit pattern read as unsigned 16-bit, so encoding needs no sign handling.
_ALL_SAMPLES = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
_ALL_CODES = np.arange(256, dtype=np.int32)
_ULAW_ENCODE = _frozen(_ulaw_compress(_ALL_SAMPLES))
_ALAW_ENCODE = _frozen(_alaw_compress(_ALL_SAMPLES))
_ULAW_DECODE = _frozen(_ulaw_expand(_ALL_CODES).astype(_PCM16))
_ALAW_DECODE = _frozen(_alaw_expand(_ALL_CODES).astype(_PCM16))
del _ALL_SAMPLES, _ALL_CODES

# The tables themselves, read-only, for the resampler's compiled path (it decodes and encodes
# through them, so both paths share one definition of G.711).
ULAW_DECODE_TABLE = _ULAW_DECODE
ALAW_DECODE_TABLE = _ALAW_DECODE
ULAW_ENCODE_TABLE = _ULAW_ENCODE
ALAW_ENCODE_TABLE = _ALAW_ENCODE


def _samples_as_indices(pcm16: bytes) -> np.ndarray:
    if len(pcm16) % 2:
        raise ValueError(f"PCM16 input must have an even number of bytes (2 per sample), got {len(pcm16)}")
    return np.frombuffer(pcm16, dtype="<u2")


def ulaw_encode(pcm16: bytes) -> bytes:
    """Encode little-endian PCM16 mono to G.711 μ-law, one byte per sample.

    Raises ValueError if ``pcm16`` has an odd number of bytes.
    """
    return _ULAW_ENCODE[_samples_as_indices(pcm16)].tobytes()


def ulaw_decode(ulaw: bytes) -> bytes:
    """Decode G.711 μ-law to little-endian PCM16 mono, two bytes per input byte."""
    return _ULAW_DECODE[np.frombuffer(ulaw, dtype=np.uint8)].tobytes()


def ulaw_decode_samples(ulaw: bytes) -> np.ndarray:
    """`ulaw_decode` as an int16 array (read-only use), for a resampler that takes arrays."""
    return _ULAW_DECODE[np.frombuffer(ulaw, dtype=np.uint8)]


def alaw_encode(pcm16: bytes) -> bytes:
    """Encode little-endian PCM16 mono to G.711 A-law, one byte per sample.

    Raises ValueError if ``pcm16`` has an odd number of bytes.
    """
    return _ALAW_ENCODE[_samples_as_indices(pcm16)].tobytes()


def alaw_decode(alaw: bytes) -> bytes:
    """Decode G.711 A-law to little-endian PCM16 mono, two bytes per input byte."""
    return _ALAW_DECODE[np.frombuffer(alaw, dtype=np.uint8)].tobytes()


def alaw_decode_samples(alaw: bytes) -> np.ndarray:
    """`alaw_decode` as an int16 array (read-only use), for a resampler that takes arrays."""
    return _ALAW_DECODE[np.frombuffer(alaw, dtype=np.uint8)]
