"""The uplink's own client text frames read back, by websockets' parser, as what was sent."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from telephony_bridge.realtime import client_frames
from telephony_bridge.realtime.client_frames import masked_text_frame


def parse_as_server(data: bytes) -> Frame:
    """What a server (websockets' own reader, expecting masked frames) makes of `data`."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        assert not reader.buffer  # the frame is exactly what was written, no byte over
        return done.value
    raise AssertionError("the frame was incomplete")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 960 * 4 // 3 + 60, 65535, 65536, 70000])
def test_each_length_encoding_parses_back_to_the_payload(length: int) -> None:
    payload = bytes((i * 7) % 251 for i in range(length))
    frame = parse_as_server(masked_text_frame(payload))
    assert (frame.opcode, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3) == (Opcode.TEXT, True, False, False, False)
    assert frame.data == payload


def test_mask_keys_differ_and_come_from_the_pool_a_draw_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[int] = []
    real_urandom = client_frames.os.urandom

    def counting_urandom(n: int) -> bytes:
        draws.append(n)
        return real_urandom(n)

    monkeypatch.setattr(client_frames.os, "urandom", counting_urandom)
    monkeypatch.setattr(client_frames, "_keys", client_frames._MaskKeys())
    keys = [masked_text_frame(b"x")[2:6] for _ in range(2 * client_frames._KEYS_PER_DRAW + 1)]
    assert draws == [4 * client_frames._KEYS_PER_DRAW] * 3  # one syscall per 1,024 frames
    assert len(set(keys)) > 0.99 * len(keys)  # 4 random bytes each: collisions are rare
