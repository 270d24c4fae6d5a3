"""The audio formats a carrier or a model leg carries, as data.

Carriers stream G.711 (μ-law, A-law) at 8 kHz or linear PCM16 ("L16", little-endian on the wire
as the bridge handles it) at 8, 16 or 24 kHz; the Realtime API takes PCM16 24 kHz or G.711 μ-law.
Which conversions a pair needs is audio/convert.py's business; here is only what a format is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = ["ALAW_8K", "L16_8K", "L16_16K", "L16_24K", "ULAW_8K", "AudioFormat", "Encoding"]


class Encoding(Enum):
    ULAW = "ulaw"  # G.711 μ-law, one byte a sample
    ALAW = "alaw"  # G.711 A-law, one byte a sample
    L16 = "l16"  # linear PCM, 16-bit signed little-endian


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: Encoding
    rate: int  # samples a second, mono

    def __post_init__(self) -> None:
        if self.encoding is not Encoding.L16 and self.rate != 8000:
            raise ValueError(f"G.711 is 8 kHz, not {self.rate} Hz")
        if self.rate not in (8000, 16000, 24000):
            raise ValueError(f"unsupported sample rate {self.rate} Hz (8000, 16000 or 24000)")

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding is Encoding.L16 else 1

    @property
    def bytes_per_ms(self) -> int:
        return self.rate // 1000 * self.bytes_per_sample

    def duration_ms(self, size: int) -> float:
        return size / self.bytes_per_ms

    def __str__(self) -> str:
        return f"{self.encoding.value}/{self.rate}"


ULAW_8K: Final = AudioFormat(Encoding.ULAW, 8000)
ALAW_8K: Final = AudioFormat(Encoding.ALAW, 8000)
L16_8K: Final = AudioFormat(Encoding.L16, 8000)
L16_16K: Final = AudioFormat(Encoding.L16, 16000)
L16_24K: Final = AudioFormat(Encoding.L16, 24000)
