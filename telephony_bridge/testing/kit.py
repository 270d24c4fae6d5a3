"""The call-flow test kit: test a scenario without a phone, an API key or a network.

`CallFlow` runs, in the test's own event loop, the real bridge server (webhook, media WebSocket,
your scenarios directory), the local engine as the model (scripted turn by turn) and, if asked, a
stand-in for Twilio's REST API, all on free 127.0.0.1 ports. `call()` places one simulated phone
call (caller speech synthesised offline, DTMF keys at given times) and returns a `CallReport`:
what the caller heard, tool calls and their results, barge-ins, hang-up, transfers, what the
scenario logged, and the whole timeline of the call.

Tests normally get a `CallFlow` from the `call_flow` pytest fixture (telephony_bridge.testing.plugin):

    async def test_tells_the_time(call_flow):
        call_flow.script(["Hello, Acme here.",
                          Turn(call=ToolCall("get_current_time"), then="It's {output.time}.")])
        report = await call_flow.call(to="+15550100", caller_says=[(2.0, "What time is it?")])
        assert report.tool_calls[0].name == "get_current_time"

Everything a report holds comes from public artefacts of the call: the server's call journal
(server/journal.py), the phone simulator's result, the requests the REST stand-in received, the
bridge's log records for that call, and the client events the local engine received.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import secrets
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from telephony_bridge.local_engine import (
    LocalEngine,
    Script,
    ToolCall,
    Turn,
    synthesize_async,
)
from telephony_bridge.testing.fake_twilio_api import RestRequest, TwilioApiStandIn
from telephony_bridge.testing.simulator import CallResult, TimelineEvent, place_call

__all__ = [
    "CALLER_VOICE",
    "CallFlow",
    "CallFlowError",
    "CallReport",
    "Event",
    "Line",
    "LogLine",
    "ModelConnection",
    "RestRequest",
    "Script",
    "ToolCall",
    "ToolCallRecord",
    "Transfer",
    "Turn",
    "TwilioApiStandIn",
]

CALLER_VOICE = "en-us+f3"  # espeak-ng voice of simulated callers (the agent's is the script's, en-us)
SAMPLE_RATE = 8000
DEFAULT_TO = "+15550100"  # the phone simulator's default number
DEFAULT_FROM = "+15550199"
DEFAULT_PATIENCE_S = 1.5  # a simulated caller hangs up after this long with nothing said either way
DEFAULT_CALL_TIMEOUT_S = 30.0  # after the caller's last line
MODEL_CLOSE_WAIT_S = 5.0


class CallFlowError(AssertionError):
    """A call the bridge did not let go of in time; the message holds the call's timeline so far."""


# ------------------------------------------------------------------------------------- the report


class Line(str):
    """One line of the conversation; compares and prints as its text.

    `speaker` is "agent" or "caller". An agent line that a barge-in cut off has `cut=True` and
    `heard_s`, the seconds of it the caller heard before playback stopped (0 when the bridge
    deleted it unheard). Its text is what the model had said by then, which runs ahead of what the
    caller heard: models send audio faster than real time. Caller lines are the model's input
    transcription (with the local engine: the turn's `hears`, else "[speech 1.2 s]").
    """

    speaker: str
    cut: bool
    heard_s: float | None
    t: float
    item_id: str | None

    def __new__(cls, text: str, speaker: str, t: float, *, cut: bool = False, heard_s: float | None = None,
                item_id: str | None = None) -> Line:
        line = super().__new__(cls, text)
        line.speaker, line.t, line.cut, line.heard_s, line.item_id = speaker, t, cut, heard_s, item_id
        return line


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A function call the model made, and what the scenario answered (None: no answer)."""

    name: str
    arguments: Any  # parsed JSON (a dict), or the raw string if it was not JSON
    call_id: str | None
    output: Any = None  # parsed JSON if the output was JSON, else the string
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the call journal: `kind` ("call.started", "barge_in", ...) and its fields."""

    t: float  # seconds since the call's media stream started
    kind: str
    data: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as Twilio saw it: the call's TwiML replaced by a <Dial>."""

    to: str | None
    caller_id: str | None
    twiml: str


