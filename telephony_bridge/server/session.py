"""One media WebSocket = one `CallSession`, which owns everything of that call.

All tasks of the call live in one `asyncio.TaskGroup` (through a `TaskOwner`); either side closing
ends the call: Disconnected fires, the scenario's Terminating/Terminated fire, every client the
scenario opened is closed, every task is cancelled and awaited. Nothing of a finished call stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from telephony_bridge.audio.gaps import GapFiller
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.twilio import (
    DtmfReceived,
    MarkReceived,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    TwilioStreamParser,
    TwilioStreamSerializer,
)
from telephony_bridge.server.journal import CallJournal
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.call import Call
from telephony_bridge.voxengine.context import call_context
from telephony_bridge.voxengine.events import AppEvents

if TYPE_CHECKING:
    from telephony_bridge.server.app import BridgeRuntime

log = logging.getLogger("telephony_bridge.call")

# Parameters the webhook puts in TwiML for the stream; the rest is the scenario's custom data.
BRIDGE_PARAMETERS = frozenset({"scenario", "From", "To", "CallSid"})
BAD_FRAMES_LOGGED = 10  # per call; after that only every 100th, so a flood cannot flood the log


class TwilioMediaLink:
    """The Twilio side of one call, as the Call sees it."""

    def __init__(self, websocket: WebSocket, serializer: TwilioStreamSerializer) -> None:
        self._websocket = websocket
        self._serializer = serializer
        self.frames_out = 0

    async def send_media(self, ulaw: bytes) -> None:
        self.frames_out += 1
        await self._websocket.send_text(self._serializer.media(ulaw))

    async def send_mark(self, name: str) -> None:
        await self._websocket.send_text(self._serializer.mark(name))

    async def send_clear(self) -> None:
        await self._websocket.send_text(self._serializer.clear())

    async def close(self, code: int, reason: str) -> None:
        if self._websocket.application_state == WebSocketState.DISCONNECTED or self._websocket.client_state == WebSocketState.DISCONNECTED:
            return  # the carrier closed first
        try:
            await self._websocket.close(code, reason)
        except (RuntimeError, WebSocketDisconnect, OSError):
            pass  # closed under us: nothing left to tell the carrier


class CallSession:
    def __init__(self, websocket: WebSocket, runtime: BridgeRuntime, connection_id: int) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self.label = f"stream {connection_id}"
        self.parser = TwilioStreamParser()
        self.gaps = GapFiller()
        self.call: Call | None = None
        self.link: TwilioMediaLink | None = None
        self.vox: Any = None
        self.journal: CallJournal | None = None
        self.tasks: TaskOwner | None = None
        self.bad_frames = 0
        self.frames_in = 0
        self._ended = asyncio.Event()
        self._end_reason = "caller hung up"
        self._close_code = 1000
        self._started_at = time.monotonic()
        self._loop = asyncio.get_running_loop()

    def now_ms(self) -> float:
        return self._loop.time() * 1000

    def end(self, reason: str, code: int = 1000) -> None:
        if not self._ended.is_set():
            self._end_reason = reason
            self._close_code = code
            self._ended.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self.tasks = TaskOwner(self.label, group)
            reader = self.tasks.spawn(self._read_carrier(), name="carrier reader")
            await self._ended.wait()
            reader.cancel()
            await self._teardown()

    # --- carrier input --------------------------------------------------------------------
    async def _read_carrier(self) -> None:
        websocket = self.websocket
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                data = text if text is not None else message.get("bytes")
                if data is None:
                    continue
                try:
                    event = self.parser.parse(data)
                except CarrierProtocolError as exc:
                    self._bad_frame(exc.reason)
                    continue
                if await self._handle(event):
                    break
        except WebSocketDisconnect:
            pass
        self.end(self._end_reason)

    def _bad_frame(self, reason: str) -> None:
        self.bad_frames += 1
        self.runtime.metrics.frames_rejected += 1
        if self.bad_frames <= BAD_FRAMES_LOGGED or self.bad_frames % 100 == 0:
            log.warning("%s: bad carrier frame #%d ignored: %s", self.label, self.bad_frames, reason)

    async def _handle(self, event: Any) -> bool:
        """Apply one carrier event; True when the stream has stopped."""
        if isinstance(event, MediaReceived):  # the hot path, first
            self.frames_in += 1
            if self.call is not None:
                await self.call.caller_audio(self.gaps.fill(event.timestamp_ms, event.payload))
        elif isinstance(event, MarkReceived):
            if self.call is not None:
                self.call.mark(event.name)
        elif isinstance(event, DtmfReceived):
            if self.call is not None:
                if self.journal:
                    self.journal.record("caller.dtmf", digit=event.digit)
                self.call.tone(event.digit)
        elif isinstance(event, StreamStarted):
            await self._start(event)
        elif isinstance(event, StreamStopped):
            self._end_reason = "caller hung up"
            return True
        elif isinstance(event, StreamConnected):
            pass
        return False

    # --- call start -----------------------------------------------------------------------
    async def _start(self, start: StreamStarted) -> None:
        runtime = self.runtime
        params = start.custom_parameters
        call_sid = start.call_sid or params.get("CallSid", "")
        self.label = f"call {call_sid}"
        assert self.tasks is not None
        self.tasks.label = self.label
        self.link = TwilioMediaLink(self.websocket, TwilioStreamSerializer(start.stream_sid))
        scenario_name = params.get("scenario") or runtime.default_scenario
        scenarios = runtime.scenarios  # the version in force when the call started (reload-safe)
        scenario = scenarios.get(scenario_name)
        self.journal = CallJournal(self.label, runtime.settings.calls_dir)
        self.journal.open(call_sid)
        self.journal.record("call.started", call_sid=call_sid, caller=params.get("From"), number=params.get("To"), scenario=scenario_name)
        runtime.metrics.calls_started += 1
        self.call = Call(
            call_sid=call_sid,
            caller_id=params.get("From", ""),
            number=params.get("To", ""),
            custom_data={k: v for k, v in params.items() if k not in BRIDGE_PARAMETERS},
            link=self.link,
            tasks=self.tasks,
            control=runtime.call_control(),
            clock_ms=self.now_ms,
            on_hangup=self._hangup_requested,
        )
        if scenario is None:
            log.error("%s: scenario %r not found; ending the call", self.label, scenario_name)
            self.end("no scenario")
            return
        vox, openai = call_context(self.tasks, self.end, runtime.local_engine_url, runtime.settings.model_environ())
        openai.Beta.observer = self.journal.model_event
        self.vox = vox
        try:
            scenario.run(vox, openai, logging.getLogger(f"telephony_bridge.scenario.{scenario.name}"))
        except Exception:
            log.exception("%s: scenario %s raised at its top level; ending this call", self.label, scenario.name)
            self.end("scenario error")
            return
        vox.emit(AppEvents.Started)
        vox.emit(
            AppEvents.CallAlerting,
            call=self.call,
            callerid=self.call.callerid(),
            destination=self.call.number(),
            customData=self.call.customData(),
            headers={},
            scheme="twilio",
        )

    def _hangup_requested(self, reason: str) -> None:
        if self.journal:
            self.journal.record("call.hangup", reason=reason)
        self.end(reason)

    # --- teardown -------------------------------------------------------------------------
    async def _teardown(self) -> None:
        duration = time.monotonic() - self._started_at
        reason = self._end_reason
        if self.call is not None:
            self.call.terminated(reason, duration)
        if self.vox is not None:
            self.vox.emit(AppEvents.Terminating, reason=reason)
            for client in list(self.vox.clients):
                await client.aclose("call ended")
            self.vox.emit(AppEvents.Terminated, reason=reason)
        assert self.tasks is not None
        await self.tasks.drain(timeout_s=2.0)  # handlers of the last events may finish briefly
        link = self.link or TwilioMediaLink(self.websocket, TwilioStreamSerializer(""))
        await link.close(self._close_code, reason[:120])
        if self.journal is not None:
            self.journal.record("call.ended", reason=reason, duration_s=round(duration, 3), frames_in=self.frames_in, bad_frames=self.bad_frames)
            self.journal.close()
        await self.tasks.aclose()
        self.runtime.metrics.calls_ended += 1
        if self.vox is not None:
            self.vox.listeners.clear()
