"""The per-call VoxEngine context and the `OpenAI` namespace a scenario sees.

Each call gets one `VoxEngine` (application events, `sendMediaBetween`, `terminate`) and one
`OpenAI` namespace whose `Beta.createRealtimeAPIClient` registers every client it opens with the call,
so everything a scenario opened is closed when the call ends — even if the scenario forgot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime.events import MediaEvents, RealtimeAPIEvents
from telephony_bridge.realtime.observer import Observer
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.events import AppEvents
from telephony_bridge.voxengine.listeners import (
    EventPayload,
    Handler,
    Listeners,
    enum_normalizer,
)
from telephony_bridge.voxengine.realtime_client import (
    RealtimeAPIClient,
    RealtimeClientCore,
    create_realtime_api_client,
)
from telephony_bridge.voxengine.realtime_ga import (
    GAEvents,
    GARealtimeAPIClient,
    GARealtimeAPIEvents,
    RealtimeAPIClientType,
    create_ga_realtime_api_client,
)

log = logging.getLogger("telephony_bridge.realtime")  # not the scenario's own log
# Scenario names, once per process each. INFO, not WARNING: the Beta client works, and a warning
# would sit in every call report of the call-flow kit.
_BETA_DEPRECATION_LOGGED: set[str] = set()


@with_snake_case_twins
class VoxEngine:
    """The `VoxEngine` global of one call's scenario."""

    def __init__(self, tasks: TaskOwner, terminate: Callable[[CallEnd], None] | None = None) -> None:
        self._tasks = tasks
        self._terminate = terminate
        self.listeners = Listeners(tasks.label, tasks, enum_normalizer(AppEvents))
        self.clients: list[RealtimeClientCore] = []

    def addEventListener(self, event: AppEvents | str, handler: Handler) -> None:
        self.listeners.add(event, handler)

    def removeEventListener(self, event: AppEvents | str, handler: Handler | None = None) -> None:
        self.listeners.remove(event, handler)

    def emit(self, event: AppEvents, on_error: Callable[[], None] | None = None, **fields: Any) -> None:
        self.listeners.emit(event, EventPayload(name=event.name, **fields), on_error)

    def sendMediaBetween(self, a: Any, b: Any) -> None:
        """Both directions at once: caller audio to the model, model audio to the caller."""
        a.sendMediaTo(b)
        b.sendMediaTo(a)

    def release(self) -> None:
        """After the call: forget the session (reference cycles) and the handlers. The clients stay
        listed (the call-flow kit reads them after the call) but no longer report to the session."""
        self._terminate = None
        self.listeners.clear()
        for client in self.clients:
            client.observer = None

    def terminate(self) -> None:
        """End this call's session: only Terminating and Terminated fire after this."""
        if self._terminate is not None:
            self._terminate(CallEnd.SCENARIO_TERMINATED)


class _Beta:
    RealtimeAPIEvents = RealtimeAPIEvents
    Events = MediaEvents

    def __init__(self, tasks: TaskOwner, vox: VoxEngine, local_engine_url: str | None, environ: Mapping[str, str] | None,
                 scenario: str | None = None) -> None:
        self._tasks = tasks
        self._vox = vox
        self._local_engine_url = local_engine_url
        self._environ = environ
        self._scenario = scenario
        self.observer: Observer | None = None  # the call journal and metrics (of the GA clients too)

    async def createRealtimeAPIClient(self, parameters: Mapping[str, Any] | None = None) -> RealtimeAPIClient:
        scenario = self._scenario or "?"
        if scenario not in _BETA_DEPRECATION_LOGGED:
            _BETA_DEPRECATION_LOGGED.add(scenario)
            log.info("scenario %s uses OpenAI.Beta.createRealtimeAPIClient, which Voximplant deprecates: it keeps "
                        "working (over the GA wire), but new scenarios should use OpenAI.createRealtimeAPIClient "
                        "(README, Writing scenarios)", scenario)
        client = await create_realtime_api_client(
            parameters or {}, tasks=self._tasks, environ=self._environ, local_engine_url=self._local_engine_url
        )
        client.observer = self.observer
        self._vox.clients.append(client)
        return client


with_snake_case_twins(_Beta)


@with_snake_case_twins
class OpenAINamespace:
    """`OpenAI` as scenarios use it: the GA `OpenAI.createRealtimeAPIClient(...)`, `OpenAI.RealtimeAPIEvents`,
    `OpenAI.Events`, `OpenAI.RealtimeAPIClientType`, and the legacy `OpenAI.Beta.*`."""

    RealtimeAPIEvents = GARealtimeAPIEvents
    Events = GAEvents
    RealtimeAPIClientType = RealtimeAPIClientType

    def __init__(self, beta: _Beta) -> None:
        self.Beta = beta

    async def createRealtimeAPIClient(self, parameters: Mapping[str, Any] | None = None) -> GARealtimeAPIClient:
        beta = self.Beta  # the call's registry of clients and its observer, shared by both shapes
        client = await create_ga_realtime_api_client(
            parameters, tasks=beta._tasks, environ=beta._environ, local_engine_url=beta._local_engine_url
        )
        client.observer = beta.observer
        beta._vox.clients.append(client)
        return client


def call_context(
    tasks: TaskOwner,
    terminate: Callable[[CallEnd], None],
    local_engine_url: str | None,
    environ: Mapping[str, str] | None = None,
    scenario: str | None = None,
) -> tuple[VoxEngine, OpenAINamespace]:
    vox = VoxEngine(tasks, terminate)
    return vox, OpenAINamespace(_Beta(tasks, vox, local_engine_url, environ, scenario))


class _InertTasks(TaskOwner):
    """Start-up check of a scenario's top level: nothing may be spawned there."""

    def __init__(self) -> None:
        super().__init__("scenario check")

    def spawn(self, coro: Any, *, name: str) -> Any:
        coro.close()
        raise RuntimeError(f"a scenario's top level cannot start tasks ({name}); do it in an event handler")


def inert_context() -> tuple[VoxEngine, OpenAINamespace]:
    tasks = _InertTasks()
    return call_context(tasks, lambda reason: None, None, {})

