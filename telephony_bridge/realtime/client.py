"""RealtimeAPIClient: one model WebSocket, with Voximplant's `OpenAI.Beta.RealtimeAPIClient` surface.

Wire details live in `events` (names) and `dialect` (shapes); this module is the thin I/O layer:
a reader task dispatching server events to listeners and to the media graph, a writer task for
control messages, and `PlayoutChannel`s that play model audio into calls through their ledgers.

Hot path (per 20 ms frame, both ways): caller μ-law → PCM16 8k → 24k → base64 → one `send`;
model delta → base64 decode → 24k → 8k → μ-law → media + mark. No logging, no pydantic, no
per-frame allocation of filters (resamplers live for the stream).
"""

from __future__ import annotations

import asyncio
import binascii
import itertools
import logging
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.protocol import State

from telephony_bridge.audio.g711 import ulaw_decode, ulaw_encode
from telephony_bridge.audio.resample import Resampler
from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import dialect as wire
from telephony_bridge.realtime.conversation import ConversationMirror
from telephony_bridge.realtime.events import (
    AUDIO_DELTA_TYPE,
    MediaEvents,
    RealtimeAPIEvents,
    event_for_wire_type,
    normalize_event_name,
)
from telephony_bridge.realtime.stall import DEFAULT_ANSWER_STALL_TIMEOUT_S, AnswerStallPolicy
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.listeners import EventPayload, Handler, Listeners

log = logging.getLogger("telephony_bridge.realtime")

Dialect = Literal["ga", "beta"]
Codec = Literal["pcm16", "g711_ulaw"]

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
# OpenAI caps a Realtime session at 60 minutes; recycle at a turn boundary well before that.
DEFAULT_SESSION_MAX_S = 55 * 60
DEFAULT_PING_INTERVAL_S = 5.0
DOWNLINK_SAMPLE_EVERY = 10  # model deltas between two latency samples
MAX_BUFFERED_AUDIO_BYTES = 256 * 1024  # ~2 s of PCM16 24 kHz as base64 JSON
MODEL_STALL_TIMEOUT_S = 5.0
# A caller is on the line: retry fast and often rather than back off exponentially for long. The
# first dozen attempts cover ~12 s; `maxReconnectAttempts` picks how many are used.
RECONNECT_BACKOFF_S = (0.0, 0.2, 0.3, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0)
DEFAULT_MODEL = "gpt-realtime"  # OpenAI's current GA realtime model (Voximplant's beta default is retired)

# Errors after which the session is unusable. Everything else (nothing to cancel, truncate
# rejected, a response already active, …) is delivered to listeners and the call goes on.
FATAL_ERROR_CODES = frozenset({
    "invalid_api_key", "insufficient_quota", "session_expired", "invalid_session",
    "session_not_found", "account_deactivated", "billing_hard_limit_reached",
})
FATAL_ERROR_TYPES = frozenset({"authentication_error", "insufficient_quota", "permission_error"})


# Caller audio is written through the connection's sans-I/O protocol (see accept_caller_audio):
# `protocol` and `send_data()` of websockets' asyncio Connection (13.0 onwards). Neither is
# documented API, so a release without them falls back to `await ws.send()`.
DIRECT_WRITE = callable(getattr(ClientConnection, "send_data", None))


class RealtimeConnectionError(ConnectionError):
    """The model WebSocket could not be opened. The message never contains the API key."""


def redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return text