@dataclass(frozen=True, slots=True)
class LogLine:
    t: float
    level: str
    logger: str
    message: str
    traceback: str | None = None


@dataclass(slots=True)
class ModelConnection:
    """One WebSocket the local engine accepted, with the client events it received (no audio)."""

    remote: tuple[Any, ...] | None
    received: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


@dataclass(eq=False)
class CallReport:
    """What happened on one simulated call. See the module docstring and docs/testing-scenarios.md."""

    call_sid: str
    to: str
    from_: str
    scenario: str | None
    rejected: bool
    transcript: list[Line]
    tool_calls: list[ToolCallRecord]
    events: list[Event]
    hung_up: bool  # the scenario hung up (call.hangup())
    end_reason: str | None  # why the call ended: "caller hung up", "hangup by scenario", ...
    unheard_ms: float  # agent audio still queued at the phone when the call ended: never heard
    transfers: list[Transfer]
    rest_requests: list[RestRequest]
    log: list[LogLine]
    model_inputs: list[dict[str, Any]]  # client events the model received, audio appends left out
    model_connections: int  # model WebSockets this call's scenario opened
    caller: CallResult  # the phone simulator's view: heard audio, clears, marks, its own timeline
    journal_path: Path | None = None

    # -- convenient views -----------------------------------------------------------------------
    @property
    def agent_lines(self) -> list[Line]:
        return [line for line in self.transcript if line.speaker == "agent"]

    @property
    def caller_lines(self) -> list[Line]:
        return [line for line in self.transcript if line.speaker == "caller"]

    @property
    def kinds(self) -> list[str]:
        """The journal's event kinds in order: "call.started", "agent.response_started", ..."""
        return [event.kind for event in self.events]

    @property
    def barge_ins(self) -> list[Event]:
        return [event for event in self.events if event.kind == "barge_in"]

    @property
    def errors(self) -> list[str]:
        """Errors the bridge logged for this call: a scenario handler that raised, a failed task..."""
        return [line.message for line in self.log if line.level in ("ERROR", "CRITICAL")]

    @property
    def messages_to_model(self) -> list[str]:
        """Texts of the message items the scenario added to the conversation (conversationItemCreate)."""
        texts = []
        for event in self.model_inputs:
            item = event.get("item") or {}
            if event.get("type") == "conversation.item.create" and item.get("type", "message") == "message":
                texts += [part.get("text", "") for part in item.get("content") or [] if isinstance(part, dict) and "text" in part]
        return texts

    def timeline(self) -> str:
        return render_timeline(self.call_sid, self.to, self.from_, self.caller.timeline, self.events,
                               self.transcript, self.log, self.rest_requests, self._headline())

    def _headline(self) -> str:
        if self.rejected:
            return "rejected" + (f" ({self.caller.error})" if self.caller.error else " (no route)")
        parts = [f"scenario {self.scenario}", f"ended: {self.end_reason or '?'}"]
        if self.caller.stream_duration_ms:
            parts.append(f"after {self.caller.stream_duration_ms / 1000:.2f} s")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return (f"<CallReport {self.call_sid} {self.from_} -> {self.to} scenario={self.scenario} "
                f"rejected={self.rejected} hung_up={self.hung_up} lines={len(self.transcript)} "
                f"tool_calls={[c.name for c in self.tool_calls]} errors={len(self.errors)}>")

    def __str__(self) -> str:
        return self.timeline()


# ------------------------------------------------------------------------------------- the timeline


# One line per mark would drown the conversation: "media" bursts and "clear" lines summarise them.
_PHONE_KINDS_HIDDEN = {"mark", "mark_echo"}


