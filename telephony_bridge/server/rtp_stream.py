"""One SIP call's RTP and RTCP as the session's transport: `RtpStream` (server/sip_media.py opens it).

The SIP signalling (its own modules) opens a stream for each call it answers or places, points it
at the far end from the negotiated SDP (`configure`, again on every re-INVITE), and runs the
ordinary `CallSession` over it: an `RtpStream` is a `MediaTransport` (server/media_transport.py)
whose messages `SipCodec` reads (carriers/sip/codec.py has their table). The session never knows
it is RTP.

Receiving: one datagram socket for RTP (even port) and one for RTCP (+1), read with the loop's
`add_reader` — no transport objects, nothing per packet but the parse. Symmetric RTP (RFC 4961):
the stream latches to the source of the first valid packet (it sends there from then on, whatever
SDP said: NAT) and drops and counts packets from anyone else. Packets go through a small jitter
buffer; losses are concealed with silence; telephone-events become key presses once each — all of
it sans-I/O in carriers/sip/receive_side.py. At most a second of caller audio waits for a session
that does not read (the rest is counted and dropped: UDP has no back-pressure).

Sending, and what the caller heard: one 20 ms clock per stream (`SendClock`: monotonic, no drift,
no bursts) sends the next queued frame, a DTMF event packet, or comfort silence, with a
continuous sequence and timestamp and the marker bit at each talk spurt (what goes out at each
tick, and when each mark has played, is carriers/sip/send_side.py). The session's `Playout`
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
import logging
import random
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from starlette.websockets import WebSocketState

from telephony_bridge.audio.formats import AudioFormat, Encoding
from telephony_bridge.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from telephony_bridge.carriers.base import CallStarted
from telephony_bridge.carriers.sip.codec import CLEAR, DTMF_PREFIX, MARK_PREFIX, audio_format_for, start_message
from telephony_bridge.carriers.sip.dtmf import DIGITS
from telephony_bridge.carriers.sip.receive_side import ReceiveSide
from telephony_bridge.carriers.sip.rtcp_session import RtcpSession
from telephony_bridge.carriers.sip.send_side import SILENCE, SendSide
from telephony_bridge.carriers.sip.sending import FRAME_MS, SendClock
from telephony_bridge.server.asgi import TRANSPORT_ABORT_SCOPE_KEY
from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.rtcp_port import Address, RtcpPort

__all__ = ["DIRECTIONS", "MAX_INBOUND_FRAMES", "SILENCE", "PortOwner", "RtpStream"]

log = logging.getLogger("telephony_bridge.sip")

DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
MAX_DATAGRAM: Final = 2048
READS_PER_WAKE: Final = 32  # datagrams read per readiness callback: a flood cannot starve the loop
MAX_INBOUND_FRAMES: Final = 50  # a second of caller audio waiting for the session; beyond, dropped
MAX_OUTBOUND_S: Final = 300  # model audio queued ahead of the clock; beyond, refused (and counted)
RTCP_INTERVAL_S: Final = 5.0
RTCP_FIRST_S: Final = 1.0  # the first report early: RTT is known a few seconds sooner
PROBLEMS_LOGGED: Final = 10  # per stream; then every 100th
_DISCONNECTED: Final = {"type": "websocket.disconnect", "code": 1000}
_ECHO_WAKE_EARLY_S: Final = 0.0005
_UNSPECIFIED: Final = frozenset({"0.0.0.0", "::"})  # old peers' hold (RFC 2543 c=0.0.0.0): send nothing

Clock = Callable[[], float]


def _transcoder(source: AudioFormat, target: AudioFormat) -> Callable[[bytes], bytes] | None:
    """μ-law ↔ A-law for a call whose codec changed by re-INVITE (its session keeps its format)."""
    if source == target:
        return None
    if source.encoding is Encoding.ULAW:
        return lambda audio: alaw_encode(ulaw_decode(audio))
    return lambda audio: ulaw_encode(alaw_decode(audio))


class PortOwner(Protocol):
    """What a stream needs of the pool that opened it (server/sip_media.py's RtpPortPool)."""

    metrics: BridgeMetrics
    host: str
    jitter_allowance_ms: float
    clock: Clock | None  # None: the loop's; tests pass their own
    paced: bool  # False: nothing ticks by itself (tests call tick(now))

    def release_port(self, port: int) -> None: ...


class RtpStream:
    """One call's RTP and RTCP, as the session's MediaTransport (see the module docstring)."""

    def __init__(self, pool: PortOwner, call_id: str, port: int, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.call_id = call_id
        self.local_port = port
        self._pool = pool
        self._metrics = pool.metrics
        self._rtp = rtp
        self._loop = asyncio.get_running_loop()
        self._clock: Clock = pool.clock or self._loop.time
        self._paced = pool.paced
        self.jitter_allowance_ms = pool.jitter_allowance_ms
        # MediaTransport
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.scope: Mapping[str, Any] = {"type": "rtp", "client": None, TRANSPORT_ABORT_SCOPE_KEY: _weak(self.abort)}
        self.query_params: Mapping[str, str] = {}
        self.on_closed: Callable[[], None] | None = None
        # negotiated (configure)
        self.remote: Address | None = None
        self.payload_type = 0
        self.telephone_event_pt: int | None = None
        self.direction = "sendrecv"
        self._format: AudioFormat | None = None  # the session's, from begin()
        # receiving
        self._inbox: deque[Mapping[str, Any]] = deque()
        self._inbox_audio = 0
        self._waiter: asyncio.Future[None] | None = None
        # sending
        self._send = SendSide(MAX_OUTBOUND_S * 8000)
        # late model audio may wait in its ticks' slots as long as the far end's buffer covers
        self._send.max_held_ticks = int(self.jitter_allowance_ms // FRAME_MS)
        self._sender = self._send.sender
        self._send_clock: SendClock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._echo_timer: asyncio.TimerHandle | None = None
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._rtcp_session = RtcpSession(f"bridge-{self._sender.ssrc:08x}@{pool.host}", time.time(), self._clock())
        self._rtcp_port = RtcpPort(rtcp, self._rtcp_session, self._metrics, _weak(self._problem))
        self._receive = ReceiveSide(self._rtcp_session, self._metrics, _weak(self._problem))
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
        return (self._rtcp_session.rtt_ms or 0.0) / 2 + self.jitter_allowance_ms

    @property
    def latched(self) -> Address | None:
        """The source the peer's RTP comes from (symmetric RTP: where ours goes), once it came."""
        return self._receive.latched

    @property
    def rtcp(self) -> RtcpSession:
        """The stream's RTCP state: its round trip, and how its RTP reaches the far end."""
        return self._rtcp_session

    @property
    def rtcp_latched(self) -> Address | None:
        """The source the peer's RTCP comes from (where ours goes), once a valid report came."""
        return self._rtcp_port.latched

    @property
    def rtt_ms(self) -> float | None:
        """The round trip to the far end from its last RTCP report (None until one came)."""
        return self._rtcp_session.rtt_ms

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
            self._receive.latched = self._rtcp_port.latched = None  # a new far end: latch again
        self.remote = remote
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.direction = direction
        self._receive.configure(payload_type, telephone_event_pt)
        self._receive.receiving = self._begun and direction in ("sendrecv", "recvonly")
        send = self._send
        send.payload_type, send.event_payload_type = payload_type, telephone_event_pt
        send.sending = direction in ("sendrecv", "sendonly") and remote[0] not in _UNSPECIFIED
        self._set_transcoding()

    def begin(self, start: CallStarted) -> None:
        """The call starts: the session's first `receive()` is its start; the sending clock runs."""
        if self._begun:
            raise RuntimeError("begin() once per stream")
        self._begun = True
        self._format = start.audio_format
        self._receive.session_encoding = start.audio_format.encoding
        self._receive.receiving = self.direction in ("sendrecv", "recvonly")
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
        self._log_summary()
        self.application_state = self.client_state = WebSocketState.DISCONNECTED
        for sock in (self._rtp, self._rtcp_port.sock):
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._pool.release_port(self.local_port)
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
        if data and not self._send.write(data):
            self._metrics.rtp_frames_overflowed += 1
            self._problem(f"{len(data)} bytes of audio refused: {MAX_OUTBOUND_S} s are queued already")
        elif self._send.held_ticks and not self._closed:  # the late audio ticks were held for: send it now
            for packet in self._send.serve_held(self._clock(), self.heard_lead_ms / 1000):
                self._send_packet(packet)

    async def send_text(self, data: str) -> None:
        if self.application_state is WebSocketState.DISCONNECTED:
            raise RuntimeError("the RTP stream is closed")
        if data.startswith(MARK_PREFIX):
            self._send.mark(data[len(MARK_PREFIX) :], self._clock())
            self._echo_due(self._clock())
        elif data == CLEAR:
            for name in self._send.clear():
                self._post_text(MARK_PREFIX + name)  # flushed marks echo at once, as Twilio's do
            if self._echo_timer is not None:  # it was set for a flushed mark: the next answer's set their own
                self._echo_timer.cancel()
                self._echo_timer = None
        elif data.startswith(DTMF_PREFIX):
            try:
                self._send.digits(data[len(DTMF_PREFIX) :])
            except ValueError as exc:
                self._problem(f"digits not sent: {exc}")
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
        one packet per tick, a stall's missed audio made up to a bound (SendSide.tick). Returns
        the ticks served."""
        clock = self._send_clock
        if clock is None or self._closed:
            return 0
        ticks = clock.due(now_s * 1000)
        if ticks:
            for packet in self._send.tick(now_s, ticks, self.heard_lead_ms / 1000):
                self._send_packet(packet)
        self._echo_due(now_s)
        if self._receive.held:
            self._deliver(self._receive.poll(now_s))
        return ticks

    def _send_packet(self, packet: bytes) -> None:
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
                self._rtcp_port.send_bye(self._sender.ssrc, self.latched or self.remote)
        for handle in (self._timer, self._echo_timer, self._rtcp_timer):
            if handle is not None:
                handle.cancel()
        self._timer = self._echo_timer = self._rtcp_timer = None
        self._send.stop()

    # --- marks ------------------------------------------------------------------------------------
    def _echo_due(self, now_s: float) -> None:
        """Echo the marks that have played by `now_s`, and wake for the next one (to the
        millisecond, not the next tick: the ledger counts from the echo)."""
        for name in self._send.due_echoes(now_s + _ECHO_WAKE_EARLY_S):
            self._post_text(MARK_PREFIX + name)
        next_s = self._send.next_echo_s
        if self._paced and next_s is not None and self._echo_timer is None and not self._closed:
            self._echo_timer = self._loop.call_at(next_s - _ECHO_WAKE_EARLY_S, self._on_echo_timer)

    def _on_echo_timer(self) -> None:
        self._echo_timer = None
        self._echo_due(self._loop.time())

    # --- receiving ------------------------------------------------------------------------------
    def _read_rtp(self) -> None:
        self._read(self._rtp, self.rtp_datagram)

    def _read(self, sock: socket.socket, handle: Callable[[bytes, Address, float], None]) -> None:
        now_s = self._clock()
        for _ in range(READS_PER_WAKE):
            try:
                data, address = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued by an earlier send: the next datagram may be fine
            handle(data, (address[0], address[1]), now_s)

    def rtp_datagram(self, data: bytes, source: Address, now_s: float) -> None:
        """One datagram on the RTP port (the reader calls this; tests may too)."""
        if self._released or self.remote is None:
            return  # not negotiated yet: nobody to latch to
        was_latched = self._receive.latched
        delivered = self._receive.datagram(data, source, now_s)
        if self._receive.latched != was_latched:
            self.scope = {**self.scope, "client": source}
        if delivered:
            self._deliver(delivered)

    def _deliver(self, delivered: list[bytes | str]) -> None:
        for item in delivered:
            if isinstance(item, str):
                self._post_text(DTMF_PREFIX + item)
            else:
                self._post_audio(item)

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
        self._send.to_wire = _transcoder(self._format, wire)
        self._receive.from_wire = _transcoder(wire, self._format)

    # --- RTCP ------------------------------------------------------------------------------------
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
        self._rtcp_port.send_report(self._sender, now_s, self.latched or self.remote)

    def _read_rtcp(self) -> None:
        self._read(self._rtcp_port.sock, self.rtcp_datagram)

    def rtcp_datagram(self, data: bytes, source: Address, now_s: float) -> None:
        if self._released or self.remote is None:
            return
        self._rtcp_port.datagram(data, source, now_s, self._sender.ssrc, self.latched)

    # --- logging -----------------------------------------------------------------------------------
    def _log_summary(self) -> None:
        rtcp, sender = self._rtcp_session, self._sender
        stats = rtcp.stats.block(self._clock())
        log.info(
            "call %s: RTP ended: %d packets sent; received from %s: %s lost, jitter %.1f ms; RTT %s; "
            "the far end reports jitter %s, loss %s; %d problem(s)",
            self.call_id,
            sender.packets_sent,
            self._receive.latched or "nobody",
            stats.cumulative_lost if stats is not None else 0,
            rtcp.stats.jitter / 8,
            "unknown" if rtcp.rtt_ms is None else f"{rtcp.rtt_ms:.0f} ms",
            "unknown" if rtcp.peer_jitter_ms is None else f"{rtcp.peer_jitter_ms:.1f} ms",
            "unknown" if rtcp.peer_loss is None else f"{rtcp.peer_loss:.1%}",
            self.problems,
        )

    def _problem(self, text: str) -> None:
        self.problems += 1
        if self.problems <= PROBLEMS_LOGGED or self.problems % 100 == 0:
            log.warning("call %s: %s (RTP problem #%d)", self.call_id, text, self.problems)


def _weak(method: Callable[..., None]) -> Callable[..., None]:
    """A bound method of the stream for something the stream itself holds (its scope, its receive
    side), without the reference cycle: a finished call's stream is then freed at once by
    reference counting, not at the next full GC (tests/sip/test_sip_freed.py)."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args)

    return call