def _with_model(url: str, model: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("model", model)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


@dataclass(slots=True)
class ClientStatistics:
    caller_frames: int = 0
    caller_audio_dropped_ms: float = 0.0
    model_audio_deltas: int = 0
    model_audio_ms: float = 0.0
    late_deltas_dropped: int = 0
    interruptions: int = 0
    truncations: int = 0
    deletions: int = 0
    errors: int = 0
    reconnects: int = 0
    malformed_events: int = 0


class PlayoutChannel:
    """Model audio from one client into one call, through the call's PlaybackLedger."""

    def __init__(self, client: RealtimeAPIClient, call: Any, parameters: Mapping[str, Any]) -> None:
        self.client = client
        self.call = call
        self.tag = parameters.get("tag")
        self.custom_parameters = parameters.get("customParameters")
        self._downsampler = Resampler(24000, 8000) if client.codec == "pcm16" else None
        self._clearing: asyncio.Task[Any] | None = None  # the carrier clear of the last interrupt
        self.attached = True

    async def play(self, response_id: str, item_id: str, content_index: int, audio: bytes, duration_ms: float) -> None:
        ledger = self.call.playback
        if not ledger.accepts(response_id):
            self.client.stats.late_deltas_dropped += 1  # pitfall 6: a cancelled answer stays silent
            return
        clearing = self._clearing
        if clearing is not None:
            if not clearing.done():
                await clearing  # the new answer's audio must not reach the carrier before the clear
                if not ledger.accepts(response_id):
                    return
            self._clearing = None
        ledger.audio_received(response_id, item_id, content_index, duration_ms)
        ulaw = ulaw_encode(self._downsampler.process(audio)) if self._downsampler else audio
        starting = not ledger.episode_active
        mark = ledger.audio_sent(response_id, item_id, content_index, duration_ms, self.call.now_ms())
        link = self.call.link
        if ulaw:  # a tiny first delta can sit entirely in the resampler's 1.5 ms look-ahead
            await link.send_media(ulaw)
        await link.send_mark(mark)
        if starting:
            self.client._emit_media(
                MediaEvents.WebSocketMediaStarted,
                tag=self.tag, encoding=self.client.codec, customParameters=self.custom_parameters, call=self.call,
            )

    async def finish_audio(self, response_id: str) -> None:
        """The answer's audio is complete: push out the resampler's look-ahead tail."""
        if self._downsampler is None or not self.call.playback.accepts(response_id):
            return
        tail = self._downsampler.flush()
        if tail:
            await self.call.link.send_media(ulaw_encode(tail))

    def on_mark(self, outcome: Any) -> None:
        ended = getattr(outcome, "episode_ended", None)
        if ended is not None:
            self.media_ended(ended)

    def media_ended(self, ended: Any) -> None:
        self.client._emit_media(
            MediaEvents.WebSocketMediaEnded,
            tag=self.tag, mediaInfo={"duration": ended.duration_ms / 1000}, call=self.call,
        )

    def interrupt(self, truncate: bool) -> bool:
        """Stop playback at once. Returns False (and does nothing) when nothing was playing.

        Synchronous on purpose: the cancel and the truncations are queued to the model before
        anything the caller of clearMediaBuffer() sends next (say, a responseCreate), and the
        ledger stops accepting the interrupted answer's audio at once. Only the carrier's clear
        needs the loop; media sent after it waits for it (see play)."""
        interruption = self.call.playback.interrupt(self.call.now_ms())
        if interruption is None:
            return False
        # pitfall 3: clear even when all audio was already sent — it may still be queued at the carrier.
        self._clearing = self.client.tasks.spawn(self.call.link.send_clear(), name="clear carrier playback")
        if self._downsampler is not None:
            self._downsampler.reset()
        client = self.client
        client.stats.interruptions += 1
        if client.observer is not None:
            client.observer(client, "interrupt", {
                "truncations": [
                    {"item_id": c.item_id, "audio_end_ms": c.audio_end_ms, "deleted": c.delete} for c in interruption.truncations
                ] if truncate else [],
            })
        # An answer still generating would keep adding audio the caller will never hear. Name it,
        # so a late cancel can never hit a newer answer; if the server already cancelled it (server
        # VAD), it says so with a benign error.
        for response_id in interruption.interrupted_response_ids:
            client._answer_stall.audio_finished(response_id)  # its audio is no longer due
            client._send(wire.response_cancel(response_id=response_id))
        if truncate:
            for cut in interruption.truncations:
                if cut.delete:
                    client.stats.deletions += 1
                    client.conversationItemDelete(cut.item_id)
                else:
                    client.stats.truncations += 1
                    client.conversationItemTruncate(cut.item_id, cut.content_index, cut.audio_end_ms)
        if interruption.episode_ended is not None:
            self.media_ended(interruption.episode_ended)
        return True

    def detach(self) -> None:
        if self.attached:
            self.attached = False
            self.client._channels.pop(id(self.call), None)
            self.call.detach_playout(self)


@with_snake_case_twins
class RealtimeAPIClient:
    """Voximplant's OpenAI.Beta.RealtimeAPIClient. Create with `OpenAI.Beta.createRealtimeAPIClient`."""

    _ids = itertools.count(1)

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        model: str,
        dialect: Dialect,
        codec: Codec,
        tasks: TaskOwner,
        on_websocket_close: Callable[[Any], Any] | None = None,
        trace: bool = False,
        clock_ms: Callable[[], float] | None = None,
        reconnect: bool = True,
        max_reconnect_attempts: int = 12,
        session_max_s: float | None = DEFAULT_SESSION_MAX_S,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
        answer_stall_timeout_s: float = DEFAULT_ANSWER_STALL_TIMEOUT_S,
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
        if codec not in ("pcm16", "g711_ulaw"):
            raise ValueError(f"codec must be 'pcm16' or 'g711_ulaw', not {codec!r}")
        self.url = _with_model(url, model)
        self.model = model
        self.dialect: Dialect = dialect
        self.codec: Codec = codec
        self.tasks = tasks
        self.trace = trace
        self.stats = ClientStatistics()
        self._api_key = api_key
        self._on_websocket_close = on_websocket_close
        self._clock_ms = clock_ms or (lambda: asyncio.get_running_loop().time() * 1000)
        self._id = f"rtc_{next(self._ids)}_{os.urandom(4).hex()}"
        self._session_id: str | None = None
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        self._channels: dict[int, PlayoutChannel] = {}
        self._upsampler = Resampler(8000, 24000) if codec == "pcm16" else None
        self._ms_per_byte = 1 / 48 if codec == "pcm16" else 1 / 8  # model audio: PCM16 24 kHz or u-law 8 kHz
        self._audio_delta_type = AUDIO_DELTA_TYPE[dialect]
        self._closed = False
        self._close_reported = False
        self._own_tasks: list[asyncio.Task[Any]] = []
        self.listeners = Listeners(f"{tasks.label} client {self._id}", tasks, normalize_event_name)
        self.session: dict[str, Any] = {}
        # Told of every server event (not audio), every control event sent and every interruption:
        # the call journal listens here without being a scenario listener.
        self.observer: Callable[[RealtimeAPIClient, Any, Mapping[str, Any]], None] | None = None
        # Reconnect: what a fresh model session needs to continue the call.
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.session_max_s = session_max_s
        self.ping_interval_s = ping_interval_s
        self.conversation = ConversationMirror()
        self._session_config: dict[str, Any] = {}
        self._responses_in_progress: set[str] = set()
        self._caller_speaking = False
        self._connected = asyncio.Event()
        self._connected_at = 0.0
        self._recycling = False
        self._stalled_since: float | None = None
        # A model silent mid-answer with its socket open: cut it off and reconnect (stall.py).
        self._answer_stall = AnswerStallPolicy(answer_stall_timeout_s)
        self._answering = asyncio.Event()  # wakes the answer watchdog
        self._drop_reason: str | None = None  # why the bridge itself cut the connection

    # --- lifecycle ------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 10.0) -> None:
        self._ws = await self._open(timeout_s)
        self._connected_at = asyncio.get_running_loop().time()
        self._answer_stall.reset(self._connected_at)
        self._connected.set()
        self._own_tasks.append(self.tasks.spawn(self._run(), name=f"model reader {self._id}"))
        self._own_tasks.append(self.tasks.spawn(self._write_loop(), name=f"model writer {self._id}"))
        if self._answer_stall.timeout_s > 0:
            self._own_tasks.append(self.tasks.spawn(self._watch_answers(), name=f"answer watchdog {self._id}"))
        # The bridge owns the audio formats: set them before anything else (pitfall 10).
        self._send(wire.session_update({}, self.dialect, self.codec))

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
            raise RealtimeConnectionError(f"model endpoint {self._safe_url()} refused the connection: HTTP {status}{hint}") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise RealtimeConnectionError(
                f"cannot connect to model endpoint {self._safe_url()}: {redact(str(exc), self._api_key) or type(exc).__name__}"
            ) from None

    def _safe_url(self) -> str:
        return redact(self.url, self._api_key)

    def id(self) -> str:
        return self._id

    def webSocketId(self) -> str | None:
        return self._session_id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def local_address(self) -> tuple[str, int] | None:
        """This end of the model connection (host, port), kept after it closes; None before it opens.
        What the other end sees as the remote address: the call-flow kit matches connections by it."""
        ws = self._ws
        if ws is None:
            return None
        try:
            return ws.local_address
        except (OSError, AttributeError):  # a transport already torn down
            return None

    async def aclose(self, reason: str = "closed by scenario") -> None:
        """Close for good. Idempotent, and always rids the call of the socket: 'reported closed
        to the scenario' and 'socket gone' are kept apart, so a reader that died first cannot
        leave the model connection open."""
        if not self._closed:
            self._closed = True
            for channel in list(self._channels.values()):
                channel.detach()
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
        # A cancelled task's traceback holds its frame, which holds this client: let them go.
        self._own_tasks = [task for task in self._own_tasks if task is current]

    def close(self) -> None:
        """Close the model WebSocket (Voximplant's close(): fire and forget)."""
        if not self._closed:
            self.tasks.spawn(self.aclose(), name=f"close {self._id}")

    def _report_close(self, code: int, reason: str, was_clean: bool) -> None:
        if self._close_reported:
            return
        self._close_reported = True
        if self._on_websocket_close is not None:
            event = EventPayload(client=self, code=code, reason=reason, wasClean=was_clean)
            try:
                result = self._on_websocket_close(event)
                if asyncio.iscoroutine(result):
                    self.tasks.spawn(result, name="onWebSocketClose")
            except Exception:
                log.exception("%s: onWebSocketClose raised", self.tasks.label)

    # --- listeners ------------------------------------------------------------------------
    def addEventListener(self, event: Any, handler: Handler) -> None:
        self.listeners.add(event, handler)

    def removeEventListener(self, event: Any, handler: Handler | None = None) -> None:
        self.listeners.remove(event, handler)

    def _emit(self, member: Any, data: Mapping[str, Any]) -> None:
        self.listeners.emit(member, EventPayload(client=self, name=member.name, data=data))

    def _emit_media(self, member: MediaEvents, **fields: Any) -> None:
        if self.observer is not None:
            self.observer(self, member, {k: v for k, v in fields.items() if k != "call"})
        self.listeners.emit(member, EventPayload(client=self, name=member.name, **fields))

    # --- client events (fire and forget, in order, like VoxEngine) ------------------------
    def _send(self, event: Mapping[str, Any]) -> None:
        if self._closed:
            log.warning("%s: %s after close ignored", self.tasks.label, event.get("type"))
            return
        if self.trace:
            log.info("%s → %s", self.tasks.label, _trace_line(event))
        if self.observer is not None:
            self.observer(self, "client", event)
        try:
            self._outbox.put_nowait(orjson.dumps(event))
        except asyncio.QueueFull:
            raise RuntimeError("too many model messages queued; is the model connection stalled?") from None

    def sessionUpdate(self, session: Mapping[str, Any], eventId: str | None = None) -> None:
        self._session_config.update(session)  # replayed as one session.update after a reconnect
        self._send(wire.session_update(session, self.dialect, self.codec, eventId))

    def conversationItemCreate(self, previousItemId: str | None, item: Mapping[str, Any], eventId: str | None = None) -> None:
        self._send(wire.conversation_item_create(previousItemId, item, self.dialect, eventId))

    def conversationItemDelete(self, itemId: str, eventId: str | None = None) -> None:
        self._send(wire.conversation_item_delete(itemId, eventId))

    def conversationItemTruncate(self, itemId: str, contentIndex: int, audioEndMs: int, eventId: str | None = None) -> None:
        self._send(wire.conversation_item_truncate(itemId, contentIndex, audioEndMs, eventId))

    def conversationItemRetrieve(self, itemId: str, eventId: str | None = None) -> None:
        self._send(wire.conversation_item_retrieve(itemId, eventId))

    def responseCreate(self, response: Mapping[str, Any] | None = None, eventId: str | None = None) -> None:
        self._send(wire.response_create(response or {}, self.dialect, self.codec, eventId))

    def responseCancel(self, eventId: str | None = None) -> None:
        self._answer_stall.answering.clear()  # a cancelled answer owes the caller no more audio
        self._send(wire.response_cancel(eventId))

    # --- media graph ----------------------------------------------------------------------
    def sendMediaTo(self, unit: Any, parameters: Mapping[str, Any] | None = None) -> None:
        """Play the model's audio into `unit` (a Call)."""
        if not hasattr(unit, "attach_playout") or not hasattr(unit, "playback"):
            raise TypeError(f"{unit!r} cannot play model audio")
        channel = PlayoutChannel(self, unit, parameters or {})
        unit.attach_playout(channel)
        self._channels[id(unit)] = channel

    def stopMediaTo(self, unit: Any) -> None:
        channel = self._channels.get(id(unit))
        if channel is not None:
            channel.detach()

    def clearMediaBuffer(self, parameters: Mapping[str, Any] | None = None) -> None:
        """Barge-in: stop playback at once and truncate the conversation at what the caller heard.

        Does nothing (and fires nothing) when nothing is playing. `{"truncate": False}` skips the
        truncation; `{"tag": …}` limits it to the channels sent with that tag."""
        parameters = parameters or {}
        truncate = parameters.get("truncate", True) is not False
        tag = parameters.get("tag")
        for channel in list(self._channels.values()):
            if tag is None or channel.tag == tag:
                channel.interrupt(truncate)

    async def accept_caller_audio(self, ulaw: bytes) -> None:
        """A caller frame (μ-law 8 kHz) for the model's input buffer.

        Never blocks the carrier on the model: when the model is not taking audio (reconnecting,
        closing, or its socket backed up past MAX_BUFFERED_AUDIO_BYTES) the frame is dropped and
        counted, and a model that stays backed up for MODEL_STALL_TIMEOUT_S is cut off so the
        reconnect logic can replace it."""
        ws = self._ws
        if ws is None or self._closed or not self._connected.is_set() or ws.state is not State.OPEN:
            self.stats.caller_audio_dropped_ms += len(ulaw) / 8  # nowhere to go
            return
        transport = ws.transport
        if transport.is_closing():
            self.stats.caller_audio_dropped_ms += len(ulaw) / 8  # aborted: the reader reconnects
            return
        if transport.get_write_buffer_size() > MAX_BUFFERED_AUDIO_BYTES:
            self.stats.caller_audio_dropped_ms += len(ulaw) / 8
            now = asyncio.get_running_loop().time()
            if self._stalled_since is None:
                self._stalled_since = now
            elif now - self._stalled_since > MODEL_STALL_TIMEOUT_S:
                log.warning("%s: the model has not read audio for %.0f s; dropping its connection", self.tasks.label, now - self._stalled_since)
                self._stalled_since = None
                transport.abort()
            return
        self._stalled_since = None
        self.stats.caller_frames += 1
        audio = self._upsampler.process(ulaw_decode(ulaw)) if self._upsampler is not None else ulaw
        message = wire.encode_input_audio_append(binascii.b2a_base64(audio, newline=False))
        if not DIRECT_WRITE:
            try:
                await ws.send(message, text=True)
            except ConnectionClosed:
                pass  # the reader sees the close and reconnects
            return
        # Written through the connection's sans-I/O protocol, not `await ws.send()`: send() costs
        # an async context manager, a drain and three coroutines per frame (a quarter of the
        # bridge's CPU above the relay floor at 100 calls, bench/README.md), and its one service
        # here, waiting while the socket is backed up, is the one thing the carrier must never
        # do; the write-buffer check above replaces it. Frames stay whole: the protocol appends
        # a complete frame and the bridge never fragments, so this interleaves safely with the
        # writer task's send(). State is OPEN and the transport not closing (checked above).
        try:
            ws.protocol.send_text(message)
            ws.send_data()
        except Exception:
            # What send() would do on an internal error: give up the connection (the reader
            # reconnects) rather than let the carrier's reader see an exception per frame.
            log.exception("%s: writing caller audio to the model failed; dropping the connection", self.tasks.label)
            self.stats.caller_audio_dropped_ms += len(ulaw) / 8
            transport.abort()

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
                log.info("%s: model WebSocket closed (%s %s)", self.tasks.label, code, reason)
                for channel in list(self._channels.values()):
                    channel.detach()
                self._report_close(code, reason, clean)

    async def _read(self, ws: ClientConnection) -> tuple[int, str, bool]:
        try:
            loop = asyncio.get_running_loop()
            stall = self._answer_stall
            async for raw in ws:
                stall.last_heard_at = loop.time()
                try:
                    event = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    log.warning("%s: model sent a frame that is not JSON; ignored", self.tasks.label)
                    continue
                await self._dispatch(event)
        except ConnectionClosed as exc:
            received = exc.rcvd
            return (received.code, received.reason, False) if received else (1006, "connection lost", False)
        return ws.close_code or 1000, ws.close_reason or "", True

    async def _reconnect(self, code: int, reason: str) -> bool:
        """Open a new model session and replay the call so far into it; False when giving up."""
        loop = asyncio.get_running_loop()
        self._connected.clear()
        down_at = loop.time()
        silent_ms = (down_at - self._answer_stall.last_heard_at) * 1000
        dropped_before = self.stats.caller_audio_dropped_ms
        recycled, self._recycling = self._recycling, False
        # Cut off mid-answer: the new session must be asked for the answer again, or it waits
        # for the caller to speak (pitfall 21). Not when the caller is talking: their turn comes.
        resume = bool(self._answer_stall.answering) and not self._caller_speaking
        self._answer_stall.reset(down_at)
        if not recycled:
            log.warning("%s: model WebSocket dropped (%s %s); reconnecting", self.tasks.label, code, reason)
        # Answers cut by the drop never finish: let the ledgers settle what was already sent.
        for response_id in list(self._responses_in_progress):
            self._response_finished(response_id)
        delays = (0.0,) if recycled else RECONNECT_BACKOFF_S[: self.max_reconnect_attempts]
        for attempt, delay in enumerate(delays, start=1):
            self._emit_media(MediaEvents.WebSocketReconnecting, attempt=attempt, code=code, reason=reason)
            await asyncio.sleep(delay)
            if self._closed:
                return False
            try:
                ws = await self._open(timeout_s=5.0)
            except RealtimeConnectionError as exc:
                log.warning("%s: reconnect attempt %d failed: %s", self.tasks.label, attempt, exc)
                continue
            replay = self.conversation.replay_items()
            self.conversation = ConversationMirror(self.conversation.max_items)  # refilled by the new session's echoes
            try:
                await ws.send(orjson.dumps(wire.session_update(self._session_config, self.dialect, self.codec)), text=True)
                for item in replay:
                    await ws.send(orjson.dumps(wire.conversation_item_create(None, item, self.dialect)), text=True)
                if resume:
                    await ws.send(orjson.dumps(wire.response_create({}, self.dialect, self.codec)), text=True)
            except ConnectionClosed:
                continue
            self._ws = ws
            self._connected_at = loop.time()
            self._answer_stall.reset(self._connected_at)
            self._connected.set()
            self.stats.reconnects += 1
            downtime_ms = (loop.time() - down_at) * 1000
            log.info("%s: model WebSocket reopened after %.0f ms; %d item(s) replayed", self.tasks.label, downtime_ms, len(replay))
            self._emit_media(MediaEvents.WebSocketReconnected, attempt=attempt, downtimeMs=round(downtime_ms, 1),
                             replayedItems=len(replay), recycled=recycled, resumedAnswer=resume,
                             callerAudioLostMs=round(self.stats.caller_audio_dropped_ms - dropped_before, 1),
                             modelSilentBeforeMs=round(silent_ms, 1))
            return True
        log.error("%s: model WebSocket could not be reopened after %d attempt(s)", self.tasks.label, len(delays))
        return False

    async def _watch_answers(self) -> None:
        """Cut off a model whose answer stalled with its socket open; the reader then reconnects."""
        loop = asyncio.get_running_loop()
        stall = self._answer_stall
        while True:
            deadline = stall.deadline()
            if deadline is not None and loop.time() < deadline:
                await asyncio.sleep(deadline - loop.time())
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
        if age < self.session_max_s or self._responses_in_progress or self._caller_speaking:
            return
        self._recycling = True
        log.info("%s: recycling the model session after %.0f s, at a turn boundary", self.tasks.label, age)
        ws = self._ws
        if ws is not None:
            self.tasks.spawn(ws.close(1000, "recycling before the session limit"), name="recycle model session")

    async def _dispatch(self, event: Any) -> None:
        """Untrusted input from the model enters here: a malformed event is logged and skipped,
        never allowed to kill the reader (and with it the call's model audio)."""
        if not isinstance(event, dict):
            self._malformed(f"a JSON {type(event).__name__}, not an object")
            return
        try:
            await self._dispatch_event(event)
        except (asyncio.CancelledError, ConnectionClosed):
            raise
        except Exception as exc:
            # The place, as text: a logged exc_info would pin the frames (and the call) in any log
            # handler that keeps records.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self._malformed(f"{event.get('type')!r} event broke its handling ({type(exc).__name__}: {exc}, "
                            f"at {os.path.basename(where.filename)}:{where.lineno})")

    def _malformed(self, what: str) -> None:
        self.stats.malformed_events += 1
        count = self.stats.malformed_events
        if count <= 10 or count % 100 == 0:
            log.warning("%s: malformed model event #%d ignored: %s", self.tasks.label, count, what)

    async def _dispatch_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == self._audio_delta_type:  # the hot path: model audio into the media graph
            await self._on_audio_delta(event)
            return
        if self.trace:
            log.info("%s ← %s", self.tasks.label, _trace_line(event))
        member = event_for_wire_type(kind, self.dialect) if isinstance(kind, str) else RealtimeAPIEvents.Unknown
        if member is RealtimeAPIEvents.ResponseAudioDone:
            for channel in list(self._channels.values()):
                await channel.finish_audio(event.get("response_id", ""))
        self._bookkeep(member, event)
        if member is RealtimeAPIEvents.ResponseFunctionCallArgumentsDone and "name" not in event:
            # The beta wire leaves the name out; scenarios written for GA read data["name"].
            item = self.conversation.items.get(event.get("item_id", ""))
            if item is not None and item.name:
                event["name"] = item.name
        if self.observer is not None:
            self.observer(self, member, event)
        self._emit(member, event)
        if member is RealtimeAPIEvents.Error:
            self._apply_error_policy(event)

    async def _on_audio_delta(self, event: dict[str, Any]) -> None:
        try:
            audio = binascii.a2b_base64(event["delta"])
        except (KeyError, TypeError, binascii.Error):
            log.warning("%s: audio delta without valid base64; ignored", self.tasks.label)
            return
        if self.codec == "pcm16" and len(audio) % 2:
            audio = audio[:-1]  # half a sample cannot be played; keep the stream's alignment
        duration_ms = len(audio) * self._ms_per_byte
        self.stats.model_audio_deltas += 1
        self.stats.model_audio_ms += duration_ms
        self._answer_stall.audio_received(self._answer_stall.last_heard_at, duration_ms)
        response_id, item_id = event.get("response_id", ""), event.get("item_id", "")
        content_index = event.get("content_index", 0)
        self.conversation.audio_received(item_id, duration_ms)
        sampled = self.observer is not None and self.stats.model_audio_deltas % DOWNLINK_SAMPLE_EVERY == 0
        started = asyncio.get_running_loop().time() if sampled else 0.0
        for channel in list(self._channels.values()):
            await channel.play(response_id, item_id, content_index, audio, duration_ms)
        if sampled and self._channels:  # what the bridge adds between the model's delta and the carrier's media
            self.observer(self, "downlink_latency", {"seconds": asyncio.get_running_loop().time() - started})
        if self.listeners.has(RealtimeAPIEvents.ResponseAudioDelta):
            self._emit(RealtimeAPIEvents.ResponseAudioDelta, event)

    def _bookkeep(self, member: RealtimeAPIEvents, event: dict[str, Any]) -> None:
        """Keep the ledgers told of response and item lifecycles (needed before any audio), and
        the conversation mirror current for a replay."""
        self.conversation.apply(event)
        if member is RealtimeAPIEvents.InputAudioBufferSpeechStarted:
            self._caller_speaking = True
        elif member is RealtimeAPIEvents.InputAudioBufferSpeechStopped:
            self._caller_speaking = False
        if member is RealtimeAPIEvents.ResponseCreated:
            rid = (event.get("response") or {}).get("id", "")
            self._responses_in_progress.add(rid)
            self._answer_stall.response_started(rid, self._answer_stall.last_heard_at)
            self._answering.set()
            for channel in self._channels.values():
                channel.call.playback.response_started(rid)
        elif member is RealtimeAPIEvents.ResponseOutputItemAdded:
            item = event.get("item") or {}
            if item.get("type") == "message":
                for channel in self._channels.values():
                    channel.call.playback.item_added(event.get("response_id", ""), item.get("id", ""))
        elif member is RealtimeAPIEvents.ResponseAudioDone:
            self._answer_stall.audio_finished(event.get("response_id", ""))
        elif member is RealtimeAPIEvents.ResponseDone:
            self._answer_stall.audio_finished((event.get("response") or {}).get("id", ""))
            self._response_finished((event.get("response") or {}).get("id", ""))
            self._maybe_recycle()
        elif member is RealtimeAPIEvents.SessionCreated:
            self._session_id = (event.get("session") or {}).get("id")
            self.session = event.get("session") or {}
        elif member is RealtimeAPIEvents.SessionUpdated:
            self.session = event.get("session") or {}

    def _response_finished(self, response_id: str) -> None:
        self._responses_in_progress.discard(response_id)
        for channel in list(self._channels.values()):
            ended = channel.call.playback.response_finished(response_id)
            if ended is not None:
                channel.media_ended(ended)

    def _apply_error_policy(self, event: dict[str, Any]) -> None:
        self.stats.errors += 1
        error = event.get("error") or {}
        code, kind = error.get("code"), error.get("type")
        message = redact(str(error.get("message", "")), self._api_key)
        if code in FATAL_ERROR_CODES or kind in FATAL_ERROR_TYPES:
            log.error("%s: fatal model error %s/%s: %s — closing the model connection", self.tasks.label, kind, code, message)
            self.tasks.spawn(self.aclose(f"fatal model error: {code or kind}"), name="close after fatal error")
        else:
            log.info("%s: model error (call goes on) %s/%s: %s", self.tasks.label, kind, code, message)


