"""The per-call VoxEngine context and the `OpenAI` namespace a scenario sees.

Each call gets one `VoxEngine` (application events, `sendMediaBetween`, `terminate`) and one
`OpenAI` namespace whose `Beta.createRealtimeAPIClient` registers every client it opens with the call,
so everything a scenario opened is closed when the call ends — even if the scenario forgot.
"""

from __future__ import annotations

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
    create_realtime_api_client,
)


@with_snake_case_twins
class VoxEngine:
    """The `VoxEngine` global of one call's scenario."""

    def __init__(self, tasks: TaskOwner, terminate: Callable[[CallEnd], None] | None = None) -> None:
        self._tasks = tasks
        self._terminate = terminate
        self.listeners = Listeners(tasks.label, tasks, enum_normalizer(AppEvents))
        self.clients: list[RealtimeAPIClient] = []
        # A session started from outside (POST /api/scenarios/{name}/start): its custom data, and
        # what places its outbound calls (server/outbound.py). Inbound calls have neither.
        self.custom_data: str = ""
        self.dialer: Any = None

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

    def callPSTN(self, number: str, callerid: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Place an outbound call; returns its `Call` at once (Connected, Failed or Disconnected
        follow). `parameters`: `{"amd": True}` for answering-machine detection, where the carrier
        offers it; its result is `amd` on Connected."""
        if self.dialer is None:
            raise RuntimeError("this session cannot place calls (no carrier with dial credentials)")
        return self.dialer.call_pstn(number, callerid, parameters or {})

    def release(self) -> None:
        """After the call: forget the session (reference cycles) and the handlers. The clients stay
        listed (the call-flow kit reads them after the call) but no longer report to the session."""
        self._terminate = None
        self.dialer = None
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

    def __init__(self, tasks: TaskOwner, vox: VoxEngine, local_engine_url: str | None, environ: Mapping[str, str] | None) -> None:
        self._tasks = tasks
        self._vox = vox
        self._local_engine_url = local_engine_url
        self._environ = environ
        self.observer: Observer | None = None  # the call journal and metrics

    async def createRealtimeAPIClient(self, parameters: Mapping[str, Any] | None = None) -> RealtimeAPIClient:
        client = await create_realtime_api_client(
            parameters or {}, tasks=self._tasks, environ=self._environ, local_engine_url=self._local_engine_url
        )
        client.observer = self.observer
        self._vox.clients.append(client)
        return client


with_snake_case_twins(_Beta)


class OpenAINamespace:
    """`OpenAI` as scenarios use it: `OpenAI.Beta.createRealtimeAPIClient(...)`, `OpenAI.Beta.RealtimeAPIEvents`."""

    def __init__(self, beta: _Beta) -> None:
        self.Beta = beta


def call_context(
    tasks: TaskOwner,
    terminate: Callable[[CallEnd], None],
    local_engine_url: str | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[VoxEngine, OpenAINamespace]:
    vox = VoxEngine(tasks, terminate)
    return vox, OpenAINamespace(_Beta(tasks, vox, local_engine_url, environ))


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