def render_timeline(call_sid: str, to: str, from_: str, phone: Sequence[TimelineEvent], events: Sequence[Event],
                    transcript: Sequence[Line], log_lines: Sequence[LogLine], rest: Sequence[RestRequest],
                    headline: str) -> str:
    """One call as text, phone and bridge side merged on one clock (seconds since the stream start)."""
    cut = {line.item_id: line for line in transcript if line.cut and line.item_id}
    rows: list[tuple[float, int, int, str, str]] = []  # (t, source, order in source, side, text)
    for order, entry in enumerate(phone):
        if entry.kind in _PHONE_KINDS_HIDDEN or (entry.kind == "warning" and "is not wss://" in entry.detail):
            continue  # (the kit's bridge necessarily runs on ws://127.0.0.1)
        rows.append((entry.t_ms / 1000, 0, order, "phone", f"{entry.kind:<13} {entry.detail}"))
    for order, event in enumerate(events):
        rows.append((event.t, 1, order, *_describe_event(event, cut)))
    for order, line in enumerate(log_lines):
        text = f"{line.level:<8} {line.logger}: {line.message}"
        if line.traceback:
            text += "\n" + "\n".join("                         " + row for row in line.traceback.rstrip().splitlines())
        rows.append((line.t, 2, order, "log", text))
    for order, request in enumerate(rest):
        rows.append((request.t, 3, order, "twilio", f"{'REST':<13} POST {request.path} {dict(request.form)}"))
    rows.sort(key=lambda row: row[:3])  # on a tie (same ms), what the bridge recorded before what it caused
    out = [f"call {call_sid} {from_} -> {to}: {headline}"]
    out += [f"  {t:+8.3f}s  {side:<7} {text}" for t, _, _, side, text in rows]
    return "\n".join(out)


def _describe_event(event: Event, cut: Mapping[str, Line]) -> tuple[str, str]:
    d = event.data
    if event.kind == "agent.transcript":
        line = cut.get(d.get("item_id"))
        note = f"   [cut by barge-in: heard {line.heard_s or 0:.2f} s]" if line is not None else ""
        return "agent", f'says "{d.get("text")}"{note}'
    if event.kind == "caller.transcript":
        return "caller", f'said "{d.get("text")}"'
    if event.kind == "agent.tool_call":
        return "agent", f"calls {d.get('name')}({d.get('arguments')})  [{d.get('call_id')}]"
    if event.kind == "agent.tool_result":
        return "bridge", f"tool result [{d.get('call_id')}]: {d.get('output')}"
    if event.kind == "barge_in":
        cuts = ", ".join(_describe_cut(c) for c in d.get("truncations") or []) or "nothing to truncate"
        return "bridge", f"BARGE-IN: playback cleared; {cuts}"
    fields = " ".join(f"{k}={v!r}" for k, v in d.items() if v is not None)
    return "bridge", f"{event.kind:<13} {fields}".rstrip()


def _describe_cut(cut: Mapping[str, Any]) -> str:
    if cut.get("deleted"):
        return f"{cut.get('item_id')} deleted (nothing of it was heard)"
    return f"{cut.get('item_id')} truncated at {(cut.get('audio_end_ms') or 0) / 1000:.2f} s (what the caller heard)"


# ------------------------------------------------------------------------------------- Twilio REST


def _transfers(requests: Iterable[RestRequest]) -> list[Transfer]:
    transfers = []
    for request in requests:
        twiml = request.form.get("Twiml")
        if not twiml:
            continue
        try:
            dial = ET.fromstring(twiml).find("Dial")
        except ET.ParseError:
            dial = None
        if dial is None:
            continue
        number = dial.find("Number")
        to = (number.text if number is not None else dial.text) or None
        transfers.append(Transfer(to=to.strip() if to else None, caller_id=dial.get("callerId"), twiml=twiml))
    return transfers


# ------------------------------------------------------------------------------------- the model


_AUDIO_APPEND = "input_audio_buffer.append"


