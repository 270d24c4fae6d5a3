"""A scenario started from outside (Voximplant's StartScenarios): a session with no call to begin with.

`POST /api/scenarios/{name}/start` (server/scenario_api.py) makes a `ScenarioSession`: the
scenario's top level runs in its own namespace, as for a call, with `vox.custom_data` holding the
request's custom data (`VoxEngine.customData()` reads it), and `AppEvents.Started` fires — no
`CallAlerting`. The scenario places its calls with `VoxEngine.callPSTN` (server/outbound.py); each
call's media stream joins this session rather than starting the scenario again.

Like a call, the session owns every task it starts (one `asyncio.TaskGroup`), and everything it
opened is closed when it ends. It ends when:
- the scenario calls `VoxEngine.terminate()`;
- it has placed calls and none is left, for `CALLS_GONE_GRACE_S` (a Disconnected handler may place
  the next one);
- it has placed no call `NO_CALL_TIMEOUT_S` after it started;
- it has run `SCENARIO_SESSION_MAX_S` (settings), whatever its calls do;
- the server shuts down.
Its calls still in progress are hung up; Terminating and Terminated fire once they have ended.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any, Final

from telephony_bridge.lifecycle import CallEnd, EndReason
from telephony_bridge.server.outbound import Dialer, OutboundCall
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.context import call_context
from telephony_bridge.voxengine.events import AppEvents
from telephony_bridge.voxengine.scenario import Scenario

if TYPE_CHECKING:
    from telephony_bridge.server.runtime import BridgeRuntime

__all__ = [
    "CALLS_GONE_GRACE_S",
    "NO_CALL_TIMEOUT_S",
    "ScenarioSession",
    "start_scenario_session",
    "stop_scenario_sessions",
]

log = logging.getLogger("telephony_bridge.call")

CALLS_GONE_GRACE_S: Final = 2.0
NO_CALL_TIMEOUT_S: Final = 60.0
CALLS_END_WAIT_S: Final = 5.0  # at the session's end, how long its calls' streams get to tear down
HANDLERS_DRAIN_S: Final = 2.0


class ScenarioSession:
    def __init__(self, runtime: BridgeRuntime, scenario: Scenario, custom_data: str, session_id: str) -> None:
        self.runtime = runtime
        self.scenario = scenario
        self.scenario_name = scenario.name
        self.custom_data = custom_data
        self.session_id = session_id
        self.label = f"session {session_id}"
        self.tasks: TaskOwner = TaskOwner(self.label)  # replaced by run()'s, on its TaskGroup
        self.vox: Any = None
        self.calls: set[OutboundCall] = set()
        self.calls_placed = 0
        self.task: asyncio.Task[None] | None = None
        self._namespace: dict[str, Any] | None = None
        self._openai: Any = None
        self._ended = asyncio.Event()
        self._end = EndReason(CallEnd.SCENARIO_TERMINATED)
        self._calls_gone = asyncio.Event()
        self._calls_gone.set()
        self._loop = asyncio.get_running_loop()

    def now_ms(self) -> float:
        return self._loop.time() * 1000

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def end(self, kind: CallEnd, detail: str | None = None, code: int | None = None) -> None:
        """End the session (once); `VoxEngine.terminate()` comes here."""
        if not self._ended.is_set():
            self._end = EndReason(kind, detail)
            self._ended.set()

    # --- the dialer's host ----------------------------------------------------------------
    def call_placed(self, outbound: OutboundCall) -> None:
        if self._ended.is_set():
            raise RuntimeError("the session has ended: it cannot place calls")
        self.calls.add(outbound)
        self.calls_placed += 1
        self._calls_gone.clear()

    def call_finished(self, outbound: OutboundCall) -> None:
        self.calls.discard(outbound)
        if not self.calls:
            self._calls_gone.set()

    # --- running --------------------------------------------------------------------------
    async def run(self) -> None:
        runtime = self.runtime
        try:
            async with asyncio.TaskGroup() as group:
                self.tasks = TaskOwner(self.label, group)
                vox, openai = call_context(
                    self.tasks, self.end, runtime.local_engine_url, runtime.settings.model_environ()
                )
                openai.Beta.observer = self._observe_model
                vox.custom_data = self.custom_data  # VoxEngine.customData() reads it
                vox.dialer = Dialer(runtime, self)
                self.vox, self._openai = vox, openai
                self._namespace = self.scenario.namespace(vox, openai, self.scenario.logger(self.label))
                watchdog = self.tasks.spawn(self._watch(), name="session watchdog")
                try:
                    self.scenario.execute(self._namespace)
                except Exception:
                    log.exception(
                        "%s: scenario %s raised at its top level; ending the session", self.label, self.scenario_name
                    )
                    self.end(CallEnd.SCENARIO_ERROR)
                else:
                    log.info("%s: scenario %s started", self.label, self.scenario_name)
                    vox.emit(
                        AppEvents.Started,
                        on_error=lambda: self.end(CallEnd.SCENARIO_ERROR),
                        sessionId=self.session_id,
                        customData=self.custom_data,
                    )
                await self._ended.wait()
                watchdog.cancel()
                await self._teardown()
        finally:
            runtime.scenario_sessions.pop(self.session_id, None)

    def _observe_model(self, client: Any, observed: Any) -> None:
        """The session's clients report here: the process metrics, and the journal of each of its
        connected calls (a session with one call at a time — the usual — journals exactly; with two
        at once, both journals see the model events of both)."""
        self.runtime.metrics.model_event(client, observed)
        for outbound in self.calls:
            journal = getattr(outbound.stream, "journal", None)
            if journal is not None:
                journal.model_event(client, observed)

    async def _watch(self) -> None:
        loop = self._loop
        started = loop.time()
        max_s = self.runtime.settings.scenario_session_max_s
        while True:
            if self.calls_placed == 0:
                wait_s = min(NO_CALL_TIMEOUT_S, max_s) - (loop.time() - started)
                if wait_s <= 0:
                    self.end(CallEnd.SCENARIO_TERMINATED, f"placed no call within {min(NO_CALL_TIMEOUT_S, max_s):g} s")
                    return
                await asyncio.sleep(min(wait_s, 0.25))
                continue
            remaining = max_s - (loop.time() - started)
            if remaining <= 0:
                self.end(CallEnd.SCENARIO_TERMINATED, f"session limit of {max_s:g} s (SCENARIO_SESSION_MAX_S) reached")
                return
            if self._calls_gone.is_set():
                # A handler of the last call's end may place another call meanwhile.
                await asyncio.sleep(min(CALLS_GONE_GRACE_S, remaining))
                if self._calls_gone.is_set() and not self.calls:
                    self.end(CallEnd.SCENARIO_TERMINATED, "its calls have ended")
                    return
                continue
            try:
                await asyncio.wait_for(self._calls_gone.wait(), remaining)
            except TimeoutError:
                pass

    async def _teardown(self) -> None:
        reason = self._end.text
        for outbound in list(self.calls):
            outbound.end(
                CallEnd.SCENARIO_TERMINATED if self._end.kind is CallEnd.SCENARIO_TERMINATED else self._end.kind, reason
            )
        if self.calls:  # streams tearing down: their Disconnected handlers run on this session's tasks
            try:
                await asyncio.wait_for(self._calls_gone.wait(), CALLS_END_WAIT_S)
            except TimeoutError:
                log.warning("%s: %d call(s) did not end within %g s", self.label, len(self.calls), CALLS_END_WAIT_S)
        earlier = self.tasks.running()
        vox = self.vox
        vox.emit(AppEvents.Terminating, reason=reason)
        await self._close_clients()
        vox.emit(AppEvents.Terminated, reason=reason)
        await self.tasks.drain(
            timeout_s=HANDLERS_DRAIN_S,
            exclude=frozenset(task for task in earlier if not task.get_name().endswith("REST hangup")),
        )
        await self._close_clients()
        log.info("%s: ended (%s)", self.label, reason)
        await self.tasks.aclose()
        for outbound in list(self.calls):
            outbound.call.release()
        vox.release()
        if self._namespace is not None:
            self._namespace.clear()
            self._namespace = None
        if self._openai is not None:
            self._openai.Beta.observer = None
            self._openai = None

    async def _close_clients(self) -> None:
        for client in list(self.vox.clients):
            await client.aclose("session ended")


def start_scenario_session(runtime: BridgeRuntime, scenario: Scenario, custom_data: str) -> ScenarioSession:
    """Start `scenario` in a new session, in the background; the session (its `session_id`) at once."""
    session_id = secrets.token_hex(12)
    session = ScenarioSession(runtime, scenario, custom_data, session_id)
    runtime.scenario_sessions[session_id] = session
    session.task = asyncio.get_running_loop().create_task(session.run(), name=session.label)
    return session


async def stop_scenario_sessions(runtime: BridgeRuntime, timeout_s: float = 10.0) -> None:
    """End every session (server shutdown) and wait for them, at most `timeout_s`."""
    sessions = list(runtime.scenario_sessions.values())
    for session in sessions:
        session.end(CallEnd.SHUTDOWN)
    tasks = [session.task for session in sessions if session.task is not None]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
