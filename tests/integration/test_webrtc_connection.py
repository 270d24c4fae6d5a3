"""The model connection over WebRTC against a scripted model (tests/integration/scripted_model.py
behind the local engine's WebRTC endpoint, which puts the model's audio deltas on an Opus track):
the track's audio reaches listeners as the deltas a WebSocket would carry, all of it, framed by
output_audio_buffer.*, and the answer's end is told only once its audio is in; a server that never
says "stopped" does not hold an answer forever."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from telephony_bridge.realtime.events import RealtimeAPIEvents
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_client import create_realtime_api_client
from tests.integration.scripted_model import ScriptedModel, eventually

pytestmark = pytest.mark.timeout(60)
R = RealtimeAPIEvents
TONE_100MS = (8000 * np.sin(2 * np.pi * 440 * np.arange(2400) / 24000)).astype("<i2").tobytes()


async def connected(model: ScriptedModel):
    tasks = TaskOwner("call CA-webrtc-connection")
    client = await create_realtime_api_client(
        {"url": model.url, "apiKey": "sk-test", "transport": "webrtc", "webrtcUrl": model.webrtc_url},
        tasks=tasks,
        environ={"WEBRTC_HOST_ADDRESSES": "127.0.0.1"},
    )
    await model.connected()
    seen: list[tuple[str, dict]] = []
    for member in (R.ResponseDone, R.ResponseAudioDone, R.OutputAudioBufferStarted, R.OutputAudioBufferStopped):
        client.addEventListener(member, lambda e: seen.append((e.name, dict(e.data))))
    return client, tasks, seen


async def test_all_of_an_answers_track_audio_reaches_listeners_as_deltas_before_its_end():
    async with ScriptedModel(webrtc=True) as model:
        client, tasks, seen = await connected(model)
        try:
            await _one_answer(model, client, seen)
        finally:
            await client.aclose()
            await tasks.aclose()


async def _one_answer(model, client, seen):
    deltas: list[dict] = []
    client.addEventListener(R.ResponseAudioDelta, lambda e: deltas.append(dict(e.data)))
    await model.response_started("resp_1", "item_1")
    for _ in range(6):  # 600 ms of tone, onto the engine's track, paced in real time there
        await model.send(
            {
                "type": "response.output_audio.delta",
                "response_id": "resp_1",
                "item_id": "item_1",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(TONE_100MS).decode(),
            }
        )
    await model.send(
        {
            "type": "response.output_audio.done",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
        }
    )
    await model.response_done("resp_1")
    await eventually(lambda: any(name == "ResponseDone" for name, _ in seen), timeout=20)
    # All of it: "stopped" comes on the data channel while the last frames are still in flight,
    # and they are taken too (up to the track's silence), not cut at "stopped".
    assert 580 <= client.stats.model_audio_ms <= 800
    assert deltas and {(d["response_id"], d["item_id"]) for d in deltas} == {("resp_1", "item_1")}
    assert sum(len(base64.b64decode(d["delta"])) for d in deltas) / 48 == pytest.approx(client.stats.model_audio_ms)
    names = [name for name, _ in seen]
    assert names == ["OutputAudioBufferStarted", "OutputAudioBufferStopped", "ResponseAudioDone", "ResponseDone"]


async def test_an_answer_whose_stopped_never_comes_is_released_by_the_next_answers_start():
    async with ScriptedModel(webrtc=True) as model:
        client, tasks, seen = await connected(model)
        try:
            await _stopped_never_comes(model, client, seen)
        finally:
            await client.aclose()
            await tasks.aclose()


async def _stopped_never_comes(model, client, seen):
    await model.response_started("resp_9", "item_9")
    await model.send({"type": "output_audio_buffer.started", "response_id": "resp_9"})
    await model.response_done("resp_9")  # held: resp_9's audio is "on the track"
    await model.send({"type": "error", "error": {"type": "invalid_request_error", "code": "barrier", "message": "b"}})
    await eventually(lambda: client.stats.errors == 1)
    assert not any(name == "ResponseDone" for name, _ in seen)
    await model.send({"type": "output_audio_buffer.started", "response_id": "resp_10"})
    await eventually(lambda: any(name == "ResponseDone" for name, _ in seen), timeout=10)
    [done] = [data for name, data in seen if name == "ResponseDone"]
    assert done["response"]["id"] == "resp_9"
