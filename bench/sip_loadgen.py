"""Load generator for SIP calls: N phones calling `telephony-bridge serve --sip`, in one process.

    python -m bench.sip_loadgen --sip 127.0.0.1:S --calls N --duration S --out results.json

The phones sit behind one SIP trunk, as a carrier's calls do: one UDP socket sends every call's
INVITE (PCMU, PCMA and telephone-event offered; testing/sip_phone.py builds it, with the bridge's
own sans-I/O SIP) and receives every answer, dispatched by Call-ID. Each call then does what a
phone does: ACK, wait for the agent's first audio, send 160-byte μ-law RTP every 20 ms from its
own RTP socket with a continuous sequence and timestamp, record every packet the bridge sends, and
hang up with a BYE after `--duration` seconds of its own audio. A BYE from the bridge is answered
and counted as an error (the bench scenario never hangs up); a call that fails after its set-up
(no audio, say) still hangs up, so it does not run on in the bridge through the measurement; a
200 OK that comes again is ACKed again (RFC 3261 §13.2.2.4: the first ACK was lost).

The results have bench.loadgen's shape, so bench/load_analysis.py joins them with the engine's
timestamps unchanged: uplink = the engine's receive time of the k-th append − the send time of the
k-th RTP packet (one packet, one append); downlink = the arrival of the RTP packet that starts the
engine's j-th delta − the engine's send time of that delta. The bridge paces RTP itself, so the
j-th delta starts in the call's (j · delta_ms/20)-th packet of agent audio (comfort silence is not
counted), and the downlink figure includes the wait for the stream's next 20 ms tick (0–20 ms)
when the delta arrives before it — Twilio's figure ends where its media server takes over the
pacing. There are no marks on SIP.
"First audio" is measured from the INVITE, so it includes the call's set-up.

Pacing and the caller's tone are bench/phones.py's, shared with bench.loadgen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import secrets
import sys
import time
from array import array
from pathlib import Path


if __package__ in (None, ""):  # `python bench/sip_loadgen.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import phones  # noqa: E402
from bench.common import FRAME_S, ULAW_FRAME_BYTES, pack_ints, pack_times  # noqa: E402
from bench.phones import PhasePacer, bucket_of, caller_ulaw  # noqa: E402
from telephony_bridge.carriers.sip.dialog import Dialog, new_branch, response_to  # noqa: E402
from telephony_bridge.carriers.sip.message import SipParseError, SipRequest, SipResponse, parse_message  # noqa: E402
from telephony_bridge.carriers.sip.rtp import build_rtp  # noqa: E402
from telephony_bridge.carriers.sip.sdp import NoCommonCodec, parse_sdp, read_answer  # noqa: E402
from telephony_bridge.testing.sip_phone import (  # noqa: E402
    SipInbox,
    SipPhoneResult,
    build_invite,
    invite_until_final,
    phone_contact,
)

FIRST_AUDIO_TIMEOUT_S = 15.0
BYE_RETRY_S = 0.5
BYE_TIMEOUT_S = 5.0
CALLER = "+15550199"
NUMBER = "+15550100"
COMFORT_SILENCE = b"\xff" * ULAW_FRAME_BYTES


class Phone(asyncio.DatagramProtocol):
    """One call's RTP socket: records the agent audio that arrives."""

    def __init__(self, call: SipCall) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        call = self.call
        if len(data) < 12 or data[1] & 0x7F != 0:
            return
        if data[12:] == COMFORT_SILENCE:
            return
        t = time.monotonic()
        index = call.agent_frames
        call.agent_frames = index + 1
        if index % call.frames_per_delta == 0:  # this packet starts a model delta
            call.recv_t.append(t)
            call.recv_len.append(call.delta_bytes)
        if not call.first_media.is_set():
            call.first_media.set()


