"""A pcap of RTP for SIPp's `play_pcap_audio`, made in the test (SIPp rewrites addresses and ports)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

from telephony_bridge.audio.g711 import ulaw_encode


def tone_ulaw(seconds: float, hz: float = 440.0) -> bytes:
    samples = int(8000 * seconds)
    pcm = struct.pack(f"<{samples}h", *(int(8000 * math.sin(2 * math.pi * hz * n / 8000)) for n in range(samples)))
    return ulaw_encode(pcm)


def write_rtp_pcap(path: Path, payload: bytes, payload_type: int = 0, frame_bytes: int = 160) -> int:
    """20 ms packets of `payload` (G.711), one every 20 ms of capture time; the packet count."""
    records = []
    for index, start in enumerate(range(0, len(payload) - frame_bytes + 1, frame_bytes)):
        rtp = struct.pack(
            "!BBHII", 0x80, (0x80 if index == 0 else 0) | payload_type, index, index * frame_bytes, 0x1234
        )
        rtp += payload[start : start + frame_bytes]
        udp = struct.pack("!HHHH", 6000, 6001, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        micros = index * 20_000
        records.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records))
    return len(records)
