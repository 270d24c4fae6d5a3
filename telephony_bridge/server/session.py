"""One media stream = one `CallSession`, which owns everything of that call.

The stream is a WebSocket for the HTTP carriers and a TCP connection for AudioSocket: the session
sees either as a `MediaTransport` (server/media_transport.py), and binds its start to an accepted
call through a `StreamBinding` (the answer's token by default).

All tasks of the call live in one `asyncio.TaskGroup` (through a `TaskOwner`); either side closing
ends the call: Disconnected fires, the scenario's Terminating/Terminated fire, every client the
scenario opened is closed, every task is cancelled and awaited. Nothing of a finished call stays.

A broken or hostile carrier costs only its own call, and never an unbounded amount of anything:
- A frame the carrier's codec refuses is logged with the call id and counted, and the call goes
  on. A frame the WebSocket layer refuses (over uvicorn's ws_max_size,
  invalid UTF-8) fails the connection there; the call ends saying so.
- Inbound floods are bounded by uvicorn, which stops reading a connection after each message until
  the application has taken it; nothing here queues caller frames. DTMF kept in the call journal is
  capped per call (a flood is counted, not stored).
- A watchdog (one wake-up per fraction of a second per call, nothing per frame) ends the call when
  the carrier stops reading (`peer_stall_timeout_s`), when a media unit stops taking caller audio
  (`media_stall_timeout_s`: the carrier reader — hang-up, DTMF, marks — must not wait on it), or
  when no `start` arrives (`start_timeout_s`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocketDisconnect

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.audio.gaps import GapFiller
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    CallStarted,
    Carrier,
    DtmfReceived,
    MarkEchoed,
    StreamEnded,
)
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.lifecycle import CallEnd, EndReason
from telephony_bridge.server.asgi import TRANSPORT_ABORT_SCOPE_KEY
from telephony_bridge.server.journal import CallJournal
from telephony_bridge.server.media_link import MediaLink, close_reason
from telephony_bridge.server.media_transport import MediaTransport
from telephony_bridge.server.metrics import UPLINK_SAMPLE_EVERY
from telephony_bridge.server.session_http import HANDLER_TIMEOUT_S, access_url
from telephony_bridge.server.session_watchdog import watch
from telephony_bridge.server.stream_tokens import StreamGrant, StreamTokenError
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.call import Call
from telephony_bridge.voxengine.context import call_context
from telephony_bridge.voxengine.events import AppEvents
from telephony_bridge.voxengine.listeners import EventPayload
from telephony_bridge.voxengine.recording import RecordingsConfig

if TYPE_CHECKING:
    from telephony_bridge.server.runtime import BridgeRuntime

log = logging.getLogger("telephony_bridge.call")

# Names a stream must not pass off as the bridge's (they were parameters once, and are taken from
# the answer's token now); any other parameter is the scenario's custom data.
BRIDGE_PARAMETERS = frozenset({STREAM_TOKEN_PARAMETER, "scenario", "From", "To", "CallSid"})
BAD_FRAMES_LOGGED = 10  # per call; after that only every 100th, so a flood cannot flood the log
UNIT_FAILURES_LOGGED = 10  # the same for a media unit that raises on caller audio
# Tasks a scenario's handlers started (a Disconnected handler posting a summary) keep the scenario's
# globals until they finish, at most this long after Terminated; then they are cancelled and the
# namespace is cleared (pitfall 24).
SCENARIO_TASK_GRACE_S = 5.0
DTMF_JOURNALED = 200  # per call: a real caller presses a few dozen keys; beyond that, count only
# How a carrier's own close reads to the scenario: these are hang-ups (1005/1006: the TCP
# connection went without a close frame); any other code is the connection failing.
HANGUP_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006})

# How a stream's start is bound to a call the bridge accepted, giving the scenario and numbers.
# By default the single-use token the answer request minted (server/stream_tokens.py); a carrier
# with no answer request (AudioSocket: admitted by its listener's allow-list) passes its own.
StreamBinding = Callable[[CallStarted], StreamGrant]


class StreamRefused(Exception):
    """A stream binding's refusal of a start: the reason is logged and ends the call."""


