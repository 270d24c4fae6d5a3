"""ModelConnection: one realtime model session over a WebSocket, kept alive for the call.

It opens the socket (auth headers, timeouts, keepalive pings), runs a reader and a writer task,
reconnects with backoff and replays the call so far into a fresh session (session config,
conversation mirror, and a `response.create` when an answer was cut off), recycles the session
before the provider's cap, cuts off a model whose answer stalled (stall.py), and applies the
error policy. It knows nothing of calls, listeners or playout: what it learns it tells one
consumer through `ConnectionEvents`, typed, in wire order. Caller audio goes through its `uplink`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.protocol import State

from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.connection_dispatch import ServerEventDispatch
from telephony_bridge.realtime.connection_events import (
    NO_CONSUMER,
    ConnectionEvents,
    Reconnected,
)
from telephony_bridge.realtime.conversation import ConversationMirror
from telephony_bridge.realtime.dialect import Codec
from telephony_bridge.realtime.error_policy import FATAL_ERROR_CODES, is_fatal
from telephony_bridge.realtime.events import (
    AUDIO_DELTA_TYPE,
    Dialect,
)
from telephony_bridge.realtime.loop_pauses import PauseAwareClientConnection, nap
from telephony_bridge.realtime.stall import (
    DEFAULT_ANSWER_STALL_TIMEOUT_S,
    AnswerStallPolicy,
)
from telephony_bridge.realtime.stats import ClientStatistics
from telephony_bridge.realtime.text import redact, trace_line
from telephony_bridge.realtime.uplink import MAX_BUFFERED_AUDIO_BYTES, Uplink
from telephony_bridge.tasks import TaskOwner

log = logging.getLogger("telephony_bridge.realtime")


# OpenAI caps a Realtime session at 60 minutes; recycle at a turn boundary well before that.
DEFAULT_SESSION_MAX_S = 55 * 60
DEFAULT_PING_INTERVAL_S = 5.0
# A caller is on the line: retry fast and often rather than back off exponentially for long. The
# first dozen attempts cover ~12 s; `maxReconnectAttempts` picks how many are used.
RECONNECT_BACKOFF_S = (0.0, 0.2, 0.3, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0)


class RealtimeConnectionError(ConnectionError):
    """The model WebSocket could not be opened. The message never contains the API key."""


class ModelConnection(ServerEventDispatch):
    # Error codes after which the session is unusable (GPT-Live adds its own: live_connection.py).
    fatal_error_codes: frozenset[str] = FATAL_ERROR_CODES

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        dialect: Dialect,
        codec: Codec,
        tasks: TaskOwner,
        events: ConnectionEvents,
        name: str,
        trace: bool = False,
        reconnect: bool = True,
        max_reconnect_attempts: int = 12,
        session_max_s: float | None = DEFAULT_SESSION_MAX_S,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
        answer_stall_timeout_s: float = DEFAULT_ANSWER_STALL_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.dialect: Dialect = dialect
        self.codec: Codec = codec
        self.tasks = tasks
        self.name = name
        self.trace = trace
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.session_max_s = session_max_s
        self.ping_interval_s = ping_interval_s
        self.stats = ClientStatistics()
        self.uplink = Uplink(codec, self.stats, tasks.label)
        self.session: dict[str, Any] = {}
        self.session_id: str | None = None
        self.session_config: dict[str, Any] = {}  # replayed as one session.update after a reconnect
        self.conversation = ConversationMirror()
        self.caller_speaking = False
        self._api_key = api_key
        self._events = events
        self._ms_per_byte = 1 / 48 if codec == "pcm16" else 1 / 8  # model audio: PCM16 24 kHz or μ-law 8 kHz
        self.audio_delta_type = AUDIO_DELTA_TYPE[dialect]  # a translation session names its audio otherwise
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        self._closed = False
        self._close_reported = False
        self._own_tasks: list[asyncio.Task[Any]] = []
        self._responses_in_progress: set[str] = set()
        self._connected = asyncio.Event()
        self._connected_at = 0.0
        self._recycling = False
        # A model silent mid-answer with its socket open: cut it off and reconnect (stall.py).
        self._answer_stall = AnswerStallPolicy(answer_stall_timeout_s)
        self._answering = asyncio.Event()  # wakes the answer watchdog
        self._drop_reason: str | None = None  # why the bridge itself cut the connection
        # session.update events awaiting their session.updated, in send order: (event_id, sent by
        # the bridge itself). The bridge's own updates (the formats it forces, a reconnect's replay)
        # must not reach the scenario as SessionUpdated (pitfall 22).
        self._session_updates: deque[tuple[str, bool]] = deque()
        self._update_ids = itertools.count(1)
        # Set once the client said it sends no more caller audio (a translation's session.close):
        # the uplink stays shut, across a reconnect too.
        self.input_closed = False

    def session_update_for(self, config: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """The `session.update` that sets `config` (replayed after a reconnect); a client whose
        sessions have another shape (GA transcription) replaces it."""
        return wire.session_update(config, self.dialect, self.codec, event_id)

    # --- lifecycle ------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 10.0) -> None:
        self._ws = await self._open(timeout_s)
        self._connected_at = asyncio.get_running_loop().time()
        self._answer_stall.reset(self._connected_at)
        self._ready(self._ws)
        self._own_tasks.append(self.tasks.spawn(self._run(), name=f"model reader {self.name}"))
        self._own_tasks.append(self.tasks.spawn(self._write_loop(), name=f"model writer {self.name}"))
        if self._answer_stall.timeout_s > 0:
            self._own_tasks.append(self.tasks.spawn(self._watch_answers(), name=f"answer watchdog {self.name}"))

    def _ready(self, ws: ClientConnection) -> None:
        self._connected.set()
        if not self.input_closed:
            self.uplink.ws = ws

    def close_input(self) -> None:
        """No more caller audio to the model from now on (the socket stays open for its answers)."""
        self.input_closed = True
        self.uplink.ws = None

    def _down(self) -> None:
        self._connected.clear()
        self.uplink.ws = None

    async def _open(self, timeout_s: float) -> ClientConnection:
        headers = {}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self.dialect == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        try:
            return await connect(
                self.url,
                additional_headers=headers,
                open_timeout=timeout_s,
                max_size=16 * 1024 * 1024,
                compression=None,  # audio is incompressible; deflate costs CPU per frame
                # A half-open socket (a NAT or proxy silently gone) shows only as unanswered pings:
                # the library default (20 s + 20 s) would leave a caller in silence for 40 s.
                ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_interval_s,
                create_connection=PauseAwareClientConnection,  # its pong timeout skips our own hold-ups
                # After a failed ping the library still waits this long for a closing handshake
                # that cannot cross a half-open socket (default 10 s): the caller is waiting.
                close_timeout=1.0,
                # Our own bound (MAX_BUFFERED_AUDIO_BYTES) decides when to drop audio; the
                # library's must sit above it so that send() never waits on drain.
                write_limit=4 * MAX_BUFFERED_AUDIO_BYTES,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            hint = " (authentication failed: check the API key)" if status in (401, 403) else ""
            raise RealtimeConnectionError(
                f"model endpoint {self.safe_url()} refused the connection: HTTP {status}{hint}"
            ) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise RealtimeConnectionError(
                f"cannot connect to model endpoint {self.safe_url()}: "
                f"{redact(str(exc), self._api_key) or type(exc).__name__}"
            ) from None

    def safe_url(self) -> str:
        return redact(self.url, self._api_key)

    def redact(self, text: str) -> str:
        """`text` with the API key taken out (for messages built from a transport's errors)."""
        return redact(text, self._api_key)

    @property
    def api_key(self) -> str | None:
        """For a transport that signs its own requests (WebRTC's offer); never to be logged."""
        return self._api_key

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ws(self) -> ClientConnection | None:
        """The current socket (kept after the close, for its addresses)."""
        return self._ws

    async def aclose(self, reason: str) -> None:
        """Close for good. Idempotent, and always rids the call of the socket: 'reported closed'
        and 'socket gone' are kept apart, so a reader that died first cannot leave the model
        connection open."""
        if not self._closed:
            self._closed = True
            self.uplink.ws = None
            self._events.on_closing()
        ws = self._ws
        if ws is not None and ws.state is not State.CLOSED:
            try:
                await asyncio.wait_for(ws.close(1000, reason[:120]), 2.0)
            except (TimeoutError, ConnectionClosed, OSError):
                pass
            if ws.state is not State.CLOSED and ws.transport is not None:
                ws.transport.abort()  # the closing handshake stalled: drop the connection
        self._report_close(1000, reason, True)
        current = asyncio.current_task()
        for task in self._own_tasks:
            if task is not current:
                task.cancel()
        # A cancelled task's traceback holds its frame, which holds this connection: let them go.
        self._own_tasks = [task for task in self._own_tasks if task is current]

    def _report_close(self, code: int, reason: str, was_clean: bool) -> None:
        if not self._close_reported:
            self._close_reported = True
            events, self._events = self._events, NO_CONSUMER
            # The consumer holds this connection: forgetting it after the last report leaves no
            # cycle, so a finished call is freed by reference counting, without waiting for the gc.
            events.on_closed(code, reason, was_clean)

    # --- client events (fire and forget, in order) ----------------------------------------
    def send(self, event: Mapping[str, Any]) -> None:
        """Queue a control event; the writer sends it once the model can take it (after a reconnect too)."""
        if self.trace:
            log.info("%s → %s", self.tasks.label, trace_line(event))
        try:
            self._outbox.put_nowait(orjson.dumps(event))
        except asyncio.QueueFull:
            raise RuntimeError("too many model messages queued; is the model connection stalled?") from None

    def track_session_update(self, event: Mapping[str, Any], *, own: bool) -> dict[str, Any]:
        """A `session.update` about to be sent (returned with an `event_id`), remembering whether the bridge sent it
        (`own`) so that its `session.updated` is kept from the consumer. GA servers do not echo a
        session.update's `event_id` in the `session.updated` (the SDK says so); they answer updates in
        order, each with one `session.updated` or one `error` that names the `event_id`. So: every update
        gets an id; an error naming one drops it from the queue; a `session.updated` answers the oldest one
        still waiting (or the one it names, where a server does echo ids)."""
        if not isinstance(event.get("event_id"), str):
            event = {**event, "event_id": f"evt_bridge_su{next(self._update_ids)}"}
        else:
            event = dict(event)
        self._session_updates.append((event["event_id"], own))
        return event

    def _own_session_updated(self, event: Mapping[str, Any]) -> bool:
        """Whether this `session.updated` answers an update the bridge sent itself."""
        pending = self._session_updates
        echoed = event.get("event_id")
        for index, (event_id, own) in enumerate(pending):
            if event_id == echoed:
                del pending[index]
                return own
        return pending.popleft()[1] if pending else False  # none waiting: the server's own news

    def _session_update_refused(self, event: Mapping[str, Any]) -> None:
        refused = (event.get("error") or {}).get("event_id")
        for index, (event_id, _own) in enumerate(self._session_updates):
            if event_id == refused:
                del self._session_updates[index]
                return

    def update_session(self, session: Mapping[str, Any]) -> None:
        self.session_config.update(session)

    def response_cancelled(self, response_id: str | None = None) -> None:
        """The scenario (or a barge-in) cancelled an answer: it owes the caller no more audio."""
        if response_id is None:
            self._answer_stall.answering.clear()
        else:
            self._answer_stall.audio_finished(response_id)

    # --- I/O loops ------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        while True:
            message = await self._outbox.get()
            while True:
                await self._connected.wait()
                ws = self._ws
                assert ws is not None
                try:
                    await ws.send(message, text=True)
                    break
                except ConnectionClosed:
                    if self._ws is ws:  # not yet replaced: wait for the reconnect, then resend
                        self._connected.clear()

    async def _run(self) -> None:
        """Read the model's events; on a drop, reconnect and replay; report the final close once."""
        code, reason, clean = 1006, "connection lost", False
        try:
            while True:
                assert self._ws is not None
                code, reason, clean = await self._read(self._ws)
                if self._drop_reason is not None:
                    code, reason, clean, self._drop_reason = 1006, self._drop_reason, False, None
                if self._closed or not (self.reconnect or self._recycling):
                    break
                if not await self._reconnect(code, reason):
                    break
        except Exception:
            log.exception("%s: model reader failed; dropping the model connection", self.tasks.label)
            code, reason, clean = 1011, "model reader failed", False
            if self._ws is not None and self._ws.transport is not None:
                self._ws.transport.abort()
        finally:
            if not self._closed:
                self._closed = True
                self.uplink.ws = None
                log.info("%s: model WebSocket closed (%s %s)", self.tasks.label, code, reason)
                self._events.on_closing()
                self._report_close(code, reason, clean)

    async def _read(self, ws: ClientConnection) -> tuple[int, str, bool]:
        try:
            loop = asyncio.get_running_loop()
            stall = self._answer_stall
            while True:
                # The frame's bytes as they came, not `async for raw in ws`: decoding a text frame
                # to str is a UTF-8 pass and a copy of the whole delta (6,400 characters of PCM16
                # base64 per 100 ms), and orjson parses bytes directly, checking UTF-8 itself; the
                # async iterator is one more generator hop per message. Together 8,300 of the
                # bridge's 704,000 instructions per model delta (bench/README.md, issue 22).
                raw = await ws.recv(decode=False)
                stall.last_heard_at = loop.time()
                try:
                    event = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    log.warning("%s: model sent a frame that is not JSON; ignored", self.tasks.label)
                    continue
                await self.dispatch(event)
        except ConnectionClosedOK:
            pass  # the close handshake completed: what `async for` ends on
        except ConnectionClosed as exc:
            received = exc.rcvd
            return (received.code, received.reason, False) if received else (1006, "connection lost", False)
        return ws.close_code or 1000, ws.close_reason or "", True

    async def _reconnect(self, code: int, reason: str) -> bool:
        """Open a new model session and replay the call so far into it; False when giving up."""
        loop = asyncio.get_running_loop()
        self._down()
        down_at = loop.time()
        silent_ms = (down_at - self._answer_stall.last_heard_at) * 1000
        dropped_before = self.stats.caller_audio_dropped_ms
        recycled, self._recycling = self._recycling, False
        # Cut off mid-answer: the new session must be asked for the answer again, or it waits
        # for the caller to speak (pitfall 21). Not when the caller is talking: their turn comes.
        resume = bool(self._answer_stall.answering) and not self.caller_speaking
        self._answer_stall.reset(down_at)
        if not recycled:
            log.warning("%s: model WebSocket dropped (%s %s); reconnecting", self.tasks.label, code, reason)
        # Answers cut by the drop never finish: let the consumer settle what was already played.
        for response_id in list(self._responses_in_progress):
            self._response_finished(response_id)
        delays = (0.0,) if recycled else RECONNECT_BACKOFF_S[: self.max_reconnect_attempts]
        for attempt, delay in enumerate(delays, start=1):
            self._events.on_reconnecting(attempt, code, reason)
            await asyncio.sleep(delay)
            if self._closed:
                return False
            try:
                ws = await self._open(timeout_s=5.0)
            except RealtimeConnectionError as exc:
                log.warning("%s: reconnect attempt %d failed: %s", self.tasks.label, attempt, exc)
                continue
            try:
                replayed = await self._replay(ws, resume)
            except ConnectionClosed:
                continue
            self._ws = ws
            self._connected_at = loop.time()
            self._answer_stall.reset(self._connected_at)
            self._ready(ws)
            self.stats.reconnects += 1
            downtime_ms = (loop.time() - down_at) * 1000
            log.info(
                "%s: model WebSocket reopened after %.0f ms; %d item(s) replayed",
                self.tasks.label,
                downtime_ms,
                replayed,
            )
            self._events.on_reconnected(
                Reconnected(
                    attempt=attempt,
                    downtime_ms=round(downtime_ms, 1),
                    replayed_items=replayed,
                    recycled=recycled,
                    resumed_answer=resume,
                    caller_audio_lost_ms=round(self.stats.caller_audio_dropped_ms - dropped_before, 1),
                    model_silent_before_ms=round(silent_ms, 1),
                )
            )
            return True
        log.error("%s: model WebSocket could not be reopened after %d attempt(s)", self.tasks.label, len(delays))
        return False

    async def _replay(self, ws: ClientConnection, resume: bool) -> int:
        """Seed a fresh session with the call so far; returns how many items were replayed. The
        Realtime way: the session config, the mirrored conversation, and the cut-off answer asked
        for again. (GPT-Live has its own: realtime/live_connection.py.)"""
        replay = self.conversation.replay_items()
        self.conversation = ConversationMirror(self.conversation.max_items)  # refilled by the new session's echoes
        self._session_updates.clear()  # a new session: the old one's answers never come
        replayed_update = self.session_update_for(self.session_config, f"evt_bridge_su{next(self._update_ids)}")
        self._session_updates.append((replayed_update["event_id"], True))
        await ws.send(orjson.dumps(replayed_update), text=True)
        for item in replay:
            await ws.send(orjson.dumps(wire.conversation_item_create(None, item, self.dialect)), text=True)
        if resume:
            await ws.send(orjson.dumps(wire.response_create({}, self.dialect, self.codec)), text=True)
        return len(replay)

    async def _watch_answers(self) -> None:
        """Cut off a model whose answer stalled with its socket open; the reader then reconnects."""
        loop = asyncio.get_running_loop()
        stall = self._answer_stall
        while True:
            now, deadline = loop.time(), stall.deadline()
            if deadline is not None and now < deadline:
                stall.bridge_paused(await nap(deadline - now), loop.time())
                continue
            ws = self._ws
            if deadline is not None and ws is not None and ws.transport is not None and not ws.transport.is_closing():
                quiet_ms = (loop.time() - stall.last_heard_at) * 1000
                log.warning("%s: the model went silent mid-answer (%.0f ms); reconnecting", self.tasks.label, quiet_ms)
                self._drop_reason = f"model silent mid-answer for {quiet_ms:.0f} ms"
                ws.transport.abort()
            self._answering.clear()  # until the next answer starts (a reconnect resets the policy)
            await self._answering.wait()

    def _maybe_recycle(self) -> None:
        """Before the provider's session cap, start a fresh session at a turn boundary."""
        if self.session_max_s is None or self._recycling or self._closed:
            return
        age = asyncio.get_running_loop().time() - self._connected_at
        if age < self.session_max_s or self._responses_in_progress or self.caller_speaking:
            return
        self._recycling = True
        log.info("%s: recycling the model session after %.0f s, at a turn boundary", self.tasks.label, age)
        ws = self._ws
        if ws is not None:
            self.tasks.spawn(ws.close(1000, "recycling before the session limit"), name="recycle model session")

    def _apply_error_policy(self, event: dict[str, Any]) -> None:
        self.stats.errors += 1
        error = event.get("error") or {}
        code, kind = error.get("code"), error.get("type")
        message = redact(str(error.get("message", "")), self._api_key)
        if is_fatal(error, self.fatal_error_codes):
            log.error(
                "%s: fatal model error %s/%s: %s — closing the model connection", self.tasks.label, kind, code, message
            )
            self.tasks.spawn(self.aclose(f"fatal model error: {code or kind}"), name="close after fatal error")
        else:
            log.info("%s: model error (call goes on) %s/%s: %s", self.tasks.label, kind, code, message)
