"""G.711 against an independent port of the ITU reference, for every input.

The oracle below is deliberately written differently from the module under test (which vectorises
G.191's ``ulaw_compress``/``alaw_compress``): a plain per-sample loop in the style of the classic
``linear2ulaw``/``linear2alaw`` (segment-end table search, bias 0x84, clip 8159), with G.191's
rule for negative samples (one's complement before the shift to 14/13 bits). Two formulations
agreeing on all 65,536 inputs is the evidence; the audioop test shows the check has teeth.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from telephony_bridge.audio import g711

ALL_SAMPLES = range(-32768, 32768)
ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))

SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
ULAW_BIAS = 0x84
ULAW_CLIP = 8159  # on the 14-bit scale


def segment(value: int, segment_ends: tuple[int, ...]) -> int:
    for seg, end in enumerate(segment_ends):
        if value <= end:
            return seg
    return len(segment_ends)


def reference_linear2ulaw(sample: int) -> int:
    if sample < 0:
        magnitude, mask = (~sample) >> 2, 0x7F  # one's complement, as G.191 does
    else:
        magnitude, mask = sample >> 2, 0xFF
    magnitude = min(magnitude, ULAW_CLIP) + (ULAW_BIAS >> 2)
    seg = segment(magnitude, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((magnitude >> (seg + 1)) & 0xF)) ^ mask


def reference_linear2alaw(sample: int) -> int:
    if sample < 0:
        magnitude, mask = (~sample) >> 3, 0x55
    else:
        magnitude, mask = sample >> 3, 0xD5
    seg = segment(magnitude, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    mantissa = (magnitude >> 1) if seg < 2 else (magnitude >> seg)
    return ((seg << 4) | (mantissa & 0xF)) ^ mask


def reference_ulaw2linear(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + ULAW_BIAS) << ((code & 0x70) >> 4)
    return ULAW_BIAS - t if code & 0x80 else t - ULAW_BIAS


def reference_alaw2linear(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


@pytest.fixture(scope="module")
def reference_ulaw() -> bytes:
    return bytes(reference_linear2ulaw(s) for s in ALL_SAMPLES)


@pytest.fixture(scope="module")
def reference_alaw() -> bytes:
    return bytes(reference_linear2alaw(s) for s in ALL_SAMPLES)


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def samples_of(pcm16: bytes) -> list[int]:
    return np.frombuffer(pcm16, dtype="<i2").tolist()


def mismatches(actual: bytes, expected: bytes) -> list[tuple[int, int, int]]:
    """(sample, actual code, expected code) for every differing input, for readable failures."""
    return [
        (sample, a, e)
        for sample, a, e in zip(ALL_SAMPLES, actual, expected, strict=True)
        if a != e
    ]


def test_ulaw_encode_matches_reference_for_every_sample(reference_ulaw: bytes) -> None:
    assert mismatches(g711.ulaw_encode(ALL_PCM16), reference_ulaw) == []


def test_alaw_encode_matches_reference_for_every_sample(reference_alaw: bytes) -> None:
    assert mismatches(g711.alaw_encode(ALL_PCM16), reference_alaw) == []


def test_ulaw_decode_matches_reference_for_every_code() -> None:
    assert samples_of(g711.ulaw_decode(ALL_CODES)) == [reference_ulaw2linear(c) for c in range(256)]


def test_alaw_decode_matches_reference_for_every_code() -> None:
    assert samples_of(g711.alaw_decode(ALL_CODES)) == [reference_alaw2linear(c) for c in range(256)]


def test_ulaw_known_values() -> None:
    # The inputs audioop gets wrong: -1..-4 are "-0", code 0x7F.
    assert g711.ulaw_encode(pcm(-1, -2, -3, -4, -5)) == bytes([0x7F] * 4 + [0x7E])
    assert g711.ulaw_encode(pcm(0, 1, 32767, -32768)) == bytes([0xFF, 0xFF, 0x80, 0x00])
    assert samples_of(g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00]))) == [0, 0, 32124, -32124]


def test_alaw_known_values() -> None:
    assert g711.alaw_encode(pcm(0, -1, 32767, -32768)) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert samples_of(g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]


def test_decoded_range_extremes() -> None:
    ulaw = samples_of(g711.ulaw_decode(ALL_CODES))
    alaw = samples_of(g711.alaw_decode(ALL_CODES))
    assert (min(ulaw), max(ulaw)) == (-32124, 32124)
    assert (min(alaw), max(alaw)) == (-32256, 32256)


def test_silence_constants() -> None:
    assert g711.ULAW_SILENCE == 0xFF and g711.ALAW_SILENCE == 0xD5
    assert g711.ulaw_encode(bytes(320)) == bytes([g711.ULAW_SILENCE]) * 160
    assert g711.alaw_encode(bytes(320)) == bytes([g711.ALAW_SILENCE]) * 160
    assert samples_of(g711.ulaw_decode(bytes([g711.ULAW_SILENCE]))) == [0]
    assert samples_of(g711.alaw_decode(bytes([g711.ALAW_SILENCE]))) == [8]


def test_every_code_survives_decode_then_encode() -> None:
    # Decoded values sit at the centre of their interval, so re-encoding must give the code back;
    # the one exception is μ-law -0 (0x7F), which decodes to 0 and re-encodes as +0 (0xFF).
    ulaw_again = g711.ulaw_encode(g711.ulaw_decode(ALL_CODES))
    assert ulaw_again == ALL_CODES.replace(b"\x7f", b"\xff")
    assert g711.alaw_encode(g711.alaw_decode(ALL_CODES)) == ALL_CODES


def test_output_is_little_endian_and_sizes_match() -> None:
    assert g711.ulaw_decode(bytes([0x80])) == (32124).to_bytes(2, "little", signed=True)
    assert len(g711.ulaw_decode(bytes(160))) == 320
    assert len(g711.alaw_encode(bytes(320))) == 160
    assert g711.ulaw_encode(b"") == b"" and g711.ulaw_decode(b"") == b""


def test_accepts_bytes_like_input() -> None:
    frame = pcm(100, -100, 2000)
    expected = g711.ulaw_encode(frame)
    assert g711.ulaw_encode(bytearray(frame)) == expected
    assert g711.ulaw_encode(memoryview(frame)) == expected
    assert g711.ulaw_decode(bytearray(expected)) == g711.ulaw_decode(expected)


@pytest.mark.parametrize("encode", [g711.ulaw_encode, g711.alaw_encode])
def test_odd_length_pcm_is_rejected(encode: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        encode(b"\x00\x01\x02")


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("audioop")


def test_audioop_lin2ulaw_would_fail_the_reference_check(
    audioop: ModuleType, reference_ulaw: bytes
) -> None:
    # The check above must be able to reject a plausible-looking codec: audioop negates after the
    # shift and so misses on 4 negative inputs per decision boundary (127 boundaries).
    wrong = mismatches(audioop.lin2ulaw(ALL_PCM16, 2), reference_ulaw)
    assert len(wrong) == 508
    assert all(sample < 0 for sample, _, _ in wrong)
    assert wrong[-4:] == [(s, 0x7E, 0x7F) for s in (-4, -3, -2, -1)]


def test_audioop_agrees_where_it_is_known_to_be_right(
    audioop: ModuleType, reference_alaw: bytes
) -> None:
    # A third, independent implementation agreeing on A-law and both decoders.
    assert audioop.lin2alaw(ALL_PCM16, 2) == reference_alaw
    assert audioop.ulaw2lin(ALL_CODES, 2) == g711.ulaw_decode(ALL_CODES)
    assert audioop.alaw2lin(ALL_CODES, 2) == g711.alaw_decode(ALL_CODES)
