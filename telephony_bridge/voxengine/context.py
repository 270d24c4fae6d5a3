"""The per-call VoxEngine context and the `OpenAI` namespace a scenario sees.

Each call gets one `VoxEngine` (application events, `sendMediaBetween`, `terminate`,
`customData`, `getSecretValue`, and the call's `Net` and `ApplicationStorage`) and one
`OpenAI` namespace whose `Beta.createRealtimeAPIClient` registers every client it opens with the call,
so everything a scenario opened is closed when the call ends — even if the scenario forgot.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
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
from telephony_bridge.voxengine.live_client import LiveAPIClient, LiveAPIEvents
from telephony_bridge.voxengine.live_client_factory import create_live_api_client
from telephony_bridge.voxengine.net import Net
from telephony_bridge.voxengine.realtime_client import (
    RealtimeAPIClient,
    RealtimeClientCore,
    create_realtime_api_client,
)
from telephony_bridge.voxengine.realtime_client_shape import RealtimeClient
from telephony_bridge.voxengine.realtime_ga import (
    GAEvents,
    GARealtimeAPIClient,
    GARealtimeAPIEvents,
    RealtimeAPIClientType,
)
from telephony_bridge.voxengine.realtime_ga_factory import create_ga_realtime_api_client
from telephony_bridge.voxengine.realtime_webrtc_shape import OpenAIRealtimeWebRTC
from telephony_bridge.voxengine.realtime_websocket_shape import OpenAIRealtimeWebSocket
from telephony_bridge.voxengine.services import ScenarioServices, SecretNotFound
from telephony_bridge.voxengine.shape_engine import in_call
from telephony_bridge.voxengine.storage import ApplicationStorage

log = logging.getLogger("telephony_bridge.scenario")
realtime_log = logging.getLogger("telephony_bridge.realtime")  # not the scenario's own log
# Scenario names, once per process each. INFO, not WARNING: the Beta client works, and a warning
# would sit in every call report of the call-flow kit.
_BETA_DEPRECATION_LOGGED: set[str] = set()

MAX_CUSTOM_DATA_BYTES = 200  # VoxEngine.customData(value): Voximplant's limit for the setter


@with_snake_case_twins
class VoxEngine:
    """The `VoxEngine` global of one call's scenario."""

    # `custom_data` is the session's custom data itself (an attribute, set by whoever starts a
    # session), so customData() has no snake_case twin here.
    _without_twins = ("customData",)

    def __init__(
        self,
        tasks: TaskOwner,
        terminate: Callable[[CallEnd], None] | None = None,
        services: ScenarioServices | None = None,
    ) -> None:
        self._tasks = tasks
        self._terminate = terminate
        self.listeners = Listeners(tasks.label, tasks, enum_normalizer(AppEvents))
        self.clients: list[RealtimeClientCore] = []
        self._services = services or ScenarioServices()
        # The session's custom data: a started (outbound) session's, set by whoever started it; for
        # an inbound call, None, and customData() gives the call's own custom parameters.
        self.custom_data: str | None = None
        self.call_custom_data: Mapping[str, str] = {}  # the inbound call's parameters (set by the session)
        self.net = Net(self._services.net, tasks.label)
        self.application_storage = ApplicationStorage(self._services.storage)
        # The call's context (made in the call's task): handlers run for requests from outside the
        # call (AppEvents.HttpRequest) run in it, so their log lines name the call like any other.
        self._context = contextvars.copy_context()
        # What places a started session's outbound calls (server/outbound.py); inbound calls have none.
        self.dialer: Any = None

    def scenario_globals(self) -> dict[str, Any]:
        """The call's globals besides VoxEngine itself (scenario.py puts them in the namespace)."""
        return {"Net": self.net, "ApplicationStorage": self.application_storage}

    def customData(self, value: str | None = None) -> str:
        """The session's custom data, as a string (`json.loads` it when it is JSON).

        A session started through the API (an outbound call): the custom data it was started
        with. An inbound call: the call's custom parameters as a JSON object, `""` when it has
        none. `customData(value)` replaces it for the rest of the session (≤ 200 bytes, as on
        Voximplant) and returns it."""
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"VoxEngine.customData(value) takes a string, got {type(value).__name__}")
            if len(value.encode("utf-8")) > MAX_CUSTOM_DATA_BYTES:
                raise ValueError(f"VoxEngine.customData is limited to {MAX_CUSTOM_DATA_BYTES} bytes")
            self.custom_data = value
        if self.custom_data is not None:
            return self.custom_data
        return json.dumps(dict(self.call_custom_data), separators=(",", ":")) if self.call_custom_data else ""

    def getSecretValue(self, name: str) -> str:
        """A configured secret (SECRETS_FILE, then the environment). An unknown one raises
        `SecretNotFound` naming it (Voximplant returns undefined; a missing key is better found here
        than as a 401 later). Never log the value."""
        if not isinstance(name, str) or not name:
            raise TypeError("VoxEngine.getSecretValue takes a secret's name")
        lookup = self._services.secret
        value = lookup(name) if lookup is not None else None
        if value is None:
            raise SecretNotFound(name, self._services.secrets_source)
        return value

    async def answer_http_request(self, payload: EventPayload, timeout_s: float) -> tuple[bool, Any]:
        """Deliver an `AppEvents.HttpRequest` (a request to the session's access URL) and wait, at
        most `timeout_s`, for its handlers: `(True, reply)` where reply is the first value a
        handler returned (None if none did), `(False, None)` when they did not finish in time or
        the call ended meanwhile. The handlers run as one task of the call, so they end with it."""
        handlers = self.listeners.handlers(AppEvents.HttpRequest)
        if not handlers:
            return True, None
        task = self._context.run(
            self._tasks.spawn, self._run_http_handlers(handlers, payload), name="HttpRequest handlers"
        )
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done or task.cancelled():
            return False, None
        return True, task.result()

    async def _run_http_handlers(self, handlers: list[Handler], payload: EventPayload) -> Any:
        reply = None
        for handler in handlers:
            try:
                result = handler(payload)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                log.exception(
                    "%s: handler %s for HttpRequest raised",
                    self._tasks.label,
                    getattr(handler, "__qualname__", repr(handler)),
                )
                continue
            if reply is None:
                reply = result
        return reply

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

    def callSIP(self, uri: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Place a call over SIP (`"sip:+15550100@trunk.example.com"`); returns its `Call` at once,
        as callPSTN does. `parameters`: `{"callerid": ..., "headers": {"X-...": ...}}`."""
        if self.dialer is None:
            raise RuntimeError("this session cannot place calls")
        return self.dialer.call_sip(uri, parameters or {})

    def release(self) -> None:
        """After the call: forget the session (reference cycles) and the handlers. The clients stay
        listed (the call-flow kit reads them after the call) but no longer report to the session."""
        self._terminate = None
        self._context = contextvars.Context()  # it holds the session (context variables): a cycle
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

    def __init__(
        self,
        tasks: TaskOwner,
        vox: VoxEngine,
        local_engine_url: str | None,
        environ: Mapping[str, str] | None,
        scenario: str | None = None,
    ) -> None:
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
            realtime_log.info(
                "scenario %s uses OpenAI.Beta.createRealtimeAPIClient, which Voximplant deprecates: it "
                "keeps working (over the GA wire), but new scenarios should use "
                "OpenAI.createRealtimeAPIClient (README, Writing scenarios)",
                scenario,
            )
        client = await create_realtime_api_client(
            parameters or {}, tasks=self._tasks, environ=self._environ, local_engine_url=self._local_engine_url
        )
        client.observer = self.observer
        self._vox.clients.append(client)
        return client


with_snake_case_twins(_Beta)


class OpenAINamespace:
    """`OpenAI` as scenarios use it: the GA `OpenAI.createRealtimeAPIClient(...)`, `OpenAI.RealtimeAPIEvents`,
    `OpenAI.Events`, `OpenAI.RealtimeAPIClientType`, the RealtimeClient and RealtimeWebSocket shapes, and
    the legacy `OpenAI.Beta.*`."""

    RealtimeAPIEvents = GARealtimeAPIEvents
    Events = GAEvents
    RealtimeAPIClientType = RealtimeAPIClientType

    def __init__(self, beta: _Beta) -> None:
        self.Beta = beta

    async def createRealtimeAPIClient(self, parameters: Mapping[str, Any] | None = None) -> GARealtimeAPIClient:
        beta = self.Beta  # the call's registry of clients and its observer, shared by every shape
        client = await create_ga_realtime_api_client(
            parameters, tasks=beta._tasks, environ=beta._environ, local_engine_url=beta._local_engine_url
        )
        client.observer = beta.observer
        beta._vox.clients.append(client)
        return client

    LiveAPIEvents = LiveAPIEvents

    async def createLiveAPIClient(self, parameters: Mapping[str, Any] | None = None) -> LiveAPIClient:
        """GPT-Live (voxengine/live_client.py), registered with the call like every client."""
        beta = self.Beta
        client = await create_live_api_client(
            parameters or {}, tasks=beta._tasks, environ=beta._environ, local_engine_url=beta._local_engine_url
        )
        client.observer = beta.observer
        beta._vox.clients.append(client)  # type: ignore[arg-type]
        return client

    def RealtimeClient(
        self, settings: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None
    ) -> RealtimeClient:
        """OpenAI's RealtimeClient (openai-realtime-api-beta), over this call's engine."""
        return RealtimeClient(settings, config, **in_call(self.Beta))

    def RealtimeWebSocket(self, options: Mapping[str, Any] | None = None) -> OpenAIRealtimeWebSocket:
        """The Agents SDK's OpenAIRealtimeWebSocket transport, over this call's engine."""
        return OpenAIRealtimeWebSocket(options, **in_call(self.Beta))

    def RealtimeWebRTC(self, options: Mapping[str, Any] | None = None) -> OpenAIRealtimeWebRTC:
        """The Agents SDK's OpenAIRealtimeWebRTC transport, over this call's engine on WebRTC."""
        return OpenAIRealtimeWebRTC(options, **in_call(self.Beta))


with_snake_case_twins(OpenAINamespace)


def call_context(
    tasks: TaskOwner,
    terminate: Callable[[CallEnd], None],
    local_engine_url: str | None,
    environ: Mapping[str, str] | None = None,
    services: ScenarioServices | None = None,
    scenario: str | None = None,
) -> tuple[VoxEngine, OpenAINamespace]:
    vox = VoxEngine(tasks, terminate, services)
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
