"""The phone simulator's stream driver: one call's media WebSocket, as its carrier runs it.

Whatever the carrier (its `CarrierProfile` builds and reads every message): sends the start
messages, the caller's audio paced in real time, DTMF and the stop; plays the bridge's audio
through `SimulatedPlayout`, echoes marks when their audio has played (carriers that echo marks),
flushes on clear, and keeps the call's timeline. The webhook step before it is `WebhookClient`'s.

What the caller heard is kept normalised to μ-law 8 kHz whatever the carrier's format (the
playout's clock counts 8 samples a millisecond): `CallResult.heard_ulaw`, `heard_pcm16` (PCM16
8 kHz) and the timeline read the same for every carrier.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from telephony_bridge.audio.convert import converter
from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.audio.g711 import ulaw_decode
from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.carrier_profile import BridgeAudio, BridgeMark, CarrierProfile, StreamTarget
from telephony_bridge.testing.playout import SimulatedPlayout
from telephony_bridge.testing.simulator_caller import CallerSide
from telephony_bridge.testing.simulator_result import (
    CallResult,
    MarkEcho,
    TimelineEvent,
)
from telephony_bridge.testing.simulator_tcp import TcpFrameStream
from telephony_bridge.testing.simulator_webhook import (
    WebhookClient,
    connect_url_for,
    is_loopback,
)
from telephony_bridge.testing.transcript import speech_spans

log = logging.getLogger("telephony_bridge.testing.simulator")

BURST_GAP_MS = 250.0  # bridge media this far apart counts as two bursts in the timeline
SPEECH_GAP_MS = 300.0  # the caller hearing nothing for this long: the agent's stretch of speech is over
TWILIO_WS_USER_AGENT = messages.WS_USER_AGENT

_PROXY_SUPPORTED = "proxy" in inspect.signature(connect.__init__).parameters

EventCallback = Callable[[TimelineEvent], Any]


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(slots=True)
class _Burst:
    """Media from the bridge with no pause of BURST_GAP_MS: one line at each end in the timeline."""

    number: int
    last_ms: float
    messages: int = 0
    audio_ms: float = 0.0
    marks: int = 0


class SimulatedCall(CallerSide, WebhookClient):
    """One simulated call over any carrier's profile."""

    def __init__(
        self,
        *,
        base_url: str,
        to: str,
        from_: str,
        caller_ulaw: bytes,
        digits: list[tuple[float, str]],
        duration_ms: float,
        hangup_after_silence_ms: float | None,
        profile: CarrierProfile,
        call_sid: str,
        stream_url_override: str | None,
        on_event: EventCallback | None,
        connect_timeout_s: float,
    ) -> None:
        self.base_url = base_url
        self.to, self.from_ = to, from_
        self.caller_audio = caller_ulaw
        self.digits = digits
        self.duration_ms = duration_ms
        self.hangup_after_silence_ms = hangup_after_silence_ms
        self.profile = profile
        self.bridge_audio = converter(profile.audio_format, ULAW_8K)  # heard audio, normalised
        self.caller_converter = None if profile.audio_format == ULAW_8K else converter(ULAW_8K, profile.audio_format)
        self.stream_url_override = stream_url_override
        self.on_event = on_event
        self.connect_timeout_s = connect_timeout_s
        self.result = CallResult(
            call_sid=call_sid, account_sid=str(getattr(profile, "account_sid", "")), carrier=profile.name
        )
        self.stream_sid = ""  # set by talk(), before anything of the stream is sent

        self.loop = asyncio.get_running_loop()
        self.call_started = self.loop.time()
        self.origin: float | None = None  # loop time of the stream start
        self.early_events: list[tuple[float, str, str]] = []
        self.callback_tasks: set[asyncio.Task[Any]] = set()

        self.ws: ClientConnection | TcpFrameStream | None = None
        self.send_lock = asyncio.Lock()
        self.sequence = 0
        self.playout = SimulatedPlayout()
        self.pending_marks: deque[tuple[str, float]] = deque()  # parallel to the playout's marks
        self.wake_ticker = asyncio.Event()
        self.caller_sent = bytearray()
        self.hanging_up = False
        self.ended = False
        self.end_ms = 0.0
        self.burst: _Burst | None = None  # the bridge's media burst in progress
        self.bursts = 0
        self.speech_from_ms: float | None = None  # the agent's stretch of audio playing to the caller
        self.speech_played_before = 0.0  # playout's played_ms when that stretch began
        self.caller_spans = deque(speech_spans(ulaw_decode(caller_ulaw)))

    # -- clock and timeline ---------------------------------------------------------------------------

    def now_ms(self) -> float:
        assert self.origin is not None
        return max(0.0, (self.loop.time() - self.origin) * 1000)

    def emit(self, kind: str, detail: str, t_ms: float | None = None, data: Mapping[str, Any] | None = None) -> None:
        if self.origin is None:
            self.early_events.append((self.loop.time(), kind, detail))
            return
        self._record(TimelineEvent(self.now_ms() if t_ms is None else t_ms, kind, detail, data))

    def _record(self, event: TimelineEvent) -> None:
        self.result.timeline.append(event)
        if self.on_event is None:
            return
        try:
            outcome = self.on_event(event)
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(outcome)
                self.callback_tasks.add(task)
                task.add_done_callback(self._callback_done)
        except Exception:
            log.exception("on_event callback failed for call %s", self.result.call_sid)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self.callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("on_event callback failed for call %s", self.result.call_sid, exc_info=task.exception())

    def set_origin(self, loop_time: float) -> None:
        self.origin = loop_time
        for at, kind, detail in self.early_events:
            self._record(TimelineEvent((at - loop_time) * 1000, kind, detail))
        self.early_events.clear()

    def protocol_error(self, problem: str) -> None:
        self.result.protocol_errors.append(problem)
        self.emit("error", problem)

    def warn(self, problem: str) -> None:
        self.result.warnings.append(problem)
        self.emit("warning", problem)

    # -- the call -------------------------------------------------------------------------------------

    async def run(self) -> CallResult:
        try:
            # A carrier with no answer request (AudioSocket) names its stream itself.
            direct_target = getattr(self.profile, "direct_target", None)
            answer = direct_target() if direct_target is not None else await self.webhook()
            if answer is not None:
                await self.stream(answer)
        finally:
            if self.origin is None:
                self.set_origin(self.call_started)
            self.result.duration_s = self.loop.time() - self.call_started
            self.result.timeline.sort(key=lambda e: e.t_ms)
            if self.callback_tasks:
                await asyncio.gather(*self.callback_tasks, return_exceptions=True)
        return self.result

    async def stream(self, answer: StreamTarget) -> None:
        result = self.result
        if answer.url.startswith("tcp://"):
            await self._stream_tcp(answer)
            return
        url = self.stream_url_override or connect_url_for(answer.url, self.base_url)
        result.connected_url = url
        stream_headers = getattr(self.profile, "stream_headers", None)
        headers = dict(stream_headers(answer)) if stream_headers is not None else {}
        options: dict[str, Any] = {
            "additional_headers": headers,
            "user_agent_header": getattr(self.profile, "ws_user_agent", f"{self.profile.name}-simulator"),
            "compression": None,
            "open_timeout": self.connect_timeout_s,
            "close_timeout": 2,
            "max_size": 2**22,
        }
        if _PROXY_SUPPORTED and is_loopback(url):
            options["proxy"] = None
        self.emit("connect", f"WebSocket {url}" + (" (signed)" if headers and self.signed else ""))
        try:
            self.ws = ws = await connect(url, **options)
        except InvalidStatus as e:
            result.error = f"WebSocket upgrade refused: HTTP {e.response.status_code}"
        except ConnectionRefusedError:
            result.error = f"WebSocket connection to {url} refused: nothing listens there"
        except (InvalidHandshake, OSError, TimeoutError) as e:
            result.error = f"WebSocket connection to {url} failed: {e!r}"
        if result.error:
            self.emit("connect", result.error)
            return
        try:
            await self.talk(answer)
        finally:
            await ws.close()

    async def _stream_tcp(self, answer: StreamTarget) -> None:
        """The stream over raw TCP (testing/simulator_tcp.py), for carriers like AudioSocket."""
        result = self.result
        result.connected_url = url = answer.url
        self.emit("connect", f"TCP {url}")
        try:
            self.ws = ws = await TcpFrameStream.open(url, self.connect_timeout_s)
        except ConnectionRefusedError:
            result.error = f"TCP connection to {url} refused: nothing listens there"
        except (OSError, TimeoutError, ValueError) as e:
            result.error = f"TCP connection to {url} failed: {e!r}"
        if result.error:
            self.emit("connect", result.error)
            return
        try:
            await self.talk(answer)
        finally:
            await ws.close()

    async def talk(self, answer: StreamTarget) -> None:
        result = self.result
        new_stream_id = getattr(self.profile, "new_stream_id", None)
        stream_sid = new_stream_id() if new_stream_id is not None else str(uuid.uuid4())
        result.stream_sid = self.stream_sid = stream_sid
        try:
            start = self.profile.start_messages(result.call_sid, stream_sid, answer)
            if start:
                await self.send(start[0])
            self.set_origin(self.loop.time())
            self.emit("connected", "sent")
            for message in start[1:]:
                await self.send(message)
            self.sequence = 1  # the start messages take number 1
            self.emit("start", f"stream {stream_sid}, parameters {result.custom_parameters}")
        except ConnectionClosed:
            pass  # the receiver reports how it closed
        receiver = asyncio.create_task(self.receive(), name="simulator-receive")
        ticker = asyncio.create_task(self.tick(), name="simulator-playout")
        sender = asyncio.create_task(self.send_caller_side(), name="simulator-send")
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not receiver.done():
                sender.result()
                await self.hang_up()
            await receiver
            if not sender.done():
                sender.cancel()
            self.finish()
        finally:
            for task in (sender, ticker, receiver):
                task.cancel()
            await asyncio.gather(sender, ticker, receiver, return_exceptions=True)

    async def hang_up(self) -> None:
        """The caller's side ends the call: last marks, ``stop``, close."""
        self.hanging_up = self.ended = True
        self.end_ms = now = self.now_ms()
        await self.echo_due_marks(now)
        try:
            await self.send(self.profile.stop_message)
            self.emit("stop", "sent")
            assert self.ws is not None
            await self.ws.close(1000)
        except ConnectionClosed:
            pass

    def finish(self) -> None:
        """After the WebSocket closed: the call's outcome."""
        result, ws = self.result, self.ws
        assert ws is not None
        if not self.ended:
            self.ended, self.end_ms = True, self.now_ms()
        result.closed_by = "caller" if self.hanging_up else "server"
        result.close_code, result.close_reason = ws.close_code, ws.close_reason
        self.emit("close", f"by {result.closed_by}, code {result.close_code} {result.close_reason or ''}".rstrip())
        self.end_burst()
        unheard = self.playout.buffered_ms(self.end_ms)
        self.end_agent_speech(
            min(self.end_ms, self.playout.busy_until_ms()), unheard_ms=unheard, interrupted=unheard > 0
        )
        heard = self.playout.heard(self.end_ms)
        result.heard_ulaw, result.playout = heard.ulaw, heard.stats
        result.caller_ulaw = bytes(self.caller_sent)
        result.clears = self.playout.clears
        result.marks_unechoed = [name for name, _ in self.pending_marks]
        result.stream_duration_ms = self.end_ms

    # -- sending --------------------------------------------------------------------------------------

    async def send(self, message: str | bytes | Callable[[int], str | bytes | None]) -> None:
        """Send a message: as is, or built with the next sequence number (None: nothing to send)."""
        assert self.ws is not None
        async with self.send_lock:  # sequence numbers in the order the messages go out
            if callable(message):
                self.sequence += 1
                built = message(self.sequence)
                if built is None:
                    self.sequence -= 1
                    return
                message = built
            await self.ws.send(message)

    async def sleep_until_ms(self, t_ms: float) -> None:
        assert self.origin is not None
        delay = self.origin + t_ms / 1000 - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- receiving ------------------------------------------------------------------------------------

    async def receive(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                if self.ended:
                    continue
                await self.handle(message)
        except ConnectionClosed:
            pass  # abnormal closure: close_code/close_reason say how

    async def handle(self, message: str | bytes) -> None:
        try:
            event = self.profile.parse(message)
        except ValueError as e:
            self.protocol_error(str(e))
            return
        if event is None:
            return
        now = self.now_ms()
        if isinstance(event, BridgeAudio):
            ulaw = self.normalised(event.payload)
            starts_ms = max(now, self.playout.busy_until_ms())
            if self.speech_from_ms is None:
                self.speech_from_ms, self.speech_played_before = starts_ms, self.playout.stats(now).played_ms
            self.playout.enqueue_media(ulaw, now)
            self.on_media(now, len(ulaw), starts_ms)
        elif isinstance(event, BridgeMark):
            name = event.name
            self.playout.enqueue_mark(name, now)
            self.pending_marks.append((name, now))
            if self.burst is not None:
                self.burst.marks += 1
            due = self.playout.busy_until_ms() - now
            self.emit("mark", f"{name} received" + (f", due in {due:.0f} ms" if due > 0 else ", nothing buffered"), now)
            await self.echo_due_marks(now)
            self.wake_ticker.set()
        else:
            flushed = self.playout.clear(now)
            dropped = self.playout.clears[-1].dropped_ms
            self.emit("clear", f"dropped {dropped:.0f} ms of buffered audio, flushing {len(flushed)} mark(s)", now)
            self.end_agent_speech(now, unheard_ms=dropped, interrupted=True)
            await self.echo(flushed, now, flushed=True)
            self.wake_ticker.set()

    def normalised(self, payload: bytes) -> bytes:
        """The bridge's audio as μ-law 8 kHz, exactly as long as it plays (the resampler's history
        may shift a few samples between frames; the playout clock must not drift)."""
        if self.profile.audio_format == ULAW_8K:
            return payload
        want = round(self.profile.audio_format.duration_ms(len(payload)) * 8)
        ulaw = self.bridge_audio.process(payload)
        return ulaw[:want].ljust(want, b"\xff")

    def on_media(self, now: float, size: int, starts_ms: float) -> None:
        result = self.result
        result.media_received += 1
        result.media_received_ms += size / 8
        if self.burst is None:
            self.bursts += 1
            self.burst = _Burst(self.bursts, last_ms=now)
            self.emit("media", f"burst {self.bursts}: first message, plays from {starts_ms:.0f} ms", now)
            self.wake_ticker.set()
        self.burst.last_ms = now
        self.burst.messages += 1
        self.burst.audio_ms += size / 8

    def end_burst(self) -> None:
        if self.burst is not None:
            b, self.burst = self.burst, None
            detail = f"burst {b.number}: last message; {b.messages} messages, {b.audio_ms:.0f} ms of audio"
            detail += f", {b.marks} marks"
            self.emit("media", detail, b.last_ms)

    def end_agent_speech(self, end_ms: float, *, unheard_ms: float, interrupted: bool) -> None:
        """The agent's stretch of audio is over for the caller: played out, cleared, or hung up on."""
        if self.speech_from_ms is None:
            return
        start_ms, self.speech_from_ms = self.speech_from_ms, None
        heard_ms = self.playout.stats(max(end_ms, start_ms)).played_ms - self.speech_played_before
        if heard_ms <= 0 and not unheard_ms:
            return
        detail = f"agent audio from {start_ms:.0f} ms: {heard_ms:.0f} ms heard"
        if interrupted:
            detail += f", interrupted ({unheard_ms:.0f} ms not heard)"
        data = {
            "start_ms": start_ms,
            "end_ms": end_ms,
            "heard_ms": heard_ms,
            "unheard_ms": unheard_ms,
            "interrupted": interrupted,
        }
        self.emit("agent_speech", detail, end_ms, data)

    async def echo_due_marks(self, now: float) -> None:
        await self.echo(self.playout.advance(now), now, flushed=False)

    async def echo(self, names: list[str], now: float, *, flushed: bool) -> None:
        for name in names:
            queued_name, received = self.pending_marks.popleft()
            assert queued_name == name
            self.result.marks_echoed.append(MarkEcho(name, received, now, flushed))
            self.emit("mark_echo", f"{name} {'flushed' if flushed else 'played'}", now)
        if not self.profile.echoes_marks:
            return
        for name in names:
            try:
                await self.send(partial(self.profile.mark_echo, name))
            except ConnectionClosed:
                return

    async def tick(self) -> None:
        """Echo marks exactly when their audio has played; notice when a media burst is over."""
        while True:
            self.wake_ticker.clear()
            if self.ended:
                return
            now = self.now_ms()
            await self.echo_due_marks(now)
            deadlines = []
            due = self.playout.next_mark_due_ms()
            if due is not None:
                deadlines.append(due)
            if self.burst is not None:
                if now - self.burst.last_ms >= BURST_GAP_MS:
                    self.end_burst()
                else:
                    deadlines.append(self.burst.last_ms + BURST_GAP_MS)
            if self.speech_from_ms is not None:
                quiet_from = self.playout.busy_until_ms()
                if now - quiet_from >= SPEECH_GAP_MS:
                    self.end_agent_speech(quiet_from, unheard_ms=0.0, interrupted=False)
                else:
                    deadlines.append(quiet_from + SPEECH_GAP_MS)
            timeout = max(0.0, (min(deadlines) - self.now_ms()) / 1000) if deadlines else None
            try:
                await asyncio.wait_for(self.wake_ticker.wait(), timeout)
            except TimeoutError:
                pass
