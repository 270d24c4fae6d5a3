"""Asterisk AudioSocket end to end: a TCP phone speaking AudioSocket to the real server's listener.

The phone connects to `serve --audiosocket 127.0.0.1:PORT=+15550100` as Asterisk's
`AudioSocket(uuid,host:port)` does: the UUID frame, then caller audio (L16 8 kHz) paced in real
time, a DTMF digit, and a hang-up frame. It plays what the bridge sends as Asterisk does — each
0x10 frame as it arrives, no re-timing, nothing cleared — so what the caller heard is exactly what
arrived, and the bridge (no marks) must know it by its clock. The call runs the project's
receptionist scenario against the embedded local engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.carriers.audiosocket import (
    HANGUP_FRAME,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_HANGUP,
    KIND_UUID,
    FrameReader,
    frame,
)
from telephony_bridge.carriers.audiosocket_carrier import PLAYOUT_LEAD_MS
from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from telephony_bridge.testing.simulator import place_call

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FRAME_MS = 20
FRAME_BYTES = L16_8K.bytes_per_ms * FRAME_MS  # 320
# Agent audio arriving after a pause this long is a new answer: the next answer comes a second or
# more after the barge-in (the caller's question, the VAD's silence); a busy machine's hiccup is shorter.
BURST_GAP_MS = 600


@dataclass
class Arrived:
    at_ms: float
    ms: float


@dataclass
class AudioSocketPhone:
    """Asterisk's side of one AudioSocket call, over a real TCP connection."""

    port: int
    call_id: uuid.UUID = field(default_factory=uuid.uuid4)
    arrived: list[Arrived] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)  # every frame kind the bridge sent, in order
    closed_by_bridge: bool = False

    async def call(self, speech: bytes, *, speak_after_agent_ms: float, tail_s: float, digit: bytes = b"7",
                   max_wait_s: float = 10.0) -> None:
        """Silence until the agent has been heard for `speak_after_agent_ms` (whenever the greeting
        starts on a busy machine), then `speech`, then `tail_s` of silence with a DTMF digit a
        second before the end, then a hang-up frame."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(frame(KIND_UUID, self.call_id.bytes))
        receiver = asyncio.create_task(self._receive(reader))
        try:
            await self._stream(writer, speech, speak_after_agent_ms, tail_s, digit, max_wait_s)
            writer.write(HANGUP_FRAME)  # Asterisk: the caller hung up
            await writer.drain()
            await asyncio.wait_for(receiver, 10)  # the bridge then closes its end
        finally:
            receiver.cancel()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _stream(self, writer: asyncio.StreamWriter, speech: bytes, speak_after_agent_ms: float, tail_s: float,
                      digit: bytes, max_wait_s: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = -(-len(speech) // FRAME_BYTES) + int(tail_s * 1000 / FRAME_MS)  # frames from the speech on
        index = 0
        speech_from: int | None = None
        while True:
            if speech_from is None and sum(f.ms for f in self.arrived) >= speak_after_agent_ms:
                speech_from = index
            if speech_from is None and index * FRAME_MS >= max_wait_s * 1000:
                raise AssertionError(f"the agent played under {speak_after_agent_ms} ms in {max_wait_s} s")
            spoken = index - speech_from if speech_from is not None else -1
            if spoken >= total:
                return
            chunk = speech[spoken * FRAME_BYTES:(spoken + 1) * FRAME_BYTES] if spoken >= 0 else b""
            writer.write(frame(KIND_AUDIO, chunk.ljust(FRAME_BYTES, b"\x00")))
            if spoken == total - 1000 // FRAME_MS:
                writer.write(frame(KIND_DTMF, digit))
            await writer.drain()
            index += 1
            await asyncio.sleep(max(0.0, start + index * FRAME_MS / 1000 - loop.time()))

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        frames = FrameReader()
        while data := await reader.read(4096):
            now = loop.time() * 1000
            for message in frames.feed(data):
                self.kinds.append(message[0])
                if message[0] == KIND_AUDIO:
                    self.arrived.append(Arrived(now, L16_8K.duration_ms(len(message) - 3)))
        self.closed_by_bridge = True

    def answers(self) -> list[list[Arrived]]:
        bursts: list[list[Arrived]] = []
        for frame_ in self.arrived:
            if not bursts or frame_.at_ms - bursts[-1][-1].at_ms > BURST_GAP_MS:
                bursts.append([])
            bursts[-1].append(frame_)
        return bursts


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def audiosocket_settings(**environ: str) -> Settings:
    # No model key: the embedded local engine answers. Port 0: the listener's port is read back.
    return Settings(scenarios_dir=ROOT / "scenarios", audiosocket_listen=("127.0.0.1:0=+15550100",), environ=environ)


async def test_an_asterisk_call_reaches_the_model_is_paced_and_truncated_by_clock():
    settings = audiosocket_settings()
    runtime = load_runtime(settings)
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    speech = await synthesize_async("What time is it?", 8000, voice="en-us+f3")

    async with running_bridge(settings, runtime) as live:
        [(_, port)] = live.audiosocket.bound
        phone = AudioSocketPhone(port)
        await phone.call(speech, speak_after_agent_ms=800, tail_s=4.0)
        await until(lambda: not live.sessions)  # the hang-up frame ended the call (its teardown follows the close)

    [journal] = journals
    kinds = [entry["event"] for entry in journal]
    [started] = [entry for entry in journal if entry["event"] == "call.started"]
    assert started["call_sid"] == str(phone.call_id) and started["number"] == "+15550100"
    assert started["scenario"] == "default"  # routed by the listener's number through routes.toml
    assert "caller.speech_started" in kinds, kinds  # the caller's L16 8k reached the model's VAD
    assert [entry["digit"] for entry in journal if entry["event"] == "caller.dtmf"] == ["7"]
    [ended] = [entry for entry in journal if entry["event"] == "call.ended"]
    assert ended["reason"] == "caller hung up" and ended["bad_frames"] == 0
    assert phone.closed_by_bridge and phone.kinds[-1] == KIND_HANGUP  # the bridge hung up its end too

    greeting, *later = phone.answers()
    assert later, "the agent answered after the barge-in"
    # Paced: 20 ms frames, never more than the declared lead (plus a frame of scheduling) ahead of
    # the phone's clock — Asterisk plays each as it comes, so a burst would be played too fast.
    # (A model delta's last frame may be short: it is sent as is, and the next follows it by its length.)
    assert all(0 < frame_.ms <= FRAME_MS for frame_ in greeting)
    assert sum(frame_.ms == FRAME_MS for frame_ in greeting) >= 0.9 * len(greeting)
    first = greeting[0].at_ms
    sent_ms = 0.0
    for frame_ in greeting:
        assert sent_ms - (frame_.at_ms - first) <= PLAYOUT_LEAD_MS + FRAME_MS, (sent_ms, frame_.at_ms - first)
        sent_ms += frame_.ms
    # Barge-in: nothing to clear, so the caller heard all that arrived; the bridge's truncation by
    # clock must agree within the stated bound (the lead's error, a frame and the loop's lag).
    [barge_in] = [entry for entry in journal if entry["event"] == "barge_in"]
    [cut] = barge_in["truncations"]
    assert not cut["deleted"]
    heard_ms = sum(frame_.ms for frame_ in greeting)
    assert heard_ms > 500, [round(sum(f.ms for f in burst)) for burst in phone.answers()]
    assert abs(cut["audio_end_ms"] - heard_ms) <= PLAYOUT_LEAD_MS, (cut, heard_ms)


async def test_a_peer_outside_the_allow_list_is_hung_up_on_before_any_call():
    settings = audiosocket_settings(AUDIOSOCKET_ALLOW="10.0.0.0/8")  # configured: loopback is not in it
    async with running_bridge(settings) as live:
        [(_, port)] = live.audiosocket.bound
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(KIND_UUID, uuid.uuid4().bytes))
        answer = await asyncio.wait_for(reader.read(), 5)  # to EOF
        writer.close()
        assert answer == HANGUP_FRAME
        assert live.metrics.streams_forbidden == 1 and live.streams_opened == 0 and live.metrics.calls_started == 0


async def test_max_calls_refuses_the_next_connection_and_eof_ends_a_call():
    settings = Settings(scenarios_dir=ROOT / "scenarios", audiosocket_listen=("127.0.0.1:0=+15550100",), max_calls=1)
    async with running_bridge(settings) as live:
        [(_, port)] = live.audiosocket.bound
        _, first = await asyncio.open_connection("127.0.0.1", port)
        first.write(frame(KIND_UUID, uuid.uuid4().bytes) + frame(KIND_AUDIO, b"\x00" * FRAME_BYTES))
        await until(lambda: live.metrics.calls_started == 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == HANGUP_FRAME
        writer.close()
        assert live.metrics.calls_over_capacity == 1
        first.close()  # the TCP connection goes without a hang-up frame: a hang-up all the same
        await until(lambda: not live.sessions)
        assert live.metrics.calls_started == 1


async def test_the_phone_simulator_calls_an_audiosocket_listener_over_tcp():
    """`telephony-bridge call --carrier audiosocket --url tcp://HOST:PORT`: the simulator's profile
    and TCP driver, against the real listener (no answer request: straight to the stream)."""
    from telephony_bridge.testing.call_cli import add_arguments, run

    settings = audiosocket_settings()
    async with running_bridge(settings) as live:
        [(_, port)] = live.audiosocket.bound
        result = await place_call(f"tcp://127.0.0.1:{port}", carrier="audiosocket", duration_s=3.0,
                                  digits=[(2.0, "5")])
        assert result.error is None and result.connected and not result.protocol_errors, result.summary()
        assert result.connected_url == f"tcp://127.0.0.1:{port}" and result.closed_by == "caller"
        assert len(result.heard_ulaw) > 8000 * 0.5  # the greeting played, as L16 8k converted for the report
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["--carrier", "audiosocket", "--url", f"tcp://127.0.0.1:{port}", "--duration", "1",
                                  "--quiet"])
        assert await run(args) == 0
        assert live.metrics.calls_started == 2


async def test_stopping_the_server_hangs_up_calls_in_progress():
    settings = audiosocket_settings()
    ended: list[Any] = []
    runtime = load_runtime(settings)
    runtime.on_session_end.append(lambda session: ended.append(session.journal.entries[-1]))
    async with running_bridge(settings, runtime) as live:
        [(_, port)] = live.audiosocket.bound
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(KIND_UUID, uuid.uuid4().bytes) + frame(KIND_AUDIO, b"\x00" * FRAME_BYTES))
        await until(lambda: live.metrics.calls_started == 1)
    frames = FrameReader().feed(await asyncio.wait_for(reader.read(), 5))  # everything to EOF
    writer.close()
    assert frames[-1] == HANGUP_FRAME
    [last] = ended
    assert last["event"] == "call.ended" and last["end"] == "shutdown"
