"""A SIP call's media end to end: the ordinary CallSession over an RtpStream, the local engine, RTP.

No SIP here (the signalling is its own branch and its tests use SIPp and baresip): the test plays
the part the signalling plays — it opens the stream from the pool, configures it as an SDP answer
would, runs a `CallSession` over it in the in-process test server's runtime, and ends the call as
a BYE would. The far end is a plain UDP socket that speaks RTP as a phone does: caller speech
(μ-law, paced in real time), an RFC 4733 key press, and it records every packet the bridge sends.

What the caller heard is checked against what the phone received: the bridge says heard = sent −
heard_lead_ms, so its truncation must sit that far behind the agent audio that arrived before the
bridge stopped — within 60 ms (the issue's bound: a frame, the loop's lag on a busy machine).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from telephony_bridge.audio.formats import ULAW_8K, Encoding
from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.carriers.base import CallStarted, Carrier
from telephony_bridge.carriers.sip.codec import SIP_CAPABILITIES, SipCodec
from telephony_bridge.carriers.sip.dtmf import digit_train
from telephony_bridge.carriers.sip.rtp import RtpPacket, build_rtp, parse_rtp
from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server import sip_media
from telephony_bridge.server.carrier_routes import notify_hooks
from telephony_bridge.server.runtime import BridgeRuntime, load_runtime
from telephony_bridge.server.session import CallSession
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.sip_media import RtpPortPool, RtpStream
from telephony_bridge.server.stream_tokens import StreamGrant
from telephony_bridge.testing.servers import running_bridge
from tests.integration.rtp_peer import UdpPeer
from tests.integration.test_sip_media import free_port_range

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FRAME_MS = 20
FRAME_BYTES = 160
# The bridge's comfort silence, marked for this test so the phone can tell it from the agent's own
# silent samples (the mechanism is unchanged: only the byte differs; 0xFE is a near-silent μ-law code).
COMFORT = b"\xfe" * FRAME_BYTES
BURST_GAP_MS = 600  # agent audio after a pause this long is a new answer
TRUNCATION_BOUND_MS = 60


class SipMediaCarrier(Carrier):
    """What the SIP carrier is to the session, media-wise (the signalling branch owns the real one)."""

    name = "sip"
    prefixes = ()
    capabilities = SIP_CAPABILITIES

    @property
    def secured(self) -> bool:
        return True

    def new_codec(self) -> SipCodec:
        return SipCodec()


@dataclass
class Heard:
    at_ms: float
    packet: RtpPacket

    @property
    def agent(self) -> bool:
        return self.packet.payload_type == 0 and self.packet.payload != COMFORT


@dataclass
class RtpPhone:
    """The far end: a UDP socket speaking RTP, as a softphone does."""

    peer: UdpPeer
    bridge: tuple[str, int]
    heard: list[Heard] = field(default_factory=list)
    sequence: int = 1000
    timestamp: int = 80_000

    def agent_ms(self) -> float:
        return sum(FRAME_MS for h in self.heard if h.agent)

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.peer.next(timeout_s=3600)
            self.heard.append(Heard(loop.time() * 1000, parse_rtp(data)))

    def send(self, payload: bytes, pt: int = 0, timestamp: int | None = None, marker: bool = False) -> None:
        ts = self.timestamp if timestamp is None else timestamp
        self.peer.send(build_rtp(pt, self.sequence, ts, 0xCA11E4, payload, marker), self.bridge)
        self.sequence = (self.sequence + 1) & 0xFFFF

    async def talk(self, speech: bytes, speak_after_agent_ms: float, tail_s: float, max_wait_s: float = 15.0) -> None:
        """Silence until the agent has been heard for `speak_after_agent_ms`, then the speech, then
        `tail_s` of silence with the key 7 pressed a second before the end (RFC 4733)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = -(-len(speech) // FRAME_BYTES)
        total = frames + int(tail_s * 1000 / FRAME_MS)
        key = list(digit_train("7"))
        index, spoken_from = 0, None
        while True:
            if spoken_from is None and self.agent_ms() >= speak_after_agent_ms:
                spoken_from = index
            if spoken_from is None and index * FRAME_MS >= max_wait_s * 1000:
                raise AssertionError(f"the agent played under {speak_after_agent_ms} ms in {max_wait_s} s")
            spoken = index - spoken_from if spoken_from is not None else -1
            if spoken >= total:
                return
            if spoken == total - 1000 // FRAME_MS:
                event_ts = self.timestamp
            if spoken >= total - 1000 // FRAME_MS and key:
                tick = key.pop(0)
                if tick.payload is not None:
                    self.send(tick.payload, 101, event_ts, tick.first)
                else:
                    self.send(b"\xff" * FRAME_BYTES)
            else:
                chunk = speech[spoken * FRAME_BYTES : (spoken + 1) * FRAME_BYTES] if spoken >= 0 else b""
                self.send(chunk.ljust(FRAME_BYTES, b"\xff"))
            self.timestamp += FRAME_BYTES
            index += 1
            await asyncio.sleep(max(0.0, start + index * FRAME_MS / 1000 - loop.time()))

    def answers(self) -> list[list[Heard]]:
        bursts: list[list[Heard]] = []
        last_agent_ms = None
        for heard in self.heard:
            if not heard.agent:
                continue
            if last_agent_ms is None or heard.at_ms - last_agent_ms > BURST_GAP_MS:
                bursts.append([])
            bursts[-1].append(heard)
            last_agent_ms = heard.at_ms
        return bursts


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def run_session(runtime: BridgeRuntime, stream: RtpStream, number: str) -> None:
    """What the SIP listener does with an answered INVITE, media-wise."""

    def binding(start: CallStarted) -> StreamGrant:
        scenario = runtime.scenario_for(start.number)
        assert scenario is not None
        return StreamGrant(call_id=start.call_id, scenario=scenario, caller=start.caller, number=start.number)

    runtime.streams_opened += 1
    session = CallSession(stream, runtime, runtime.streams_opened, SipMediaCarrier({}), binding=binding)
    runtime.sessions.add(session)
    notify_hooks(runtime.on_session_start, session)
    stream.begin(CallStarted("sip-e2e-1", "sip-e2e-1", ULAW_8K, caller="+15550199", number=number))
    try:
        await session.run()
    finally:
        runtime.sessions.discard(session)
        notify_hooks(runtime.on_session_end, session)
        await stream.aclose()


async def test_a_sip_call_reaches_the_model_over_rtp_and_is_truncated_at_sent_minus_lead(monkeypatch):
    monkeypatch.setitem(sip_media.SILENCE, Encoding.ULAW, COMFORT)
    settings = Settings(scenarios_dir=ROOT / "scenarios")
    runtime = load_runtime(settings)
    journals: list[list[dict[str, Any]]] = []
    runtime.on_session_end.append(lambda session: journals.append(list(session.journal.entries)))
    speech = ulaw_encode(await synthesize_async("What time is it?", 8000, voice="en-us+f3"))

    async with running_bridge(settings, runtime):
        first, last = free_port_range(2)
        pool = RtpPortPool(first, last, "127.0.0.1", metrics=runtime.metrics)
        stream = pool.open("sip-e2e-1")
        assert stream is not None
        peer = await UdpPeer.open()
        stream.configure(peer.address, 0, 101, "sendrecv")
        bye: list[int] = []
        stream.on_closed = lambda: bye.append(1)
        phone = RtpPhone(peer, ("127.0.0.1", stream.local_port))
        listener = asyncio.create_task(phone.listen())
        call = asyncio.create_task(run_session(runtime, stream, "+15550100"))
        try:
            await phone.talk(speech, speak_after_agent_ms=800, tail_s=4.0)
            stream.hang_up_by_peer()  # the phone's BYE, as the signalling hands it over
            await asyncio.wait_for(call, 15)
        finally:
            listener.cancel()
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            peer.close()
        assert pool.free == pool.capacity  # the port pair came back

    [journal] = journals
    kinds = [entry["event"] for entry in journal]
    [started] = [entry for entry in journal if entry["event"] == "call.started"]
    assert started["call_sid"] == "sip-e2e-1" and started["number"] == "+15550100" and started["caller"] == "+15550199"
    assert "caller.speech_started" in kinds, kinds  # the caller's RTP reached the model's VAD
    assert [entry["digit"] for entry in journal if entry["event"] == "caller.dtmf"] == ["7"]  # once, of 7 packets
    [ended] = [entry for entry in journal if entry["event"] == "call.ended"]
    assert ended["reason"] == "caller hung up" and ended["bad_frames"] == 0
    assert bye == []  # the phone hung up: the bridge sends no BYE of its own

    packets = [h.packet for h in phone.heard]
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in pairwise(packets))
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF >= 160 for a, b in pairwise(packets))
    greeting, *later = phone.answers()
    assert later, "the agent answered after the barge-in"
    assert greeting[0].packet.marker  # a talk spurt starts with the marker bit
    # Barge-in: the bridge stopped sending, and truncated at what it had sent minus the far end's
    # lead (RTT/2 ≈ 0 here, plus the 40 ms allowance).
    [barge_in] = [entry for entry in journal if entry["event"] == "barge_in"]
    [cut] = barge_in["truncations"]
    assert not cut["deleted"]
    received_ms = len(greeting) * FRAME_MS
    assert received_ms > 500, [len(burst) * FRAME_MS for burst in phone.answers()]
    heard_ms = received_ms - stream.heard_lead_ms
    assert abs(cut["audio_end_ms"] - heard_ms) <= TRUNCATION_BOUND_MS, (cut, received_ms, stream.heard_lead_ms)