class SipCall:
    __slots__ = (
        "agent_frames", "bridge", "bucket", "delta_bytes", "done", "error", "first_media", "frames_per_delta",
        "frames_total", "hung_up_by_bridge", "index", "k", "recv_len", "recv_t", "sched_t", "send_t", "sequence", "sid", "ssrc",
        "t_closed", "t_media_start", "t_start", "t_stop", "t_webhook", "timestamp", "transport",
    )

    def __init__(self, index: int, duration_s: float, bucket: int, delta_ms: int) -> None:
        self.index = index
        self.sid = f"sip-{index:06d}-{secrets.token_hex(6)}"
        self.frames_total = max(1, int(round(duration_s / FRAME_S)))
        self.bucket = bucket
        self.delta_bytes = delta_ms * 8
        self.frames_per_delta = max(1, delta_ms // 20)
        self.transport: asyncio.DatagramTransport | None = None
        self.bridge: tuple[str, int] = ("127.0.0.1", 0)
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.k = 0
        self.agent_frames = 0
        self.send_t, self.sched_t, self.recv_t = array("d"), array("d"), array("d")
        self.recv_len = array("i")
        self.first_media = asyncio.Event()
        self.done = asyncio.Event()
        self.error: str | None = None
        self.hung_up_by_bridge = False
        self.t_webhook = self.t_start = self.t_media_start = self.t_stop = self.t_closed = math.nan

    def to_json(self) -> dict:
        return {
            "index": self.index, "sid": self.sid, "error": self.error, "close_code": None,
            "frames_planned": self.frames_total, "frames_sent": len(self.send_t),
            "send_t": pack_times(self.send_t), "sched_t": pack_times(self.sched_t),
            "media_received": len(self.recv_t), "recv_t": pack_times(self.recv_t), "recv_len": pack_ints(self.recv_len),
            "marks_received": 0, "marks_echoed": 0, "clears": 0,
            "t_webhook": self.t_webhook, "t_start": self.t_start, "t_media_start": self.t_media_start,
            "t_stop": self.t_stop, "t_closed": self.t_closed,
        }


class Pacer(PhasePacer[SipCall]):
    """Each call's next RTP packet on its bucket's schedule."""

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self.frames = frames

    async def send(self, call: SipCall, due: float) -> None:
        k = call.k
        packet = build_rtp(0, call.sequence, call.timestamp, call.ssrc, self.frames[k % len(self.frames)], k == 0)
        call.sequence = (call.sequence + 1) & 0xFFFF
        call.timestamp = (call.timestamp + ULAW_FRAME_BYTES) & 0xFFFFFFFF
        call.sched_t.append(due)
        call.send_t.append(time.monotonic())
        assert call.transport is not None
        call.transport.sendto(packet, call.bridge)
        call.k = k + 1
        if call.k >= call.frames_total:
            self.remove(call)
            call.done.set()


class Trunk(asyncio.DatagramProtocol):
    """The one SIP socket every call's signalling goes through, dispatched by Call-ID."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.inboxes: dict[str, SipInbox] = {}
        self.strays = 0  # datagrams for no call of ours, or not SIP

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport is not a subclass
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            call_id = parse_message(data).headers.get("Call-ID") or ""
        except SipParseError:
            call_id = ""
        inbox = self.inboxes.get(call_id)
        if inbox is None:
            self.strays += 1
            return
        inbox.put_nowait((data, addr))

    def send(self, message: SipRequest | SipResponse, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(bytes(message), to)


async def _hear_bridge(call: SipCall, inbox: SipInbox, trunk: Trunk, pacer: Pacer, ack: SipRequest,
                       bridge_sip: tuple[str, int]) -> None:
    """During the call: ACK the INVITE's 200 again if it comes again (our ACK was lost: RFC 3261
    §13.2.2.4), and answer a BYE from the bridge (the call is over, an error here)."""
    while True:
        data, addr = await inbox.get()
        try:
            message = parse_message(data)
        except SipParseError:
            continue
        if isinstance(message, SipResponse) and 200 <= message.status < 300 and "INVITE" in (message.headers.get("CSeq") or ""):
            trunk.send(ack, bridge_sip)
        elif isinstance(message, SipRequest) and message.method == "BYE":
            trunk.send(response_to(message, 200, "OK"), addr)
            call.error = call.error or "the bridge hung up"
            call.hung_up_by_bridge = True
            pacer.remove(call)
            call.done.set()
            return


async def _bye(call: SipCall, dialog: Dialog, inbox: SipInbox, trunk: Trunk, bridge_sip: tuple[str, int]) -> None:
    """BYE, sent again every 0.5 s until the bridge's final answer (RFC 3261's timer E, simplified)."""
    bye = dialog.request("BYE", f"SIP/2.0/UDP 127.0.0.1:{trunk.port};branch={new_branch()};rport")
    deadline = time.monotonic() + BYE_TIMEOUT_S
    while time.monotonic() < deadline:
        trunk.send(bye, bridge_sip)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BYE_RETRY_S):
                while True:
                    data, addr = await inbox.get()
                    with contextlib.suppress(SipParseError):
                        message = parse_message(data)
                        final = isinstance(message, SipResponse) and message.status >= 200
                        if final and "BYE" in (message.headers.get("CSeq") or ""):
                            if message.status >= 300:
                                call.error = call.error or f"BYE answered {message.status} {message.reason}"
                            return
                        if isinstance(message, SipRequest) and message.method == "BYE":  # both hung up at once
                            trunk.send(response_to(message, 200, "OK"), addr)
    call.error = call.error or f"BYE not answered within {BYE_TIMEOUT_S:.0f} s"


async def run_call(call: SipCall, args: argparse.Namespace, pacer: Pacer, trunk: Trunk) -> None:
    loop = asyncio.get_running_loop()
    now = time.monotonic
    call.transport, _ = await loop.create_datagram_endpoint(lambda: Phone(call), local_addr=("127.0.0.1", 0))
    rtp_port = call.transport.get_extra_info("sockname")[1]
    inbox: SipInbox = asyncio.Queue()
    trunk.inboxes[call.sid] = inbox
    listener: asyncio.Task[None] | None = None
    dialog: Dialog | None = None
    bridge_sip = args.sip_address
    try:
        invite = build_invite(f"sip:{NUMBER}@{bridge_sip[0]}:{bridge_sip[1]}", caller=CALLER, sip_port=trunk.port,
                              rtp_port=rtp_port, call_id=call.sid)
        call.t_webhook = now()
        assert trunk.transport is not None
        setup = SipPhoneResult()
        answer = await invite_until_final(trunk.transport, inbox, invite, bridge_sip, setup)
        if answer is None:
            call.error = setup.error or f"call refused: {setup.status} {setup.reason}"
            return
        dialog = Dialog.as_uac(invite, answer, phone_contact(trunk.port))
        ack = dialog.ack(f"SIP/2.0/UDP 127.0.0.1:{trunk.port};branch={new_branch()};rport", 1)
        trunk.send(ack, bridge_sip)
        listener = asyncio.create_task(_hear_bridge(call, inbox, trunk, pacer, ack, bridge_sip))
        try:
            media = read_answer(parse_sdp(answer.body))
        except (SipParseError, NoCommonCodec) as exc:
            call.error = f"the bridge's SDP answer is unusable: {exc}"
            return
        call.bridge = (media.remote_host, media.remote_port)
        call.t_start = now()
        if not await _first_audio(call):
            call.error = call.error or f"no model audio within {FIRST_AUDIO_TIMEOUT_S:.0f} s of the call"
            return
        call.t_media_start = now()
        pacer.add(call)
        await call.done.wait()
        call.t_stop = now()
    except OSError as exc:
        call.error = call.error or f"{type(exc).__name__}: {exc}"
    finally:
        if listener is not None:
            listener.cancel()
        if dialog is not None and not call.hung_up_by_bridge:  # set up, failed or not: hang up
            await _bye(call, dialog, inbox, trunk, bridge_sip)
            call.t_closed = now()
        trunk.inboxes.pop(call.sid, None)
        call.transport.close()


async def _first_audio(call: SipCall) -> bool:
    """Wait for the agent's first packet; False on the timeout or when the bridge hung up first."""
    heard, ended = asyncio.ensure_future(call.first_media.wait()), asyncio.ensure_future(call.done.wait())
    try:
        await asyncio.wait((heard, ended), timeout=FIRST_AUDIO_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        heard.cancel()
        ended.cancel()
    return call.first_media.is_set() and not call.done.is_set()


async def run(args: argparse.Namespace) -> dict:
    host, _, port = args.sip.rpartition(":")
    args.sip_address = (host, int(port))
    loop = asyncio.get_running_loop()
    trunk_transport, trunk = await loop.create_datagram_endpoint(Trunk, local_addr=("127.0.0.1", 0))
    pacer = Pacer(caller_ulaw())
    pacer.start()
    calls: list[SipCall] = []
    cpu0, wall0 = time.process_time(), time.monotonic()
    random.seed(args.seed)

    async def after(delay_s: float, call: SipCall) -> None:
        await asyncio.sleep(delay_s)
        await run_call(call, args, pacer, trunk)

    for index in range(args.calls):
        calls.append(SipCall(index, args.duration, bucket_of(index), args.delta_ms))
    await asyncio.gather(*(after(args.ramp * c.index / max(1, args.calls), c) for c in calls))
    await pacer.stop()
    trunk_transport.close()
    return {
        "calls": [c.to_json() for c in calls],
        "sip_strays": trunk.strays,
        "loadgen_cpu_s": time.process_time() - cpu0,
        "loadgen_wall_s": time.monotonic() - wall0,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.sip_loadgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sip", required=True, help="the bridge's SIP listener (UDP), HOST:PORT")
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of caller audio per call")
    parser.add_argument("--ramp", type=float, default=3.0, help="spread call starts over this many seconds")
    parser.add_argument("--delta-ms", type=int, default=100, help="the engine's model audio per delta (the join)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="write the JSON results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    return phones.main(build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
