"""The RTP side of SIP calls: a pool of UDP port pairs, and one `RtpStream` per call.

The SIP signalling (its own modules) opens a stream for each call it answers or places, points it
at the far end from the negotiated SDP (`configure`, again on every re-INVITE), and runs the
ordinary `CallSession` over it: an `RtpStream` is a `MediaTransport` (server/media_transport.py)
whose messages `SipCodec` reads (carriers/sip/codec.py has their table). The session never knows
it is RTP.

Receiving: one datagram socket for RTP (even port) and one for RTCP (+1), read with the loop's
`add_reader` — no transport objects, nothing per packet but the parse. Symmetric RTP (RFC 4961):
the stream latches to the source of the first valid packet (it sends there from then on, whatever
SDP said: NAT) and drops and counts packets from anyone else. Packets go through a small jitter
buffer (carriers/sip/jitter.py); losses are concealed with silence; telephone-events become key
presses once each (carriers/sip/dtmf.py).

Sending, and what the caller heard: one 20 ms clock per stream (`SendClock`: monotonic, no drift,
no bursts) sends the next queued frame, a DTMF event packet, or comfort silence, with a
continuous sequence and timestamp and the marker bit at each talk spurt. The session's `Playout`
does *not* pace: SIP's capabilities say marks (carriers/sip/codec.py), so the Playout writes model
audio as it comes, with a mark after each piece, and this stream is the only pacer — two pacers in
series would either add a frame of latency or, when their phases slip, insert a silent frame in
the middle of speech. A mark is echoed when the audio before it has played at the far end by the
stream's estimate: the moment its last byte left in a packet (so the queue in front of it counts)
plus `heard_lead_ms` = RTT/2 (RTCP) + SIP_JITTER_ALLOWANCE_MS (the far end's jitter buffer,
default 40). So heard = sent − heard_lead_ms, exactly by the stream's clock; the error is the
allowance's error against the far end's real buffer, plus the loop's lag. Barge-in's clear empties
the queue: the next tick sends silence (within one packet). On hold (direction without send) the
clock keeps the timestamp moving and the queue waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from starlette.websockets import WebSocketState

from telephony_bridge.audio.formats import AudioFormat, Encoding
from telephony_bridge.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from telephony_bridge.carriers.base import CallStarted
from telephony_bridge.carriers.sip.codec import CLEAR, DTMF_PREFIX, MARK_PREFIX, audio_format_for, start_message
from telephony_bridge.carriers.sip.dtmf import DIGITS, DtmfReceiver, EventTick, digit_train
from telephony_bridge.carriers.sip.jitter import JitterBuffer, Lost, Outcome
from telephony_bridge.carriers.sip.rtcp import (
    PacketType,
    ReceiverStats,
    SenderInfo,
    build_bye,
    build_report,
    ntp_timestamp,
    parse_rtcp,
    round_trip_ms,
)
from telephony_bridge.carriers.sip.rtp import RtpError, RtpPacket, RtpSender, parse_rtp
from telephony_bridge.carriers.sip.sending import OutboundAudio, SendClock
from telephony_bridge.server.asgi import TRANSPORT_ABORT_SCOPE_KEY
from telephony_bridge.server.metrics import BridgeMetrics

__all__ = [
    "DIRECTIONS",
    "JITTER_ALLOWANCE_ENV",
    "RTP_PORTS_ENV",
    "RtpPortPool",
    "RtpStream",
    "parse_port_range",
]

log = logging.getLogger("telephony_bridge.sip")

RTP_PORTS_ENV: Final = "RTP_PORTS"
JITTER_ALLOWANCE_ENV: Final = "SIP_JITTER_ALLOWANCE_MS"
DEFAULT_JITTER_ALLOWANCE_MS: Final = 40.0
DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
SAMPLES_PER_FRAME: Final = 160  # 20 ms at 8 kHz
FRAME_BYTES: Final = 160  # of G.711
SILENCE: Final[Mapping[Encoding, bytes]] = {Encoding.ULAW: b"\xff" * FRAME_BYTES, Encoding.ALAW: b"\xd5" * FRAME_BYTES}
MAX_DATAGRAM: Final = 2048
READS_PER_WAKE: Final = 32  # datagrams read per readiness callback: a flood cannot starve the loop
MAX_INBOUND_FRAMES: Final = 50  # a second of caller audio waiting for the session; beyond, dropped
MAX_OUTBOUND_S: Final = 300  # model audio queued ahead of the clock; beyond, refused (and counted)
MAX_CONCEALED: Final = 5  # a longer gap is concealed with this much silence (it was not 20 ms loss)
RTCP_INTERVAL_S: Final = 5.0
RTCP_FIRST_S: Final = 1.0  # the first report early: RTT is known a few seconds sooner
PROBLEMS_LOGGED: Final = 10  # per stream; then every 100th
_DISCONNECTED: Final = {"type": "websocket.disconnect", "code": 1000}
_ECHO_WAKE_EARLY_S: Final = 0.0005
_UNSPECIFIED: Final = frozenset({"0.0.0.0", "::"})  # old peers' hold (RFC 2543 c=0.0.0.0): send nothing

Address = tuple[str, int]
Clock = Callable[[], float]


def parse_port_range(text: str) -> tuple[int, int]:
    """``20000-20999`` → (20000, 20999); ValueError naming the problem."""
    first, sep, last = text.strip().partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ValueError(f"{RTP_PORTS_ENV}: {text!r} is not FIRST-LAST")
    low, high = int(first), int(last)
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"{RTP_PORTS_ENV}: {text!r}: ports 1024-65535, FIRST below LAST (two at least)")
    return low, high


def _transcoder(source: AudioFormat, target: AudioFormat) -> Callable[[bytes], bytes] | None:
    """μ-law ↔ A-law for a call whose codec changed by re-INVITE (its session keeps its format)."""
    if source == target:
        return None
    if source.encoding is Encoding.ULAW:
        return lambda audio: alaw_encode(ulaw_decode(audio))
    return lambda audio: ulaw_encode(alaw_decode(audio))


class RtpPortPool:
    """RTP port pairs (even RTP port, RTCP on the next) between `first` and `last`, one per call."""

    def __init__(
        self,
        first: int = 20000,
        last: int = 20999,
        host: str = "127.0.0.1",
        metrics: BridgeMetrics | None = None,
        jitter_allowance_ms: float = DEFAULT_JITTER_ALLOWANCE_MS,
        clock: Clock | None = None,
        paced: bool = True,
    ) -> None:
        first += first % 2
        if last - first < 1:
            raise ValueError(f"{RTP_PORTS_ENV}: {first}-{last} holds no even/odd port pair")
        self.host = host
        self.metrics = metrics if metrics is not None else BridgeMetrics()
        self.jitter_allowance_ms = jitter_allowance_ms
        # Tests drive the clock by hand (`paced=False`: nothing ticks by itself; call `tick(now)`).
        self.clock = clock
        self.paced = paced
        self._free: deque[int] = deque(range(first, last, 2))
        self.capacity = len(self._free)
        self.streams: dict[int, RtpStream] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, str], host: str, metrics: BridgeMetrics | None = None) -> RtpPortPool:
        first, last = parse_port_range(config.get(RTP_PORTS_ENV) or "20000-20999")
        allowance = float(config.get(JITTER_ALLOWANCE_ENV) or DEFAULT_JITTER_ALLOWANCE_MS)
        if not 0 <= allowance <= 1000:
            raise ValueError(f"{JITTER_ALLOWANCE_ENV}: {allowance:g} ms is not between 0 and 1000")
        return cls(first, last, host, metrics, allowance)

    @property
    def free(self) -> int:
        return len(self._free)

    def open(self, call_id: str) -> RtpStream | None:
        """A stream on a free port pair, or None when every pair is taken (answer 503)."""
        for _ in range(len(self._free)):
            port = self._free.popleft()
            sockets = _bind_pair(self.host, port)
            if sockets is None:
                self._free.append(port)  # taken by another program: try it again later
                continue
            stream = RtpStream(self, call_id, port, *sockets)
            self.streams[port] = stream
            return stream
        self.metrics.rtp_ports_exhausted += 1
        log.warning("call %s: no free RTP port pair (%d in use): refusing it", call_id, len(self.streams))
        return None

    def _release(self, port: int) -> None:
        if self.streams.pop(port, None) is not None:
            self._free.append(port)

    async def aclose(self) -> None:
        for stream in list(self.streams.values()):
            await stream.aclose()


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket] | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: list[socket.socket] = []
    try:
        for offset in (0, 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            bound.append(sock)
            sock.setblocking(False)
            sock.bind((host, port + offset))
    except OSError:
        for sock in bound:
            sock.close()
        return None
    return bound[0], bound[1]


class RtpStream:
    """One call's RTP and RTCP, as the session's MediaTransport (see the module docstring)."""

    def __init__(self, pool: RtpPortPool, call_id: str, port: int, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.call_id = call_id
        self.local_port = port
        self._pool = pool
        self._metrics = pool.metrics
        self._rtp, self._rtcp = rtp, rtcp
        self._loop = asyncio.get_running_loop()
        self._clock: Clock = pool.clock or self._loop.time
        self._paced = pool.paced
        self.jitter_allowance_ms = pool.jitter_allowance_ms
        # MediaTransport
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.scope: Mapping[str, Any] = {"type": "rtp", "client": None, TRANSPORT_ABORT_SCOPE_KEY: self.abort}
        self.query_params: Mapping[str, str] = {}
        self.on_closed: Callable[[], None] | None = None
        # negotiated (configure)
        self.remote: Address | None = None
        self.payload_type = 0
        self.telephone_event_pt: int | None = None
        self.direction = "sendrecv"
        self._format: AudioFormat | None = None  # the session's, from begin()
        self._to_wire: Callable[[bytes], bytes] | None = None
        self._from_wire: Callable[[bytes], bytes] | None = None
        # receiving
        self.latched: Address | None = None
        self.rtcp_latched: Address | None = None
        self._jitter = JitterBuffer(frozenset({0}))
        self._stats = ReceiverStats()
        self._dtmf_in = DtmfReceiver()
        self._inbox: deque[Mapping[str, Any]] = deque()
        self._inbox_audio = 0
        self._waiter: asyncio.Future[None] | None = None
        self._last_frame_bytes = FRAME_BYTES
        # sending
        self._sender = RtpSender()
        self._send_clock: SendClock | None = None
        self._outbound = OutboundAudio(MAX_OUTBOUND_S * 8000)
        self._digits: deque[str] = deque()
        self._event_ticks: deque[EventTick] = deque()
        self._event_timestamp = 0
        self._far_end_busy_until = 0.0  # when the far end will have played all audio sent (s)
        self._echoes: deque[tuple[float, str]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._echo_timer: asyncio.TimerHandle | None = None
        self._rtcp_timer: asyncio.TimerHandle | None = None
        # RTCP: an NTP clock that follows the monotonic one (a wall-clock step must not bend RTT)
        self._ntp_origin = time.time() - self._clock()
        self.rtt_ms: float | None = None
        self.cname = f"bridge-{self._sender.ssrc:08x}@{pool.host}"
        self.problems = 0
        self._begun = False
        self._closed = False  # sending stopped (close, peer hang-up)
        self._released = False
        self._loop.add_reader(rtp.fileno(), self._read_rtp)
        self._loop.add_reader(rtcp.fileno(), self._read_rtcp)

    # --- the contract with the signalling ---------------------------------------------------------
    @property
    def heard_lead_ms(self) -> float:
        """How long after a frame leaves the far end plays it: RTT/2 (RTCP; 0 until measured) plus
        the jitter allowance for the far end's buffer."""
        return (self.rtt_ms or 0.0) / 2 + self.jitter_allowance_ms

    def configure(
        self,
        remote: Address,
        payload_type: int,
        telephone_event_pt: int | None = None,
        direction: str = "sendrecv",
    ) -> None:
        """The negotiated media (SDP answer), at the start and again on every re-INVITE."""
        audio_format_for(payload_type)  # ValueError for anything but PCMU/PCMA
        if direction not in DIRECTIONS:
            raise ValueError(f"RTP direction {direction!r} (one of {sorted(DIRECTIONS)})")
        if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
            raise ValueError(f"telephone-event payload type {telephone_event_pt} is not dynamic (96-127)")
        remote = (remote[0], int(remote[1]))
        if remote != self.remote:
            self.latched = self.rtcp_latched = None  # a new far end: latch again
        self.remote = remote
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.direction = direction
        accepted = {payload_type} if telephone_event_pt is None else {payload_type, telephone_event_pt}
        self._jitter.accept_payload_types(frozenset(accepted))
        self._set_transcoding()

    def begin(self, start: CallStarted) -> None:
        """The call starts: the session's first `receive()` is its start; the sending clock runs."""
        if self._begun:
            raise RuntimeError("begin() once per stream")
        self._begun = True
        self._format = start.audio_format
        self._set_transcoding()
        self._post({"type": "websocket.receive", "text": start_message(start)})
        now = self._clock()
        self._send_clock = SendClock(now * 1000)
        if self._paced:
            self._timer = self._loop.call_at(now, self._on_timer)
            self._rtcp_timer = self._loop.call_at(now + RTCP_FIRST_S, self._on_rtcp_timer)

    def inject_dtmf(self, digit: str) -> None:
        """A key press that came another way (SIP INFO), delivered like an RFC 4733 one."""
        if len(digit) == 1 and digit.upper() in DIGITS and not self._closed:
            self._post({"type": "websocket.receive", "text": DTMF_PREFIX + digit.upper()})

    def hang_up_by_peer(self) -> None:
        """BYE or CANCEL from the far end: no more RTP; the session reads a disconnect."""
        if self.client_state is WebSocketState.DISCONNECTED:
            return
        self.client_state = WebSocketState.DISCONNECTED
        self._stop_sending()
        self._post(_DISCONNECTED)

    async def aclose(self) -> None:
        """Release the sockets and the port (idempotent)."""
        if self._released:
            return
        self._released = True
        self._stop_sending()
        self.application_state = self.client_state = WebSocketState.DISCONNECTED
        for sock in (self._rtp, self._rtcp):
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._pool._release(self.local_port)
        self._wake()

    @property
    def pending_messages(self) -> int:
        """Messages waiting for the session's `receive()`."""
        return len(self._inbox)

    # --- MediaTransport ------------------------------------------------------------------------
    async def receive(self) -> Mapping[str, Any]:
        while not self._inbox:
            if self.client_state is WebSocketState.DISCONNECTED or self._released:
                return _DISCONNECTED
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._inbox.popleft()
        if "bytes" in message:
            self._inbox_audio -= 1
        return message

    async def send_bytes(self, data: bytes) -> None:
        if self.application_state is WebSocketState.DISCONNECTED:
            raise RuntimeError("the RTP stream is closed")
        if data and not self._outbound.append(data):
            self._metrics.rtp_frames_overflowed += 1
            self._problem(f"{len(data)} bytes of audio refused: {MAX_OUTBOUND_S} s are queued already")

    async def send_text(self, data: str) -> None:
        if self.application_state is WebSocketState.DISCONNECTED:
            raise RuntimeError("the RTP stream is closed")
        if data.startswith(MARK_PREFIX):
            name = data[len(MARK_PREFIX) :]
            if self._outbound.queued_bytes:
                self._outbound.mark(name)
            else:  # all its audio has left: it plays out when the far end has played what was sent
                self._schedule_echo(max(self._clock(), self._far_end_busy_until), name)
        elif data == CLEAR:
            for name in self._outbound.clear():
                self._post_text(MARK_PREFIX + name)  # flushed marks echo at once, as Twilio's do
        elif data.startswith(DTMF_PREFIX):
            if self.telephone_event_pt is None:
                self._problem("digits not sent: the far end did not negotiate telephone-event")
                return
            self._digits.extend(data[len(DTMF_PREFIX) :])
        else:
            raise RuntimeError(f"not a message an RTP stream takes: {data[:20]!r}")

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """The session ended the call: stop sending, say goodbye in RTCP, tell the signalling (BYE)."""
        if self.application_state is WebSocketState.DISCONNECTED:
            return
        self.application_state = WebSocketState.DISCONNECTED
        self._stop_sending()
        callback, self.on_closed = self.on_closed, None
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("call %s: the RTP stream's on_closed callback failed", self.call_id)

    def abort(self) -> None:
        self.application_state = self.client_state = WebSocketState.DISCONNECTED
        self._stop_sending()
        self._wake()

    # --- the sending clock ----------------------------------------------------------------------
    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._send_clock is None:
            return
        self.tick(self._loop.time())
        self._timer = self._loop.call_at(self._send_clock.next_ms / 1000, self._on_timer)

    def tick(self, now_s: float) -> int:
        """Serve the ticks due by `now_s` (the loop calls this; tests call it on their own clock):
        at most one packet, whatever the number of ticks. Returns the ticks served."""
        clock = self._send_clock
        if clock is None or self._closed:
            return 0
        ticks = clock.due(now_s * 1000)
        if ticks:
            if ticks > 1:  # the loop stalled: the media clock moved on without packets
                self._sender.advance(SAMPLES_PER_FRAME * (ticks - 1))
            self._send_next(now_s)
            self._sender.advance(SAMPLES_PER_FRAME)
        if self._echoes:
            self._echo_due(now_s)
        if self._jitter.held:
            self._deliver(self._jitter.poll(now_s * 1000))
        return ticks

    def _send_next(self, now_s: float) -> None:
        sender = self._sender
        if self.remote is None or self.direction in ("recvonly", "inactive") or self.remote[0] in _UNSPECIFIED:
            sender.talk_spurt_ended()  # on hold: the queue waits, the timestamp moves on
            return
        if not self._event_ticks and self._digits and self.telephone_event_pt is not None:
            digit = self._digits.popleft()
            try:
                self._event_ticks.extend(digit_train(digit))
            except ValueError:
                self._problem(f"{digit!r} is not a DTMF digit: not sent")
        if self._event_ticks:
            event = self._event_ticks.popleft()
            if event.payload is not None and self.telephone_event_pt is not None:
                if event.first:
                    self._event_timestamp = sender.timestamp
                self._send(sender.packet(self.telephone_event_pt, event.payload, self._event_timestamp, event.first))
                sender.talk_spurt_ended()
                return
            self._send(sender.audio(self.payload_type, self._silence(), voiced=False))  # the pause between digits
            return
        frame, marks = self._outbound.take(FRAME_BYTES)
        lead_s = self.heard_lead_ms / 1000
        if frame is None:
            payload, voiced = self._silence(), False
        else:
            payload, voiced = frame, True
            if len(frame) < FRAME_BYTES:  # the end of a talk spurt: a whole frame, padded with silence
                payload = frame + self._silence()[len(frame) :]
            if self._to_wire is not None:
                payload = self._to_wire(payload)
            self._far_end_busy_until = now_s + len(frame) / 8000 + lead_s
        for name, offset in marks:
            played_at = now_s + offset / 8000 + lead_s if frame is not None else self._far_end_busy_until
            self._schedule_echo(max(now_s, played_at), name)
        self._send(sender.audio(self.payload_type, payload, voiced))

    def _silence(self) -> bytes:
        return SILENCE[audio_format_for(self.payload_type).encoding]

    def _send(self, packet: bytes) -> None:
        destination = self.latched or self.remote
        if destination is None:
            return
        try:
            self._rtp.sendto(packet, destination)
        except (BlockingIOError, InterruptedError):
            self._metrics.rtp_frames_overflowed += 1  # the socket's buffer is full: this packet is lost
        except OSError as exc:  # unreachable, ICMP refused from an earlier send: the call goes on
            self._problem(f"RTP send to {destination} failed: {exc}")

    def _stop_sending(self) -> None:
        if not self._closed:
            self._closed = True
            if self._send_clock is not None and self.remote is not None and not self._released:
                with contextlib.suppress(OSError):
                    self._rtcp.sendto(build_bye(self._sender.ssrc, self.cname), self._rtcp_destination())
        for handle in (self._timer, self._echo_timer, self._rtcp_timer):
            if handle is not None:
                handle.cancel()
        self._timer = self._echo_timer = self._rtcp_timer = None
        self._echoes.clear()
        self._outbound.clear()

    # --- marks ------------------------------------------------------------------------------------
    def _schedule_echo(self, due_s: float, name: str) -> None:
        echoes = self._echoes
        if echoes and echoes[-1][0] > due_s:
            due_s = echoes[-1][0]  # FIFO: a mark never plays before the one ahead of it
        echoes.append((due_s, name))
        if self._paced and self._echo_timer is None:
            self._echo_timer = self._loop.call_at(echoes[0][0] - _ECHO_WAKE_EARLY_S, self._on_echo_timer)

    def _on_echo_timer(self) -> None:
        self._echo_timer = None
        self._echo_due(self._loop.time())
        if self._echoes and not self._closed:
            self._echo_timer = self._loop.call_at(self._echoes[0][0] - _ECHO_WAKE_EARLY_S, self._on_echo_timer)

    def _echo_due(self, now_s: float) -> None:
        echoes = self._echoes
        while echoes and echoes[0][0] <= now_s + _ECHO_WAKE_EARLY_S:
            self._post_text(MARK_PREFIX + echoes.popleft()[1])

    # --- receiving ------------------------------------------------------------------------------
    def _read_rtp(self) -> None:
        now_s = self._clock()
        for _ in range(READS_PER_WAKE):
            try:
                data, address = self._rtp.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued by an earlier send: the next datagram may be fine
            self.rtp_datagram(data, (address[0], address[1]), now_s)

    def rtp_datagram(self, data: bytes, source: Address, now_s: float) -> None:
        """One datagram on the RTP port (the reader calls this; tests may too)."""
        if self._released or self.remote is None:
            return  # not negotiated yet: nobody to latch to
        try:
            packet = parse_rtp(data)
        except RtpError as exc:
            self._metrics.rtp_packets_malformed += 1
            self._problem(f"a datagram from {source} is not RTP: {exc.reason}")
            return
        if self.latched is None:
            if packet.payload_type != self.payload_type and packet.payload_type != self.telephone_event_pt:
                self._metrics.rtp_packets_discarded += 1
                return  # not valid for this call: latch to nothing yet
            self.latched = source
            self.scope = {**self.scope, "client": source}
        elif source != self.latched:
            self._metrics.rtp_packets_foreign += 1
            self._problem(f"an RTP packet from {source}, not the latched {self.latched}: dropped")
            return
        self._stats.received(packet.ssrc, packet.sequence, packet.timestamp, int(now_s * 8000))
        if self.direction in ("sendonly", "inactive") or not self._begun:
            return
        pushed = self._jitter.push(packet, now_s * 1000)
        if pushed.outcome is not Outcome.ACCEPTED:
            self._metrics.rtp_packets_discarded += 1
        if pushed.released:
            self._deliver(pushed.released)

    def _deliver(self, released: list[RtpPacket | Lost]) -> None:
        for item in released:
            if type(item) is Lost:
                self._metrics.rtp_packets_lost += item.packets
                silence = self._session_silence()[: self._last_frame_bytes]
                for _ in range(min(item.packets, MAX_CONCEALED)):
                    self._post_audio(silence)
                continue
            assert type(item) is RtpPacket
            if item.payload_type == self.telephone_event_pt:
                try:
                    digit = self._dtmf_in.feed(item)
                except RtpError as exc:
                    self._metrics.rtp_packets_malformed += 1
                    self._problem(exc.reason)
                    continue
                if digit is not None:
                    self._post_text(DTMF_PREFIX + digit)
                continue
            payload = item.payload
            if not payload:
                continue
            self._last_frame_bytes = min(len(payload), 8 * FRAME_BYTES)
            self._post_audio(payload if self._from_wire is None else self._from_wire(payload))

    def _session_silence(self) -> bytes:
        encoding = self._format.encoding if self._format is not None else Encoding.ULAW
        return SILENCE[encoding] * 8

    def _post_audio(self, payload: bytes) -> None:
        if self._inbox_audio >= MAX_INBOUND_FRAMES:
            self._metrics.rtp_frames_overflowed += 1
            return
        self._inbox_audio += 1
        self._post({"type": "websocket.receive", "bytes": payload})

    def _post_text(self, text: str) -> None:
        self._post({"type": "websocket.receive", "text": text})

    def _post(self, message: Mapping[str, Any]) -> None:
        self._inbox.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _set_transcoding(self) -> None:
        if self._format is None:
            return
        wire = audio_format_for(self.payload_type)
        self._to_wire = _transcoder(self._format, wire)
        self._from_wire = _transcoder(wire, self._format)

    # --- RTCP ------------------------------------------------------------------------------------
    def _ntp_now(self, now_s: float) -> int:
        return ntp_timestamp(self._ntp_origin + now_s)

    def _rtcp_destination(self) -> Address:
        if self.rtcp_latched is not None:
            return self.rtcp_latched
        assert self.remote is not None
        host, port = self.latched or self.remote
        return host, port + 1

    def _on_rtcp_timer(self) -> None:
        self._rtcp_timer = None
        if self._closed:
            return
        self.send_report(self._loop.time())
        # RFC 3550 §6.3.5: randomized (0.5–1.5 × the interval), so calls never synchronize
        self._rtcp_timer = self._loop.call_later(RTCP_INTERVAL_S * random.uniform(0.5, 1.5), self._on_rtcp_timer)

    def send_report(self, now_s: float) -> None:
        """An SR (we send RTP) with a report block on the peer's stream, and our CNAME."""
        if self.remote is None or self._released:
            return
        block = self._stats.block(now_s)
        sender = self._sender
        info = SenderInfo(self._ntp_now(now_s), sender.timestamp, sender.packets_sent, sender.payload_bytes_sent)
        report = build_report(sender.ssrc, self.cname, (block,) if block is not None else (), info)
        with contextlib.suppress(OSError):
            self._rtcp.sendto(report, self._rtcp_destination())

    def _read_rtcp(self) -> None:
        now_s = self._clock()
        for _ in range(READS_PER_WAKE):
            try:
                data, address = self._rtcp.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self.rtcp_datagram(data, (address[0], address[1]), now_s)

    def rtcp_datagram(self, data: bytes, source: Address, now_s: float) -> None:
        if self._released or self.remote is None:
            return
        try:
            packets = parse_rtcp(data)
        except RtpError as exc:
            self._metrics.rtcp_packets_rejected += 1
            self._problem(f"an RTCP datagram from {source} is not valid: {exc.reason}")
            return
        if self.rtcp_latched is None:
            if self.latched is not None and source[0] != self.latched[0]:
                self._metrics.rtcp_packets_rejected += 1  # RTCP comes from the host the RTP comes from
                return
            self.rtcp_latched = source
        elif source != self.rtcp_latched:
            self._metrics.rtcp_packets_rejected += 1
            return
        for packet in packets:
            if packet.packet_type == PacketType.SR and packet.sender is not None:
                self._stats.sender_report(packet.sender.ntp, now_s)
            for block in packet.blocks:
                if block.ssrc == self._sender.ssrc:
                    rtt = round_trip_ms(block, self._ntp_now(now_s))
                    if rtt is not None and rtt < 10_000:
                        self.rtt_ms = rtt

    # --- logging -----------------------------------------------------------------------------------
    def _problem(self, text: str) -> None:
        self.problems += 1
        if self.problems <= PROBLEMS_LOGGED or self.problems % 100 == 0:
            log.warning("call %s: %s (RTP problem #%d)", self.call_id, text, self.problems)
