"""The relay floor with orjson (bench/relay.py --json orjson) relays the same messages as with std json."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.frames import Frame
from websockets.streams import StreamReader

from bench import frame_cost_targets as frame_cost
from bench import relay as relay_module
from bench.common import install_fast_loop


def model_messages(written: list[bytes]) -> list[Any]:
    """The JSON messages in the bytes the relay wrote to the model socket (masked client frames)."""
    reader = StreamReader()
    reader.feed_data(b"".join(written))
    messages = []
    while reader.buffer:
        parse = Frame.parse(reader.read_exact, mask=True)
        try:
            next(parse)
        except StopIteration as done:
            messages.append(json.loads(done.value.data))
    return messages


async def relay_traffic(target: frame_cost.Relay) -> tuple[list[Any], list[Any]]:
    written: list[bytes] = []
    await target.start()
    assert target.model is not None
    target.model.transport.write = written.append  # type: ignore[method-assign]
    sent: list[str] = []
    carrier_send = target.carrier.send_text

    async def record(text: str) -> None:
        sent.append(text)
        await carrier_send(text)

    target.carrier.send_text = record  # type: ignore[method-assign]
    await target.up(frame_cost.caller_messages(5))
    for answer in frame_cost.model_frames("g711_ulaw", 1):
        await target.down(answer)
    await target.stop()
    return model_messages(written), [json.loads(text) for text in sent]


def test_the_orjson_relay_sends_what_the_std_json_relay_sends() -> None:
    install_fast_loop()
    std = asyncio.run(relay_traffic(frame_cost.Relay()))
    lean = asyncio.run(relay_traffic(frame_cost.RelayOrjson()))
    assert relay_module.json is relay_module.std_json  # put back after the run
    to_model, to_carrier = std
    assert [m["type"] for m in to_model] == ["input_audio_buffer.append"] * 5
    assert len(to_carrier) == 2 * frame_cost.DELTAS_PER_RESPONSE  # a media and a mark per delta
    assert lean == std
