"""Barge-in end to end: the real client, the real server, a scripted model and a Twilio-like peer
that plays audio in real time. The truncation must land within one frame (20 ms) of what the
peer actually played."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.conformance.oracle import validate_client_event
from tests.integration.playout_peer import PlayoutPeer
from tests.integration.scripted_model import ScriptedModel
from tests.integration.twilio_peer import TwilioPeer

pytestmark = pytest.mark.timeout(60)
SCENARIOS = Path(__file__).parent / "barge_in_scenarios"
FRAME_MS = 20


class Harness:
    def __init__(self, model: ScriptedModel, peer: PlayoutPeer, probe, runtime) -> None:
        self.model, self.peer, self.probe, self.runtime = model, peer, probe, runtime

    async def speech_started(self) -> None:
        await self.model.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 1000, "item_id": "item_user"})

    async def wait_clear(self) -> float:
        await self.model.wait_for(lambda: bool(self.peer.played_at_clear) and self._cut_sent())
        return self.peer.played_at_clear[-1]

    async def barrier(self) -> None:
        """Every server event sent before this one has been dispatched by the bridge's client (its
        reader handles events in order, awaiting the audio path inline)."""
        code = f"barrier_{len(self.model.received)}_{self.peer.now_ms():.0f}"
        await self.model.send({"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": "barrier"}})
        call_id = self.peer.peer.call_sid
        await self.probe.wait_for(lambda: ("error", code) in self.probe.events[call_id])

    @property
    def client(self):
        return next(d for k, d in self.probe.events[self.peer.peer.call_sid] if k == "client")

    def _cut_sent(self) -> bool:
        return bool(self.model.of_type("conversation.item.truncate") or self.model.of_type("conversation.item.delete"))


@pytest.fixture
async def harness(probe):
    async with ScriptedModel() as model:
        settings = Settings(scenarios_dir=SCENARIOS, realtime_url=model.url)
        async with running_bridge(settings) as runtime:
            twilio = await TwilioPeer.open(f"ws://127.0.0.1:{runtime.settings.port}/media-stream")
            peer = PlayoutPeer(twilio)
            runner = asyncio.create_task(peer.run())
            await twilio.start({"scenario": "default"})
            await model.connected()
            await model.wait_for(lambda: bool(model.of_type("session.update")))
            yield Harness(model, peer, probe, runtime)
            await twilio.stop()
            await twilio.wait_closed()
            runner.cancel()
            for event in model.received:
                validate_client_event({k: v for k, v in event.items() if k != "_connection"}, "ga")  # everything the bridge sent is valid GA


async def test_one_answer_truncated_at_what_was_heard(harness):
    model, peer = harness.model, harness.peer
    await model.response_started("resp_1", "item_a")
    await model.audio("resp_1", "item_a", 3000)
    await peer.wait_played(700)
    await harness.speech_started()
    heard = await harness.wait_clear()
    [cut] = model.of_type("conversation.item.truncate")
    assert cut["item_id"] == "item_a" and cut["content_index"] == 0
    assert abs(cut["audio_end_ms"] - heard) <= FRAME_MS, (cut, heard)
    assert not model.of_type("conversation.item.delete")
    # late audio of the interrupted answer never reaches the caller (pitfall 6)
    await model.audio("resp_1", "item_a", 500)
    await model.response_done("resp_1", "cancelled")
    await harness.barrier()
    assert harness.client.stats.late_deltas_dropped == 5


async def test_two_queued_answers_first_truncated_second_deleted(harness):
    model, peer = harness.model, harness.peer
    await model.response_started("resp_1", "item_a")
    await model.audio("resp_1", "item_a", 800)
    await model.response_done("resp_1")
    await model.response_started("resp_2", "item_b")
    await model.audio("resp_2", "item_b", 1500)
    await peer.wait_played(400)
    await harness.speech_started()
    heard = await harness.wait_clear()
    await model.wait_for(lambda: model.of_type("conversation.item.delete"))
    [cut] = model.of_type("conversation.item.truncate")
    [deleted] = model.of_type("conversation.item.delete")
    assert cut["item_id"] == "item_a" and abs(cut["audio_end_ms"] - heard) <= FRAME_MS
    assert deleted["item_id"] == "item_b"


async def test_second_answer_partly_heard_is_truncated_and_first_left_alone(harness):
    model, peer = harness.model, harness.peer
    await model.response_started("resp_1", "item_a")
    await model.audio("resp_1", "item_a", 500)
    await model.response_done("resp_1")
    await model.response_started("resp_2", "item_b")
    await model.audio("resp_2", "item_b", 1500)
    await peer.wait_played(900)
    await harness.speech_started()
    heard = await harness.wait_clear()
    [cut] = model.of_type("conversation.item.truncate")
    assert cut["item_id"] == "item_b" and abs(cut["audio_end_ms"] - (heard - 500)) <= FRAME_MS
    assert not model.of_type("conversation.item.delete")


async def test_interrupt_before_the_first_delta_deletes_the_item(harness):
    model, peer = harness.model, harness.peer
    await model.response_started("resp_1", "item_a")
    await harness.speech_started()
    await model.wait_for(lambda: model.of_type("conversation.item.delete"))
    assert model.of_type("conversation.item.delete")[0]["item_id"] == "item_a"
    assert not model.of_type("conversation.item.truncate")  # truncating at 0 is rejected (pitfall 2)
    assert model.of_type("response.cancel")
    await model.audio("resp_1", "item_a", 400)  # late deltas of the cancelled answer
    await model.response_done("resp_1", "cancelled")
    await harness.barrier()
    assert harness.client.stats.late_deltas_dropped == 4
    assert harness.client.stats.model_audio_deltas == 4 and peer.media_messages == 0


async def test_interrupt_after_all_audio_was_sent_but_not_yet_played(harness):
    model, peer = harness.model, harness.peer
    await model.response_started("resp_1", "item_a")
    await model.audio("resp_1", "item_a", 2000)
    await model.send({"type": "response.output_audio.done", "response_id": "resp_1", "item_id": "item_a", "output_index": 0, "content_index": 0})
    await model.response_done("resp_1")
    await peer.wait_played(600)
    await harness.speech_started()
    heard = await harness.wait_clear()  # pitfall 3: cleared although nothing was left to send
    [cut] = model.of_type("conversation.item.truncate")
    assert abs(cut["audio_end_ms"] - heard) <= FRAME_MS
    assert peer.playout.clears[-1].dropped_ms > 1000
    assert not model.of_type("response.cancel")  # the response was done; nothing to cancel


async def test_speech_when_nothing_plays_does_nothing(harness):
    model, peer, probe = harness.model, harness.peer, harness.probe
    await model.response_started("resp_1", "item_a")
    await model.audio("resp_1", "item_a", 200)
    await model.response_done("resp_1")
    call_id = harness.peer.peer.call_sid
    await probe.wait_for(lambda: "media_ended" in probe.kinds(call_id))
    await harness.speech_started()
    await model.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1500, "item_id": "item_user"})
    await harness.barrier()
    assert harness.client.stats.interruptions == 0
    assert peer.played_at_clear == []  # pitfall 4: no clear, no truncate when nothing is playing
    assert not model.of_type("conversation.item.truncate") and not model.of_type("conversation.item.delete")
    media_ended = [d for k, d in probe.events[call_id] if k == "media_ended"]
    assert media_ended == [pytest.approx(0.2, abs=0.03)]


async def test_clear_then_respond_reaches_the_model_in_that_order(harness):
    """clearMediaBuffer(); responseCreate(...) — the cancel and truncate must precede the new
    response, or the model refuses it ('already has an active response') and the caller hears
    nothing."""
    model, peer = harness.model, harness.peer
    await model.response_started("resp_1", "item_a")
    await model.audio("resp_1", "item_a", 2000)
    await peer.wait_played(300)
    client = harness.client
    client.clearMediaBuffer()
    client.responseCreate({"instructions": "Say: sorry, go on."})
    await model.wait_for(lambda: model.of_type("response.create"))
    kinds = [e["type"] for e in model.received if e["type"] in ("response.cancel", "conversation.item.truncate", "response.create")]
    assert kinds == ["response.cancel", "conversation.item.truncate", "response.create"]
    assert model.of_type("response.cancel")[0]["response_id"] == "resp_1"  # never a newer answer
