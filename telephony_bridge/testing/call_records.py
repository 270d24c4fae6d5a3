"""What a call-flow test's bridge told the kit of each call, and the reports built from it.

The kit (testing/kit.py) registers `session_added` / `session_ended` as the runtime's session hooks
and `log_handler` on the bridge's loggers; a call's report is then assembled from its journal, the
bridge's log lines for it, the REST requests the stand-in received and the engine's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from telephony_bridge.testing.fake_twilio_api import RestRequest, TwilioApiStandIn
from telephony_bridge.testing.log_capture import CallLogHandler, current_session, session_sid
from telephony_bridge.testing.recorder import ObservedEngine, socket_address
from telephony_bridge.testing.report import (
    CallReport,
    LogLine,
    journal_events,
    tool_calls_of,
    transcript_of,
    transfers_of,
)
from telephony_bridge.testing.simulator import CallResult, TimelineEvent
from telephony_bridge.testing.timeline import render_timeline

__all__ = ["CallFlowError", "CallRecords", "EndedCall"]

MODEL_CLOSE_WAIT_S = 5.0


class CallFlowError(AssertionError):
    """A call the bridge did not let go of in time; the message holds the call's timeline so far."""


@dataclass(slots=True)
class EndedCall:
    entries: list[dict[str, Any]]
    t0: float | None
    model_addresses: list[tuple[Any, ...]]
    journal_path: Path | None


class CallRecords:
    def __init__(self, engine: ObservedEngine, twilio: TwilioApiStandIn | None) -> None:
        self.engine = engine
        self.twilio = twilio
        self.runtime: Any = None  # the bridge's, once it runs
        # Sessions this flow's bridge ran, while anything still holds them (a process may run several flows).
        self.sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self.ended: dict[str, EndedCall] = {}
        self.ended_signal: dict[str, asyncio.Event] = {}
        self.logs: dict[str, list[LogLine]] = {}
        self.in_flight: dict[str, tuple[str, str, list[TimelineEvent]]] = {}
        self.log_handler = CallLogHandler(self._owns, self._logged)

    def capture_logs(self, stack: contextlib.AsyncExitStack) -> None:
        bridge_logger = logging.getLogger("telephony_bridge")
        scenario_logger = logging.getLogger("telephony_bridge.scenario")
        bridge_logger.addHandler(self.log_handler)
        stack.callback(bridge_logger.removeHandler, self.log_handler)
        if scenario_logger.getEffectiveLevel() > logging.INFO:  # scenarios' Logger.info must reach us
            previous = scenario_logger.level
            scenario_logger.setLevel(logging.INFO)
            stack.callback(scenario_logger.setLevel, previous)

    async def wait_ended(self, call_sid: str, deadline: float) -> EndedCall:
        signal = self.ended_signal.setdefault(call_sid, asyncio.Event())
        remaining = max(1.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(signal.wait(), remaining)
        except TimeoutError:
            raise CallFlowError(
                f"the bridge did not finish call {call_sid} within {remaining:.0f} s of its "
                f"stream closing\n" + self.in_flight_timeline(call_sid)
            ) from None
        ended = self.ended[call_sid]
        # Let the engine read the last client events of this call's model connections.
        addresses = set(ended.model_addresses)
        await self.engine.wait_until(
            lambda: all(c.closed for c in self.engine.model_connections if c.remote in addresses), MODEL_CLOSE_WAIT_S
        )
        return ended

    def session_added(self, session: Any) -> None:
        # Called in the task that runs the session, before it runs: log records from that task and
        # every task it starts belong to this call.
        self.sessions.add(session)
        current_session.set(session)

    def _owns(self, session: Any) -> bool:
        return session in self.sessions

    def session_ended(self, session: Any) -> None:
        sid = session_sid(session)
        if sid is None:
            return
        journal = getattr(session, "journal", None)
        vox = getattr(session, "vox", None) or getattr(
            session, "scenario_vox", None
        )  # an outbound call's is its session's
        addresses = [socket_address(client.local_address) for client in getattr(vox, "clients", None) or ()]
        self.ended[sid] = EndedCall(
            entries=list(journal.entries) if journal is not None else [],
            t0=journal.started_at if journal is not None else None,
            model_addresses=[a for a in addresses if a],
            journal_path=getattr(journal, "path", None),
        )
        self.ended_signal.setdefault(sid, asyncio.Event()).set()

    def _logged(self, call_sid: str, line: LogLine) -> None:
        self.logs.setdefault(call_sid, []).append(line)

    def report(self, call_sid: str, to: str, from_: str, result: CallResult, ended: EndedCall | None) -> CallReport:
        entries = ended.entries if ended is not None else []
        events = journal_events(entries)
        started = next((e for e in events if e.kind == "call.started"), None)
        finished = next((e for e in events if e.kind == "call.ended"), None)
        rest = self._rest_requests(call_sid, ended.t0 if ended else None)
        model = [
            c for c in self.engine.model_connections if ended is not None and c.remote in set(ended.model_addresses)
        ]
        return CallReport(
            call_sid=call_sid,
            to=to,
            from_=from_,
            scenario=started.get("scenario") if started else None,
            rejected=result.rejected,
            transcript=transcript_of(events),
            tool_calls=tool_calls_of(events),
            events=events,
            hung_up=any(e.kind == "call.hangup" for e in events),
            end_reason=finished.get("reason") if finished else None,
            unheard_ms=result.playout.pending_ms if result.playout is not None else 0.0,
            transfers=transfers_of(rest),
            rest_requests=rest,
            log=self._log_lines(call_sid, ended.t0 if ended else None),
            model_inputs=[event for connection in model for event in connection.received],
            model_connections=len(model),
            caller=result,
            journal_path=ended.journal_path if ended else None,
        )

    def _rest_requests(self, call_sid: str, t0: float | None) -> list[RestRequest]:
        return _rebased(self.twilio.requests_for(call_sid) if self.twilio is not None else [], t0)

    def _log_lines(self, call_sid: str, t0: float | None) -> list[LogLine]:
        return _rebased(self.logs.get(call_sid, []), t0)

    def in_flight_timeline(self, call_sid: str) -> str:
        """The timeline of a call that has not finished: the phone's events and the live journal."""
        to, from_, phone = self.in_flight.get(call_sid, ("?", "?", []))
        session = (
            next((s for s in list(self.runtime.sessions) if session_sid(s) == call_sid), None) if self.runtime else None
        )
        journal = getattr(session, "journal", None)
        ended = self.ended.get(call_sid)
        entries = ended.entries if ended else list(journal.entries) if journal is not None else []
        t0 = ended.t0 if ended else journal.started_at if journal is not None else None
        events = journal_events(entries)
        rest = self._rest_requests(call_sid, t0)
        return render_timeline(
            call_sid,
            to,
            from_,
            sorted(phone, key=lambda e: e.t_ms),
            events,
            transcript_of(events),
            self._log_lines(call_sid, t0),
            rest,
            "still in progress",
        )


_Timed = TypeVar("_Timed", RestRequest, LogLine)


def _rebased(items: list[_Timed], t0: float | None) -> list[_Timed]:
    """Times from the call's start (the journal's `t0`; without it, the first item's)."""
    if not items:
        return []
    zero = t0 if t0 is not None else items[0].t
    return [replace(item, t=round(item.t - zero, 3)) for item in items]
