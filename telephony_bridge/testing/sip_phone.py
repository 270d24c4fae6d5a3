"""A SIP phone for the simulator: `telephony-bridge call --sip sip:+15550100@127.0.0.1:5062`.

One call over UDP, built on the bridge's own sans-I/O SIP (carriers/sip/): INVITE with a PCMU offer,
ACK, RTP both ways on a 20 ms clock (the caller's WAV, then silence), BYE when the caller's audio
is over and the agent has been quiet for a while (or after a fixed duration); a BYE from the bridge
ends it too. What the caller heard is kept (μ-law) for the summary and `--heard-wav`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from telephony_bridge.audio.g711 import ulaw_decode, ulaw_encode
from telephony_bridge.carriers.sip.dialog import Dialog, new_branch, new_tag, response_to
from telephony_bridge.carriers.sip.fields import parse_uri
from telephony_bridge.carriers.sip.message import Headers, SipParseError, SipRequest, SipResponse, parse_message
from telephony_bridge.carriers.sip.rtp import RtpError, RtpSender, parse_rtp
from telephony_bridge.carriers.sip.sdp import NoCommonCodec, build_offer, parse_sdp, read_answer

__all__ = ["SipInbox", "SipPhoneResult", "build_invite", "invite_until_final", "phone_contact", "sip_phone_call"]

FRAME_MS: Final = 20
FRAME_BYTES: Final = 160  # μ-law, 20 ms
SILENCE: Final = b"\xff" * FRAME_BYTES
INVITE_RETRY_S: Final = 0.5
ANSWER_TIMEOUT_S: Final = 30.0
LOUD: Final = 64  # a decoded sample louder than this is the agent speaking, not comfort silence


@dataclass
class SipPhoneResult:
    status: int | None = None  # the INVITE's final status
    reason: str = ""
    connected: bool = False
    ended_by: str = ""  # "caller" or "bridge"
    sent_ms: float = 0.0
    heard_ulaw: bytearray = field(default_factory=bytearray)
    error: str | None = None

    @property
    def heard_speech_ms(self) -> float:
        """How much of what was heard is the agent speaking (louder than comfort silence)."""
        samples = np.frombuffer(ulaw_decode(bytes(self.heard_ulaw)), dtype="<i2")
        return float(np.count_nonzero(np.abs(samples.astype(np.int32)) > LOUD)) / 8.0

    def summary(self) -> str:
        if self.error:
            return f"call failed: {self.error}"
        if not self.connected:
            return f"call refused: {self.status} {self.reason}"
        return (
            f"call connected ({self.status} {self.reason}); caller sent {self.sent_ms / 1000:.1f} s, heard "
            f"{len(self.heard_ulaw) / 8000:.1f} s ({self.heard_speech_ms / 1000:.1f} s of agent speech); "
            f"hung up by the {self.ended_by}"
        )


SipInbox = asyncio.Queue[tuple[bytes, tuple[str, int]]]  # one call's datagrams, as received


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: SipInbox = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


async def sip_phone_call(
    uri: str,
    *,
    caller: str = "+15550199",
    audio_ulaw: bytes = b"",
    duration_s: float | None = None,
    hangup_after_silence_s: float = 2.5,
    max_duration_s: float = 60.0,
) -> SipPhoneResult:
    result = SipPhoneResult()
    loop = asyncio.get_running_loop()
    try:
        target = parse_uri(uri)
    except SipParseError as exc:
        result.error = f"bad SIP URI: {exc.reason}"
        return result
    bridge = (target.host, target.port or 5060)
    sip_transport, sip = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    rtp_transport, rtp = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    try:
        local_sip = sip_transport.get_extra_info("sockname")[1]
        local_rtp = rtp_transport.get_extra_info("sockname")[1]
        invite = build_invite(uri, caller=caller, sip_port=local_sip, rtp_port=local_rtp)
        answer = await invite_until_final(sip_transport, sip.queue, invite, bridge, result)
        if answer is None:
            return result
        dialog = Dialog.as_uac(invite, answer, phone_contact(local_sip))
        via = f"SIP/2.0/UDP 127.0.0.1:{local_sip};branch={new_branch()};rport"
        sip_transport.sendto(bytes(dialog.ack(via, 1)), bridge)
        try:
            media = read_answer(parse_sdp(answer.body))
        except (SipParseError, NoCommonCodec) as exc:
            result.error = f"the bridge's SDP answer is unusable: {exc}"
            return result
        result.connected = True
        await _talk(rtp_transport, rtp, sip_transport, sip, (media.remote_host, media.remote_port), audio_ulaw,
                    duration_s, hangup_after_silence_s, max_duration_s, result)  # fmt: skip
        if result.ended_by == "caller":
            bye = dialog.request("BYE", f"SIP/2.0/UDP 127.0.0.1:{local_sip};branch={new_branch()};rport")
            sip_transport.sendto(bytes(bye), bridge)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    while not isinstance(await _next_sip(sip.queue), SipResponse):
                        pass
        return result
    finally:
        sip_transport.close()
        rtp_transport.close()


def phone_contact(sip_port: int) -> str:
    return f"<sip:phone@127.0.0.1:{sip_port}>"


def build_invite(uri: str, *, caller: str, sip_port: int, rtp_port: int, call_id: str | None = None) -> SipRequest:
    """An INVITE from 127.0.0.1 with a PCMU/PCMA/telephone-event offer for `rtp_port`."""
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{sip_port};branch={new_branch()};rport")
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:{caller}@127.0.0.1>;tag={new_tag()}")
    headers.add("To", f"<{uri}>")
    headers.add("Call-ID", call_id or secrets.token_hex(12))
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", phone_contact(sip_port))
    headers.add("Content-Type", "application/sdp")
    return SipRequest("INVITE", uri, headers, build_offer("127.0.0.1", rtp_port, int(time.time())))


async def _next_sip(inbox: SipInbox) -> SipRequest | SipResponse | None:
    data, _ = await inbox.get()
    try:
        return parse_message(data)
    except SipParseError:
        return None


async def invite_until_final(
    transport: asyncio.DatagramTransport,
    inbox: SipInbox,
    invite: SipRequest,
    bridge: tuple[str, int],
    result: SipPhoneResult,
) -> SipResponse | None:
    """Send the INVITE (again every 0.5 s until something comes back) until a final response, read
    from `inbox` (this call's datagrams); a 2xx is returned, anything else is ACKed and noted in
    `result`."""
    provisional = False
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    transport.sendto(bytes(invite), bridge)
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(INVITE_RETRY_S):
                message = await _next_sip(inbox)
        except TimeoutError:
            if not provisional:
                transport.sendto(bytes(invite), bridge)
            continue
        if not isinstance(message, SipResponse):
            continue
        if message.status < 200:
            provisional = True
            continue
        result.status, result.reason = message.status, message.reason
        if message.status >= 300:
            ack = SipRequest("ACK", invite.uri, Headers())
            for name in ("Via", "From", "Call-ID"):
                ack.headers.add(name, invite.headers.get(name) or "")
            ack.headers.add("To", message.headers.get("To") or "")
            ack.headers.add("CSeq", "1 ACK")
            transport.sendto(bytes(ack), bridge)
            return None
        return message
    result.error = f"no final answer to the INVITE within {ANSWER_TIMEOUT_S:g} s"
    return None


async def _talk(
    rtp_transport: asyncio.DatagramTransport,
    rtp: _Udp,
    sip_transport: asyncio.DatagramTransport,
    sip: _Udp,
    remote: tuple[str, int],
    audio: bytes,
    duration_s: float | None,
    quiet_s: float,
    max_s: float,
    result: SipPhoneResult,
) -> None:
    """RTP out on a 20 ms clock, RTP in kept; until the end rule or the bridge's BYE."""
    loop = asyncio.get_running_loop()
    sender = RtpSender()
    start = loop.time()
    frames = 0
    last_speech = start
    audio_frames = -(-len(audio) // FRAME_BYTES)
    while True:
        now = loop.time()
        elapsed = now - start
        if duration_s is not None and elapsed >= duration_s:
            break
        if duration_s is None and (
            elapsed >= audio_frames * FRAME_MS / 1000 + max_s
            or (frames >= audio_frames and now - last_speech >= quiet_s and elapsed > quiet_s)
        ):
            break
        chunk = SILENCE
        if frames < audio_frames:
            chunk = audio[frames * FRAME_BYTES : (frames + 1) * FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
        rtp_transport.sendto(sender.audio(0, chunk, voiced=frames < audio_frames), remote)
        frames += 1
        result.sent_ms = frames * FRAME_MS
        while not rtp.queue.empty():
            data, _ = rtp.queue.get_nowait()
            with contextlib.suppress(RtpError):
                packet = parse_rtp(data)
                if packet.payload_type == 0:
                    result.heard_ulaw += packet.payload
                    if any(byte not in (0xFF, 0x7F, 0xFE, 0x7E) for byte in packet.payload):
                        last_speech = now
        while not sip.queue.empty():
            data, addr = sip.queue.get_nowait()
            with contextlib.suppress(SipParseError):
                message = parse_message(data)
                if isinstance(message, SipRequest) and message.method == "BYE":
                    sip_transport.sendto(bytes(response_to(message, 200, "OK")), addr)
                    result.ended_by = "bridge"
                    return
        await asyncio.sleep(max(0.0, start + frames * FRAME_MS / 1000 - loop.time()))
    result.ended_by = "caller"


def encode_caller_audio(pcm16_8k: bytes) -> bytes:
    return ulaw_encode(pcm16_8k)