_AUDIO_FIELDS = ("audio", "delta")


def _trace_line(event: Mapping[str, Any]) -> str:
    """One line per event with audio elided: traces must never carry audio (or secrets)."""
    kind = str(event.get("type", ""))
    carries_audio = kind == "input_audio_buffer.append" or kind.endswith("audio.delta")
    shown = {key: (f"<{len(value)} base64 chars>" if carries_audio and key in _AUDIO_FIELDS and isinstance(value, str) else value)
             for key, value in event.items()}
    text = orjson.dumps(shown, default=str).decode()
    return text if len(text) <= 400 else text[:400] + "…"


def resolve_realtime_url(explicit: str | None, environ: Mapping[str, str], local_engine_url: str | None) -> str:
    """`url` param > REALTIME_URL > the embedded local engine when OPENAI_API_KEY is unset > OpenAI."""
    if explicit:
        return explicit
    if environ.get("REALTIME_URL"):
        return environ["REALTIME_URL"]
    if not environ.get("OPENAI_API_KEY") and local_engine_url:
        return local_engine_url
    return OPENAI_REALTIME_URL


async def create_realtime_api_client(
    parameters: Mapping[str, Any],
    *,
    tasks: TaskOwner,
    environ: Mapping[str, str] | None = None,
    local_engine_url: str | None = None,
) -> RealtimeAPIClient:
    """Voximplant's `OpenAI.Beta.createRealtimeAPIClient(parameters)`; connects before returning."""
    environ = os.environ if environ is None else environ
    parameters = dict(parameters or {})
    api_key = parameters.get("apiKey") or environ.get("OPENAI_API_KEY")
    client = RealtimeAPIClient(
        url=resolve_realtime_url(parameters.get("url"), environ, local_engine_url),
        api_key=api_key,
        model=parameters.get("model") or DEFAULT_MODEL,
        dialect=parameters.get("dialect", "ga"),
        codec=parameters.get("codec", "pcm16"),
        tasks=tasks,
        on_websocket_close=parameters.get("onWebSocketClose"),
        trace=bool(parameters.get("trace", False)),
        reconnect=bool(parameters.get("reconnect", True)),
        max_reconnect_attempts=int(parameters.get("maxReconnectAttempts", 12)),
        session_max_s=parameters.get("sessionMaxDurationS", DEFAULT_SESSION_MAX_S),
        ping_interval_s=parameters.get("pingIntervalS", DEFAULT_PING_INTERVAL_S),
        answer_stall_timeout_s=float(parameters.get("answerStallTimeoutS",
                                                    environ.get("ANSWER_STALL_TIMEOUT_S") or DEFAULT_ANSWER_STALL_TIMEOUT_S)),
    )
    await client.connect()
    return client