class CallSession:
    def __init__(
        self,
        websocket: MediaTransport,
        runtime: BridgeRuntime,
        connection_id: int,
        carrier: Carrier,
        binding: StreamBinding | None = None,
    ) -> None:
        self.websocket = websocket  # a Starlette WebSocket, or another MediaTransport (server/audiosocket.py)
        # None: the default, the answer's token. (Not `self._redeem_token` kept here: a bound method
        # of the session on the session is a reference cycle, and a finished call must be freed at once.)
        self._binding = binding
        self.runtime = runtime
        self.carrier = carrier
        self.label = f"stream {connection_id}"
        self.codec = carrier.new_codec()
        self.gaps = GapFiller()  # replaced at the start, in the stream's format
        self.call: Call | None = None
        self.call_sid: str | None = None  # kept after teardown, when `call` is released
        self.link: MediaLink | None = None
        self.vox: Any = None
        # An outbound call's stream joins the session that placed the call (server/outbound.py):
        # the call is that session's, and so are the scenario's VoxEngine and clients.
        self.outbound: Any = None
        self.scenario_vox: Any = None
        self._namespace: dict[str, Any] | None = None  # the scenario's globals for this call
        self._openai: Any = None
        self._access_token: str | None = None  # of the call's accessSecureURL, while it runs
        self.journal: CallJournal | None = None
        self.tasks: TaskOwner | None = None
        self.bad_frames = 0
        self.frames_in = 0
        self.dtmf_in = 0
        self.unit_failures = 0
        self.forwarding = False  # the carrier reader is waiting on the media units (watchdog reads it)
        self.carrier_stalled = False
        self._link_closed = False
        self._ended = asyncio.Event()
        self._end = EndReason(CallEnd.CALLER_HUNG_UP)
        self._close_code = CallEnd.CALLER_HUNG_UP.close_code
        self._started_at = time.monotonic()
        self._loop = asyncio.get_running_loop()

    def now_ms(self) -> float:
        return self._loop.time() * 1000

    def end(self, kind: CallEnd, detail: str | None = None, code: int | None = None) -> None:
        """End the call (once): why, in a sentence when there is more to say than the kind."""
        if not self._ended.is_set():
            self._end = EndReason(kind, detail)
            self._close_code = kind.close_code if code is None else code
            self._ended.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self.tasks = TaskOwner(self.label, group)
            reader = self.tasks.spawn(self._read_carrier(), name="carrier reader")
            watchdog = self.tasks.spawn(watch(self), name="watchdog")
            await self._ended.wait()
            reader.cancel()
            watchdog.cancel()
            await self._teardown()

    # --- carrier input --------------------------------------------------------------------
    async def _read_carrier(self) -> None:
        websocket = self.websocket
        metrics, loop = self.runtime.metrics, self._loop
        codec = self.codec
        audio_event = codec.audio_event
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self._carrier_closed(message.get("code", 1005), message.get("reason") or "")
                    break
                frame = message.get("text")
                if frame is None:
                    frame = message.get("bytes")
                    if frame is None:
                        continue
                try:
                    event = codec.parse(frame)
                except CarrierProtocolError as exc:
                    self._bad_frame(exc.reason)
                    continue
                if type(event) is audio_event:  # 50 a second: inline, one coroutine fewer per frame
                    self.frames_in += 1
                    metrics.frames_in += 1
                    call = self.call
                    if call is None:
                        continue
                    self.forwarding = True
                    sampled = self.frames_in % UPLINK_SAMPLE_EVERY == 0
                    started = loop.time() if sampled else 0.0
                    timestamp_ms = event.timestamp_ms
                    audio = event.payload if timestamp_ms is None else self.gaps.fill(timestamp_ms, event.payload)
                    try:
                        await call.caller_audio(audio)
                    except Exception as exc:
                        self._unit_failed(exc)
                    if sampled:  # what the bridge adds between the carrier's frame and the model's append
                        metrics.uplink_latency_s.append(loop.time() - started)
                    self.forwarding = False
                elif event is not None and await self._handle(event):
                    break
        except WebSocketDisconnect as exc:
            self._carrier_closed(exc.code, exc.reason or "")
        except Exception:
            # A bug below the reader (say, the journal's disk full at start): the call must not
            # linger without a reader, and must not be reported as a hang-up.
            log.exception("%s: carrier reader failed; ending the call", self.label)
            self._end = EndReason(CallEnd.INTERNAL_ERROR)
        finally:
            self.end(self._end.kind, self._end.detail)

    def _carrier_closed(self, code: int, reason: str) -> None:
        if code in HANGUP_CLOSE_CODES:
            return  # "caller hung up"
        # The WebSocket layer failed the connection (a frame over ws_max_size: 1009, invalid UTF-8:
        # 1007, …). Nothing can be sent back any more; say why the call ended.
        self._end = EndReason(CallEnd.CARRIER_FAILED, f"carrier connection failed ({f'{code} {reason}'.strip()})")
        log.warning("%s: %s; ending the call", self.label, self._end)

    def _bad_frame(self, reason: str) -> None:
        self.bad_frames += 1
        self.runtime.metrics.frames_rejected += 1
        if self.bad_frames <= BAD_FRAMES_LOGGED or self.bad_frames % 100 == 0:
            log.warning("%s: bad carrier frame #%d ignored: %s", self.label, self.bad_frames, reason)

    async def _handle(self, event: Any) -> bool:
        """Apply one carrier event; True when the stream has ended."""
        if isinstance(event, MarkEchoed):
            if self.call is not None:
                self.call.mark(event.name)
        elif isinstance(event, DtmfReceived):
            if self.call is not None:
                self.dtmf_in += 1
                if self.journal and self.dtmf_in <= DTMF_JOURNALED:
                    self.journal.record("caller.dtmf", digit=event.digit)
                self.call.tone(event.digit)
        elif isinstance(event, CallStarted):
            await self._start(event)
        elif isinstance(event, StreamEnded):
            self._end = EndReason(
                CallEnd.CALLER_HUNG_UP, event.reason if event.reason != CallEnd.CALLER_HUNG_UP.text else None
            )
            return True
        return False

    def _unit_failed(self, exc: Exception) -> None:
        """A media unit raised on caller audio: a scenario bug, logged; the call goes on."""
        self.unit_failures += 1
        if self.unit_failures <= UNIT_FAILURES_LOGGED or self.unit_failures % 100 == 0:
            log.warning(
                "%s: media unit failed on caller audio (%d so far): %s: %s",
                self.label,
                self.unit_failures,
                type(exc).__name__,
                exc,
                exc_info=self.unit_failures == 1,
            )

    # --- call start -----------------------------------------------------------------------
    async def _start(self, start: CallStarted) -> None:
        runtime = self.runtime
        params = start.custom_parameters
        call_sid = start.call_id  # the codec checked its form; the binding ties it to an accepted call
        try:
            grant = self._binding(start) if self._binding is not None else self._redeem_token(start)
        except (StreamTokenError, StreamRefused) as exc:
            runtime.metrics.streams_unbound += 1
            log.warning("%s: start for call %s refused: %s", self.label, call_sid, exc)
            self.end(CallEnd.STREAM_REFUSED, f"stream refused: {exc}")
            return
        if grant.outbound:
            self._join_outbound(grant, start)
            return
        link, tasks = self._bind(call_sid, start)
        scenario_name = grant.scenario
        scenarios = runtime.scenarios  # the version in force when the call started (reload-safe)
        scenario = scenarios.get(scenario_name)
        self._open_journal(call_sid, grant)
        self.call = Call(
            call_sid=call_sid,
            caller_id=grant.caller,
            number=grant.number,
            custom_data={k: v for k, v in params.items() if k not in BRIDGE_PARAMETERS},
            link=link,
            tasks=tasks,
            control=self.carrier.call_control(),
            clock_ms=self.now_ms,
            on_hangup=self.hangup_requested,
            preroll_ms=runtime.settings.preroll_ms,
            recordings=RecordingsConfig(runtime.settings.recordings_dir, runtime.settings.base_url),
        )
        if scenario is None:
            log.error("%s: scenario %r not found; ending the call", self.label, scenario_name)
            self.end(CallEnd.NO_SCENARIO)
            return
        vox, openai = call_context(
            tasks,
            self.end,
            runtime.local_engine_url,
            runtime.settings.model_environ(),
            runtime.services,
            scenario=scenario.name,
        )
        openai.Beta.observer = self._observe_model
        vox.call_custom_data = self.call.customData()
        self.vox, self._openai = vox, openai
        # Kept before it runs, so that it is cleared at teardown even when the top level raises.
        self._namespace = scenario.namespace(vox, openai, scenario.logger(self.label))
        try:
            scenario.execute(self._namespace)
        except Exception:
            log.exception("%s: scenario %s raised at its top level; ending this call", self.label, scenario.name)
            self.end(CallEnd.SCENARIO_ERROR)
            return
        self._access_token = runtime.session_access.issue(self._http_request)
        url = access_url(runtime.settings.base_url, self._access_token)
        vox.emit(AppEvents.Started, accessURL=url, accessSecureURL=url, sessionId=call_sid)
        vox.emit(
            AppEvents.CallAlerting,
            # The scenario's entry point: if it fails, the scenario cannot serve this caller, so the
            # call ends (cleanly, Terminated fires) instead of leaving the caller in silence.
            on_error=lambda: self.end(CallEnd.SCENARIO_ERROR),
            call=self.call,
            callerid=self.call.callerid(),
            destination=self.call.number(),
            customData=self.call.customData(),
            headers={},
            scheme=self.carrier.name,
        )

    def _redeem_token(self, start: CallStarted) -> StreamGrant:
        """The default binding: the answer's single-use token, from the start or the stream URL."""
        token = start.token or self.websocket.query_params.get(STREAM_TOKEN_PARAMETER)
        return self.runtime.stream_tokens.redeem(token, start.call_id)

    def _bind(self, call_sid: str, start: CallStarted) -> tuple[MediaLink, TaskOwner]:
        """Name the session after its call and open its link; the link and the call's tasks."""
        self.call_sid = call_sid
        self.label = f"call {call_sid}"
        assert self.tasks is not None
        self.tasks.label = self.label
        self.gaps = GapFiller(audio_format=start.audio_format)
        self.link = MediaLink(
            self.websocket,
            self.codec,
            self.carrier,
            start.audio_format,
            self.websocket.scope.get(TRANSPORT_ABORT_SCOPE_KEY),
            self.runtime.metrics,
        )
        return self.link, self.tasks

    def _join_outbound(self, grant: Any, start: CallStarted) -> None:
        """The stream of a call a running scenario placed: join its waiting Call (no new scenario)."""
        runtime = self.runtime
        outbound = runtime.outbound_calls.get(grant.outbound)
        if outbound is None or outbound.call_sid != start.call_id or outbound.stream is not None:
            runtime.metrics.streams_unbound += 1
            log.warning(
                "%s: start for outbound call %s refused: no call waits for this stream", self.label, start.call_id
            )
            self.end(CallEnd.STREAM_REFUSED, "stream refused: no outbound call waits for it")
            return
        self._bind(start.call_id, start)
        host = outbound.host
        self._open_journal(
            start.call_id, grant, direction="outbound", session=host.session_id, answered_by=outbound.answered_by
        )
        self.outbound, self.scenario_vox = outbound, outbound.host.vox
        self.call = outbound.call
        assert self.link is not None
        outbound.attach(self, self.link)

    def _open_journal(self, call_sid: str, grant: StreamGrant, **fields: Any) -> None:
        self.journal = CallJournal(self.label, self.runtime.settings.calls_dir)
        self.journal.open(call_sid)
        self.journal.record(
            "call.started",
            call_sid=call_sid,
            caller=grant.caller,
            number=grant.number,
            scenario=grant.scenario,
            **fields,
            pid=os.getpid(),  # the worker, with --workers
        )
        self.runtime.metrics.calls_started += 1

    def _observe_model(self, client: Any, observed: Any) -> None:
        """The call's clients report here (realtime/observer.py): the journal and the process metrics both listen."""
        assert self.journal is not None
        self.journal.model_event(client, observed)
        self.runtime.metrics.model_event(client, observed)

    async def _http_request(self, payload: EventPayload) -> tuple[bool, Any]:
        """A request to the call's access URL (server/session_http.py): AppEvents.HttpRequest."""
        if self.vox is None or self._ended.is_set():
            return False, None
        if self.journal:
            self.journal.record("app.http_request", method=payload["method"], path=payload["path"])
        return await self.vox.answer_http_request(payload, HANDLER_TIMEOUT_S)

    def hangup_requested(self, kind: CallEnd) -> None:
        """The scenario hung up (`call.hangup()`; an outbound call's reaches here through server/outbound.py)."""
        if self.journal:
            self.journal.record("call.hangup", reason=kind.text)
        self.end(kind)

    # --- teardown -------------------------------------------------------------------------
    async def _teardown(self) -> None:
        if self._access_token is not None:  # the access URL dies with the call: 404 from now on
            self.runtime.session_access.revoke(self._access_token)
            self._access_token = None
        duration = time.monotonic() - self._started_at
        end = self._end
        reason = end.text
        if self.carrier_stalled:
            # First: the model's reader may be blocked sending to this carrier, and closing the
            # model cleanly needs that reader. Dropping the link releases it.
            await self._close_link(reason)
        assert self.tasks is not None
        earlier_tasks = self.tasks.running()  # a scenario's own timers are not waited for below
        if self.call is not None:
            self.call.terminated(reason, duration)
        if self.outbound is not None:
            self.outbound.stream_ended()
        if self.vox is not None:
            self.vox.emit(AppEvents.Terminating, reason=reason)
            await self._close_clients()
            self.vox.emit(AppEvents.Terminated, reason=reason)
        grace_ends = time.monotonic() + SCENARIO_TASK_GRACE_S
        # Handlers of the last events (Disconnected, Terminating, Terminated) may finish briefly,
        # and a REST hang-up in flight must reach the carrier.
        rest_hangup = self.call.rest_hangup if self.call is not None else None
        await self.tasks.drain(timeout_s=2.0, exclude=earlier_tasks - {rest_hangup})
        if self.vox is not None:
            # A handler still connecting when the call ended (say, createRealtimeAPIClient in
            # CallAlerting of a call hung up at once) has just registered its client: close it too.
            await self._close_clients()
        await self._close_link(reason)
        if self.journal is not None:
            if self.call is not None and self.call.recording is not None:
                self.journal.recording(self.call.recording, self._loop.time())
            self.journal.record(
                "call.ended",
                reason=reason,
                end=end.kind.journal_name,
                duration_s=round(duration, 3),
                frames_in=self.frames_in,
                bad_frames=self.bad_frames,
                dtmf=self.dtmf_in,
            )
            self.journal.close()
        # Handlers started at the end (and anything they started) still running: their globals stay
        # until they finish, bounded; the scenario's older timers are not waited for (pitfall 24).
        await self.tasks.drain(timeout_s=max(0.0, grace_ends - time.monotonic()), exclude=earlier_tasks)
        await self.tasks.aclose()
        self.runtime.metrics.call_ended(end.kind)
        self.runtime.metrics.handler_events_dropped += self._handler_events_dropped()
        if self.vox is not None:
            self.vox.listeners.clear()
        # Break the call's reference cycles now, so a finished call is freed at once by reference
        # counting rather than at the next full GC, which with ~50 k long-lived objects comes only
        # every few hundred calls: a 10-minute soak held ~100 finished calls and RSS grew by 40 MB.
        # The cycles: the scenario's globals hold its functions, whose globals are that dict, and
        # `OpenAI`, whose observer (like each client's) is a bound method of this session; the
        # VoxEngine's terminate() is one too; the Call's handlers are closures over the Call, which
        # holds bound methods of this session (tests/integration/test_leaks.py shows each).
        if self.call is not None:
            self.call.release()
        self.call = self.link = None
        self.outbound = None  # scenario_vox stays: the call-flow kit reads its clients after the call
        if self.vox is not None:
            self.vox.release()
        if self._openai is not None:
            self._openai.Beta.observer = None
            self._openai = None
        if self._namespace is not None:
            self._namespace.clear()
            self._namespace = None

    def _handler_events_dropped(self) -> int:
        """Events the call's busy async handlers could not take (voxengine/listeners.py)."""
        owners = [self.call, self.vox, *(self.vox.clients if self.vox is not None else ())]
        return sum(owner.listeners.dropped for owner in owners if owner is not None)

    async def _close_clients(self) -> None:
        for client in list(self.vox.clients):
            await client.aclose("call ended")  # idempotent

    async def _close_link(self, reason: str) -> None:
        if self._link_closed:
            return
        self._link_closed = True
        abort = self.websocket.scope.get(TRANSPORT_ABORT_SCOPE_KEY)
        link = self.link or MediaLink(self.websocket, self.codec, self.carrier, ULAW_8K, abort)  # never started
        wait_s = self.runtime.settings.peer_stall_timeout_s
        if not await link.close(self._close_code, close_reason(reason), wait_s):
            log.warning(
                "%s: the carrier did not take the close frame within %g s; connection dropped", self.label, wait_s
            )
