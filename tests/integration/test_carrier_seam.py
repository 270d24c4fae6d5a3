"""The carrier seam, shown with a carrier unlike Twilio: L16 16 kHz in binary frames, no marks.

A fake carrier (tests/carriers/wideband.py) is added to the real server by one line, and a call
over it runs the project's receptionist scenario against the embedded local engine: the caller's
speech reaches the model through a 16k→24k conversion, the agent's audio reaches the phone as
L16 16 kHz paced by the bridge, and a barge-in truncates the greeting by the bridge's clock at
what the phone actually played.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from telephony_bridge.audio.formats import L16_16K
from telephony_bridge.carriers.registry import CARRIERS
from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.carriers.wideband import PLAYOUT_LEAD_MS, ClearingWidebandCarrier, WidebandCarrier

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FRAME_MS = 20
FRAME_BYTES = L16_16K.bytes_per_ms * FRAME_MS  # 640
BURST_GAP_MS = 300  # agent audio arriving after a pause this long is a new answer


@dataclass
class Played:
    """One agent frame as the phone played it: from `start` for `ms` (cut short by a clear)."""

    arrived: float
    start: float
    ms: float
    received_ms: float


@dataclass
class WidebandPhone:
    """The simulator profile of the fake carrier: answers like the carrier, streams the caller in
    real time, and plays what it receives through a jitter buffer of PLAYOUT_LEAD_MS, as a phone
    would, keeping exactly what it played."""

    base_url: str
    prefix: str
    played: list[Played] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    close_code: int | None = None

    async def call(self, caller_audio: bytes, duration_s: float) -> None:
        call_id = "wb-" + os.urandom(8).hex()
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.post(f"{self.base_url}{self.prefix}/incoming-call",
                                     data={"call": call_id, "from": "+15550199", "to": "+15550100"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json"), answer.text
        async with connect(answer.json()["stream"], compression=None, open_timeout=5, close_timeout=5) as ws:
            await ws.send(orjson.dumps({"event": "start", "call": call_id}).decode())
            receiver = asyncio.create_task(self._receive(ws))
            await self._stream(ws, caller_audio, duration_s)
            await ws.send('{"event":"stop"}')
            await asyncio.wait_for(receiver, 10)
            self.close_code = ws.close_code

    async def _stream(self, ws: Any, audio: bytes, duration_s: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = int(duration_s * 1000 / FRAME_MS)
        audio = audio.ljust(frames * FRAME_BYTES, b"\x00")
        for index in range(frames):
            await ws.send(audio[index * FRAME_BYTES:(index + 1) * FRAME_BYTES])
            await asyncio.sleep(max(0.0, start + (index + 1) * FRAME_MS / 1000 - loop.time()))

    async def _receive(self, ws: Any) -> None:
        loop = asyncio.get_running_loop()
        play_end = 0.0
        async for message in ws:
            now = loop.time() * 1000
            if isinstance(message, bytes):
                start = max(now + PLAYOUT_LEAD_MS, play_end)
                play_end = start + L16_16K.duration_ms(len(message))
                length_ms = L16_16K.duration_ms(len(message))
                self.played.append(Played(now, start, length_ms, length_ms))
            elif orjson.loads(message).get("event") == "clear":
                self.clears.append(now)
                for frame in self.played:  # the jitter buffer is dropped: what was not yet played never is
                    frame.ms = min(frame.ms, max(0.0, now - frame.start))
                play_end = now

    def answers(self) -> list[list[Played]]:
        """The agent's frames, grouped by answer (a pause in arrivals separates two)."""
        bursts: list[list[Played]] = []
        for frame in self.played:
            if not bursts or frame.arrived - bursts[-1][-1].arrived > BURST_GAP_MS:
                bursts.append([])
            bursts[-1].append(frame)
        return bursts


@pytest.mark.parametrize("carrier", [WidebandCarrier, ClearingWidebandCarrier], ids=["no clear", "clear"])
async def test_a_new_carrier_with_l16_frames_and_no_marks_truncates_by_clock(carrier):
    settings = Settings(scenarios_dir=ROOT / "scenarios")  # no key: the embedded local engine answers
    runtime = load_runtime(settings)
    runtime.carrier_types = (*CARRIERS, carrier)  # the one registry line
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    caller = (b"\x00" * FRAME_BYTES * 75) + await synthesize_async("What time is it?", 16000, voice="en-us+f3")

    async with running_bridge(settings, runtime) as live:
        phone = WidebandPhone(live.settings.base_url, carrier.prefixes[0])
        await phone.call(caller, duration_s=7.0)

    [journal] = journals
    kinds = [entry["event"] for entry in journal]
    assert "caller.speech_started" in kinds, kinds  # the caller's L16 16k reached the model's VAD
    [barge_in] = [entry for entry in journal if entry["event"] == "barge_in"]
    [cut] = barge_in["truncations"]
    assert not cut["deleted"]
    greeting, *later = phone.answers()
    heard_ms = sum(frame.ms for frame in greeting)
    sent_ms = sum(frame.received_ms for frame in greeting)
    # What the phone played of the greeting is where the model's conversation was cut, within a
    # frame and the loop's lag: by clock, with no mark from the carrier.
    assert abs(cut["audio_end_ms"] - heard_ms) <= 40, (cut, heard_ms, sent_ms)
    if carrier.capabilities.clear:
        assert len(phone.clears) == 1 and heard_ms < sent_ms  # its buffer dropped at the clear
    else:
        assert phone.clears == [] and heard_ms == sent_ms  # no clear: all it was sent, it played
    assert heard_ms > 500 and later, "the greeting played, was cut, and the agent answered afterwards"
    assert phone.close_code == 1000