class _RecordingSocket:
    """The engine's side of one model WebSocket, recording the client events it receives."""

    def __init__(self, websocket: Any, record: ModelConnection) -> None:
        self._websocket = websocket
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._websocket, name)

    def __aiter__(self) -> Any:
        return self._messages()

    async def _messages(self) -> Any:
        async for message in self._websocket:
            needle = _AUDIO_APPEND if isinstance(message, str) else _AUDIO_APPEND.encode()
            if needle not in message[:64]:  # the type leads every append the bridge sends
                with contextlib.suppress(orjson.JSONDecodeError):
                    event = orjson.loads(message)
                    if isinstance(event, dict):
                        self._record.received.append(event)
            yield message


class _ObservedEngine(LocalEngine):
    """The local engine, telling the kit when model connections open and close."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_connections: list[ModelConnection] = []
        self.changed = asyncio.Condition()

    async def serve_connection(self, websocket: Any) -> None:
        record = ModelConnection(remote=_address(getattr(websocket, "remote_address", None)))
        self.model_connections.append(record)
        try:
            await super().serve_connection(_RecordingSocket(websocket, record))
        finally:
            record.closed = True
            async with self.changed:
                self.changed.notify_all()

    async def wait_until(self, predicate: Any, timeout: float) -> bool:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
            except TimeoutError:
                return bool(predicate())
        return True


def _address(value: Any) -> tuple[Any, ...] | None:
    return tuple(value[:2]) if value else None


# ------------------------------------------------------------------------------------- the bridge side


@dataclass(slots=True)
class _EndedCall:
    entries: list[dict[str, Any]]
    t0: float | None
    model_addresses: list[tuple[Any, ...]]
    journal_path: Path | None


def _session_sid(session: Any) -> str | None:
    return getattr(session, "call_sid", None)  # still set after teardown released the Call


# The session whose task is running: set by the runtime's session-start hook in the task that runs
# the session, so every task the call starts (and every thread it hands work to) inherits it.
_current_session: contextvars.ContextVar[Any] = contextvars.ContextVar("kit_current_session", default=None)


class _CallLogHandler(logging.Handler):
    """Bridge log records of each call: everything a scenario logs, warnings and errors of the rest.
    A record belongs to the call whose session's context it was logged in."""

    def __init__(self, flow: CallFlow) -> None:
        super().__init__(logging.INFO)
        self._flow = flow

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from_scenario = record.name.startswith("telephony_bridge.scenario.")
            if record.levelno < logging.WARNING and not from_scenario:
                return  # the journal's own lines, the engine's chatter
            session = _current_session.get()
            sid = _session_sid(session) if session is not None and self._flow._owns(session) else None
            if sid is None:
                return
            message = record.getMessage()
            if from_scenario:
                message = message.removeprefix(f"call {sid}: ")  # the report is per call already
            traceback = None
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message = f"{message} — {type(exc).__name__}: {exc}"
                traceback = logging.Formatter().formatException(record.exc_info)
            self._flow._logged(sid, LogLine(time.monotonic(), record.levelname, record.name, message, traceback))
        except Exception:  # a logging handler must never raise into the code that logs
            self.handleError(record)


# ------------------------------------------------------------------------------------- CallFlow


