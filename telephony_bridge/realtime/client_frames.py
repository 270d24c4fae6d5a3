"""WebSocket client text frames for the caller-audio hot path, built in one step (RFC 6455 §5.2).

websockets' `Protocol.send_text` builds a `Frame`, checks it, runs the (empty) extension chain,
serializes it through a BytesIO and draws its mask key with `secrets.token_bytes(4)`: a getrandom
syscall per 20 ms frame. For the one frame the uplink sends fifty times a second per call (an
unfragmented text frame, no extension: the bridge connects with `compression=None`) this does the
same in one function, with mask keys taken from the OS's CSPRNG 1,024 at a time. RFC 6455 §5.3 asks
that keys be unpredictable, which os.urandom's output is however it is sliced; not a syscall each.

The masking itself is websockets' `apply_mask` (its C speedup). The frames are parsed back with
websockets' own reader in tests/unit/test_client_frames.py.
"""

from __future__ import annotations

import os
import struct

from websockets.frames import apply_mask

__all__ = ["masked_text_frame"]

_FIN_TEXT = 0x81  # FIN, no RSV bits, opcode 1 (text)
_MASK_BIT = 0x80
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_KEYS_PER_DRAW = 1024


class _MaskKeys:
    """Four bytes of os.urandom at a time, drawn 4 KiB at once."""

    __slots__ = ("_offset", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def take(self) -> bytes:
        offset = self._offset
        if offset >= len(self._pool):
            self._pool, offset = os.urandom(4 * _KEYS_PER_DRAW), 0
        self._offset = offset + 4
        return self._pool[offset : offset + 4]


_keys = _MaskKeys()


def masked_text_frame(payload: bytes) -> bytes:
    """One complete, masked, final text frame carrying `payload` (already UTF-8)."""
    length = len(payload)
    if length < 126:
        head = _SHORT.pack(_FIN_TEXT, _MASK_BIT | length)
    elif length < 65536:
        head = _MEDIUM.pack(_FIN_TEXT, _MASK_BIT | 126, length)
    else:
        head = _LONG.pack(_FIN_TEXT, _MASK_BIT | 127, length)
    key = _keys.take()
    return head + key + apply_mask(payload, key)