class CallFlow:
    """A bridge, a scripted model and (optionally) Twilio's REST API, for call-flow tests.

    `async with CallFlow(scenarios="scenarios", calls_dir=tmp) as flow:` or the `call_flow` fixture.

    - `scenarios`: the scenarios directory (with routes.toml, or default.py).
    - `calls_dir`: where the bridge writes each call's JSON journal.
    - `twilio`: give the bridge Twilio credentials and point its REST client at a local stand-in,
      so hang-ups and transfers go through REST and can be asserted (`report.transfers`). Without
      (the default, like a bridge with no TWILIO_* set) `transferTo` fires TransferFailed.
    - `realtime_factor`: how much faster than real time the engine sends audio (default 4).
    - `call_timeout`: the longest a call may take after the caller's last line, in seconds.
    """

    def __init__(self, scenarios: str | Path = "scenarios", *, calls_dir: str | Path | None = None,
                 twilio: bool = False, realtime_factor: float = 4.0,
                 call_timeout: float = DEFAULT_CALL_TIMEOUT_S) -> None:
        self.scenarios = Path(scenarios)
        self.calls_dir = Path(calls_dir) if calls_dir is not None else None
        self.call_timeout = call_timeout
        self.reports: list[CallReport] = []
        self.engine = _ObservedEngine(realtime_factor=realtime_factor)
        self.twilio: TwilioApiStandIn | None = TwilioApiStandIn() if twilio else None
        self.runtime: Any = None
        self._account_sid = "AC" + secrets.token_hex(16)
        self._auth_token = secrets.token_hex(16)
        self._stack = contextlib.AsyncExitStack()
        # Sessions this flow's bridge ran, while anything still holds them (a process may run several flows).
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._ended: dict[str, _EndedCall] = {}
        self._ended_signal: dict[str, asyncio.Event] = {}
        self._logs: dict[str, list[LogLine]] = {}
        self._in_flight: dict[str, tuple[str, str, list[TimelineEvent]]] = {}
        self._log_handler = _CallLogHandler(self)
        self._rendered: list[Script] = []

    # -- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> CallFlow:
        from telephony_bridge.server.app import load_runtime
        from telephony_bridge.server.settings import Settings
        from telephony_bridge.testing.servers import running_bridge

        stack = self._stack
        try:
            await self.engine.start()
            stack.push_async_callback(self.engine.stop)
            if self.twilio is not None:
                self.twilio.start()
                stack.push_async_callback(asyncio.to_thread, self.twilio.stop)  # shutdown() blocks up to 0.5 s
            self._capture_logs(stack)
            settings = Settings(
                host="127.0.0.1",
                scenarios_dir=self.scenarios,
                calls_dir=self.calls_dir,
                realtime_url=self.engine.url,
                twilio_account_sid=self._account_sid if self.twilio else None,
                twilio_auth_token=self._auth_token if self.twilio else None,
                twilio_api_base_url=self.twilio.url if self.twilio else None,
            )
            runtime = load_runtime(settings)
            runtime.on_session_start.append(self._session_added)
            runtime.on_session_end.append(self._session_ended)
            self.runtime = await stack.enter_async_context(running_bridge(settings, runtime))
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._stack.aclose()

    def _capture_logs(self, stack: contextlib.AsyncExitStack) -> None:
        bridge_logger = logging.getLogger("telephony_bridge")
        scenario_logger = logging.getLogger("telephony_bridge.scenario")
        bridge_logger.addHandler(self._log_handler)
        stack.callback(bridge_logger.removeHandler, self._log_handler)
        if scenario_logger.getEffectiveLevel() > logging.INFO:  # scenarios' Logger.info must reach us
            previous = scenario_logger.level
            scenario_logger.setLevel(logging.INFO)
            stack.callback(scenario_logger.setLevel, previous)

    @property
    def url(self) -> str:
        """The bridge's base URL (the webhook is URL/incoming-call)."""
        return self.runtime.settings.base_url

    # -- the model --------------------------------------------------------------------------------
    def script(self, turns: Script | Iterable[Turn | str | Mapping[str, Any]], *, fallback: str | None = None,
               voice: str | None = None) -> Script:
        """What the model says from now on, turn by turn (calls placed after this use it).

        Each turn is a line to say, a `Turn(say=, hears=, call=ToolCall(name, args), then=)` or a dict
        with those keys; see docs/local-engine.md. Returns the Script."""
        if not isinstance(turns, Script):
            options = {k: v for k, v in (("fallback", fallback), ("voice", voice)) if v is not None}
            turns = Script.from_turns(turns, **options)
        self.engine.set_script(turns)
        return turns

    async def _render_script(self) -> None:
        """Synthesise the script's fixed lines before the call (the engine's speech cache keeps them),
        so the agent starts talking as soon as it is asked to, not after a first-time espeak run."""
        script = self.engine.script
        if any(done is script for done in self._rendered):  # identity: a Script with tool arguments is unhashable
            return
        lines = {turn.say for turn in script.turns if turn.say} | {script.fallback}
        await asyncio.gather(*(synthesize_async(line, 24000, script.voice) for line in lines))
        self._rendered.append(script)

    async def model_connections_closed(self, timeout: float = MODEL_CLOSE_WAIT_S) -> bool:
        """Wait until the model has no open connection left; False if one is still open after `timeout`."""
        return await self.engine.wait_until(lambda: all(c.closed for c in self.engine.model_connections), timeout)

    # -- routing ----------------------------------------------------------------------------------
    def scenario_for(self, number: str) -> str | None:
        """The scenario the bridge would run for a call to `number` (None: the call is rejected)."""
        return self.runtime.scenario_for(number)

    # -- calls ------------------------------------------------------------------------------------
    async def call(
        self,
        to: str = DEFAULT_TO,
        *,
        from_: str = DEFAULT_FROM,
        caller_says: Sequence[tuple[float, str]] = (),
        audio: bytes | str | Path | None = None,
        digits: Sequence[tuple[float, str]] = (),
        hang_up_after_silence: float = DEFAULT_PATIENCE_S,
        duration: float | None = None,
        timeout: float | None = None,
    ) -> CallReport:
        """Place one simulated call and return its report once the bridge has finished with it.

        - `caller_says`: (seconds after the call connects, text) lines, spoken by an offline voice.
        - `audio`: instead, what the caller says as PCM16 8 kHz bytes or a WAV file.
        - `digits`: (seconds, key) DTMF presses, keys 0-9 * #.
        - The caller hangs up once its own lines are over and nothing has been said either way
          for `hang_up_after_silence` seconds, or at `duration` seconds if given, unless the
          bridge ends the call first.
        - `timeout` (default: the CallFlow's `call_timeout`): the caller hangs up at the latest
          this many seconds after its last line, however busy the agent is. If the bridge then
          still does not let go of the call, CallFlowError is raised with the timeline so far.
        """
        if self.runtime is None:
            raise RuntimeError("CallFlow is not started: use `async with CallFlow(...)` or the call_flow fixture")
        pcm16, _ = await asyncio.gather(_caller_audio(caller_says, audio, digits), self._render_script())
        audio_s = len(pcm16) / 2 / SAMPLE_RATE
        limit = audio_s + (timeout if timeout is not None else self.call_timeout)
        call_sid = "CA" + secrets.token_hex(16)
        phone_events: list[TimelineEvent] = []
        self._in_flight[call_sid] = (to, from_, phone_events)
        deadline = asyncio.get_running_loop().time() + limit
        try:
            try:
                result = await asyncio.wait_for(place_call(
                    self.url, to=to, from_=from_, caller_audio=pcm16, digits=list(digits),
                    duration_s=duration if duration is not None else limit,
                    hangup_after_silence_s=None if duration is not None else hang_up_after_silence,
                    auth_token=self._auth_token if self.twilio else None,
                    account_sid=self._account_sid, call_sid=call_sid, on_event=phone_events.append,
                ), limit + 5)
            except TimeoutError:
                raise CallFlowError(f"call {call_sid} did not end within {limit + 5:.0f} s\n"
                                    + self._in_flight_timeline(call_sid)) from None
            ended = None
            if result.connected:
                ended = await self._wait_ended(call_sid, deadline)
        finally:
            del self._in_flight[call_sid]
        report = self._report(call_sid, to, from_, result, ended)
        self.reports.append(report)
        return report

    async def _wait_ended(self, call_sid: str, deadline: float) -> _EndedCall:
        signal = self._ended_signal.setdefault(call_sid, asyncio.Event())
        remaining = max(1.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(signal.wait(), remaining)
        except TimeoutError:
            raise CallFlowError(f"the bridge did not finish call {call_sid} within {remaining:.0f} s of its "
                                f"stream closing\n" + self._in_flight_timeline(call_sid)) from None
        ended = self._ended[call_sid]
        # Let the engine read the last client events of this call's model connections.
        addresses = set(ended.model_addresses)
        await self.engine.wait_until(
            lambda: all(c.closed for c in self.engine.model_connections if c.remote in addresses), MODEL_CLOSE_WAIT_S)
        return ended

    # -- bridge notifications (the runtime's session hooks and the log handler) ------------------
    def _session_added(self, session: Any) -> None:
        # Called in the task that runs the session, before it runs: log records from that task and
        # every task it starts belong to this call.
        self._sessions.add(session)
        _current_session.set(session)

    def _owns(self, session: Any) -> bool:
        return session in self._sessions

    def _session_ended(self, session: Any) -> None:
        sid = _session_sid(session)
        if sid is None:
            return
        journal = getattr(session, "journal", None)
        vox = getattr(session, "vox", None)
        addresses = []
        for client in getattr(vox, "clients", None) or ():
            addresses.append(_address(client.local_address))
        self._ended[sid] = _EndedCall(
            entries=list(journal.entries) if journal is not None else [],
            t0=journal.started_at if journal is not None else None,
            model_addresses=[a for a in addresses if a],
            journal_path=getattr(journal, "path", None),
        )
        self._ended_signal.setdefault(sid, asyncio.Event()).set()

    def _logged(self, call_sid: str, line: LogLine) -> None:
        self._logs.setdefault(call_sid, []).append(line)

    # -- building reports -------------------------------------------------------------------------
    def _report(self, call_sid: str, to: str, from_: str, result: CallResult, ended: _EndedCall | None) -> CallReport:
        entries = ended.entries if ended is not None else []
        events = [Event(float(e.get("t", 0.0)), str(e.get("event")), {k: v for k, v in e.items() if k not in ("t", "event")})
                  for e in entries if e.get("event") != "agent.transcript_delta"]
        started = next((e for e in events if e.kind == "call.started"), None)
        finished = next((e for e in events if e.kind == "call.ended"), None)
        rest = self._rest_requests(call_sid, ended.t0 if ended else None)
        model = [c for c in self.engine.model_connections if ended is not None and c.remote in set(ended.model_addresses)]
        return CallReport(
            call_sid=call_sid,
            to=to,
            from_=from_,
            scenario=started.get("scenario") if started else None,
            rejected=result.rejected,
            transcript=_transcript(events),
            tool_calls=_tool_calls(events),
            events=events,
            hung_up=any(e.kind == "call.hangup" for e in events),
            end_reason=finished.get("reason") if finished else None,
            unheard_ms=result.playout.pending_ms if result.playout is not None else 0.0,
            transfers=_transfers(rest),
            rest_requests=rest,
            log=self._log_lines(call_sid, ended.t0 if ended else None),
            model_inputs=[event for connection in model for event in connection.received],
            model_connections=len(model),
            caller=result,
            journal_path=ended.journal_path if ended else None,
        )

    def _rest_requests(self, call_sid: str, t0: float | None) -> list[RestRequest]:
        requests = self.twilio.requests_for(call_sid) if self.twilio is not None else []
        if not requests:
            return []
        zero = t0 if t0 is not None else requests[0].t
        return [replace(request, t=round(request.t - zero, 3)) for request in requests]

    def _log_lines(self, call_sid: str, t0: float | None) -> list[LogLine]:
        lines = self._logs.get(call_sid, [])
        if not lines:
            return []
        zero = t0 if t0 is not None else lines[0].t
        return [replace(line, t=round(line.t - zero, 3)) for line in lines]

    def _in_flight_timeline(self, call_sid: str) -> str:
        """The timeline of a call that has not finished: the phone's events and the live journal."""
        to, from_, phone = self._in_flight.get(call_sid, ("?", "?", []))
        session = next((s for s in list(self.runtime.sessions) if _session_sid(s) == call_sid), None) if self.runtime else None
        journal = getattr(session, "journal", None)
        ended = self._ended.get(call_sid)
        entries = ended.entries if ended else list(journal.entries) if journal is not None else []
        t0 = ended.t0 if ended else journal.started_at if journal is not None else None
        events = [Event(float(e.get("t", 0.0)), str(e.get("event")), {k: v for k, v in e.items() if k not in ("t", "event")})
                  for e in entries if e.get("event") != "agent.transcript_delta"]
        rest = self._rest_requests(call_sid, t0)
        return render_timeline(call_sid, to, from_, sorted(phone, key=lambda e: e.t_ms), events, _transcript(events),
                               self._log_lines(call_sid, t0), rest, "still in progress")

    def timelines(self) -> list[tuple[str, str]]:
        """(title, text) of every call placed so far, finished or not: what a failing test prints."""
        out = [(f"call {n} to {r.to}", r.timeline()) for n, r in enumerate(self.reports, start=1)]
        for call_sid, (to, _, _) in list(self._in_flight.items()):
            out.append((f"call to {to} (unfinished)", self._in_flight_timeline(call_sid)))
        return out


def _transcript(events: Sequence[Event]) -> list[Line]:
    heard: dict[str, float] = {}
    for event in events:
        if event.kind == "barge_in":
            for cut in event.get("truncations") or []:
                heard[cut.get("item_id")] = 0.0 if cut.get("deleted") else (cut.get("audio_end_ms") or 0) / 1000
    lines = []
    for event in events:
        if event.kind == "agent.transcript":
            item_id = event.get("item_id")
            lines.append(Line(event.get("text") or "", "agent", event.t, cut=item_id in heard,
                              heard_s=heard.get(item_id), item_id=item_id))
        elif event.kind == "caller.transcript":
            lines.append(Line(event.get("text") or "", "caller", event.t))
    return lines


def _tool_calls(events: Sequence[Event]) -> list[ToolCallRecord]:
    outputs = {e.get("call_id"): e.get("output") for e in events if e.kind == "agent.tool_result"}
    return [
        ToolCallRecord(name=e.get("name"), arguments=_json_or_text(e.get("arguments")), call_id=e.get("call_id"),
                       output=_json_or_text(outputs.get(e.get("call_id"))), t=e.t)
        for e in events if e.kind == "agent.tool_call"
    ]


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


async def _caller_audio(caller_says: Sequence[tuple[float, str]], audio: bytes | str | Path | None,
                        digits: Sequence[tuple[float, str]]) -> bytes:
    """PCM16 8 kHz of the whole caller side: each line at its time, silence between, long enough to
    reach the last key press (the simulator's silence hang-up only starts after the caller's audio)."""
    if audio is not None and caller_says:
        raise ValueError("give the caller's speech as `audio` or as `caller_says`, not both")
    if audio is not None and not isinstance(audio, (bytes, bytearray, memoryview)):
        from telephony_bridge.audio.files import read_wav_as_pcm16_8k_mono

        audio = await asyncio.to_thread(read_wav_as_pcm16_8k_mono, audio)
    if audio is not None:
        samples = np.frombuffer(bytes(audio), dtype="<i2").astype(np.int32)
    else:
        samples = np.zeros(0, dtype=np.int32)
        for at, text in sorted(caller_says):
            if at < 0:
                raise ValueError(f"caller line {text!r} at {at} s: times are seconds >= 0")
            speech = np.frombuffer(await synthesize_async(text, SAMPLE_RATE, CALLER_VOICE), dtype="<i2").astype(np.int32)
            start = int(round(at * SAMPLE_RATE))
            if len(samples) < start + len(speech):
                samples = np.concatenate([samples, np.zeros(start + len(speech) - len(samples), dtype=np.int32)])
            samples[start:start + len(speech)] += speech  # overlapping lines mix, as two voices would
    last_key = max((float(t) for t, _ in digits), default=-math.inf)
    wanted = int(math.ceil((last_key + 0.1) * SAMPLE_RATE)) if last_key > -math.inf else 0
    if len(samples) < wanted:
        samples = np.concatenate([samples, np.zeros(wanted - len(samples), dtype=np.int32)])
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()
