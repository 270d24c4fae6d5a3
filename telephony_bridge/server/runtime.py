"""The server's runtime: everything mutable of one bridge, and the one way to load its scenarios.

`BridgeRuntime` is made once per app (no module-level state, so several apps can share a process)
and handed to every edge that needs it: the Starlette app, each call's session, the drainer, the
scenario reloader. It knows nothing of those: sessions are held through `LiveCall`, the little a
runtime-wide action (draining) asks of a call, so this module imports no session and no app.

`load_scenario_set` is the only place scenarios and routes are read, for start-up and `--reload`
alike, with the same checks for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from telephony_bridge.carriers.base import Carrier
from telephony_bridge.carriers.registry import CARRIERS
from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.server.kv_store import SqliteKeyValueStore
from telephony_bridge.server.metrics import BridgeMetrics
from telephony_bridge.server.scenario_secrets import Secrets, load_secrets
from telephony_bridge.server.session_http import SessionAccess
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.stream_tokens import StreamTokens
from telephony_bridge.voxengine.net import NetClient
from telephony_bridge.voxengine.routing import Router, load_routes
from telephony_bridge.voxengine.scenario import Scenario, ScenarioError, load_scenarios
from telephony_bridge.voxengine.services import ScenarioServices

DEFAULT_SCENARIO = "default"


class LiveCall(Protocol):
    """A call in progress, as the runtime sees it (a `server.session.CallSession`)."""

    def end(self, kind: CallEnd, detail: str | None = None, code: int | None = None) -> None: ...


@dataclass
class BridgeRuntime:
    settings: Settings
    scenarios: dict[str, Scenario]
    router: Router | None
    default_scenario: str = DEFAULT_SCENARIO
    local_engine_url: str | None = None
    metrics: BridgeMetrics = field(default_factory=BridgeMetrics)
    sessions: set[LiveCall] = field(default_factory=set)
    # Called in the task that runs the session: start before it runs (its call id is not known yet;
    # context variables set here reach every task of the call), end after its teardown (journal
    # complete, clients closed, `call_sid` still set). A hook that raises is logged, never the call's end.
    on_session_start: list[Callable[[Any], None]] = field(default_factory=list)
    on_session_end: list[Callable[[Any], None]] = field(default_factory=list)
    streams_opened: int = 0  # media WebSockets accepted so far; the last one's number is its connection id
    draining: bool = False
    scenario_version: int = 1  # bumped by each --reload
    stream_tokens: StreamTokens = field(init=False)
    carrier_types: tuple[type[Carrier], ...] = CARRIERS  # what create_app answers for
    carriers: list[Carrier] = field(default_factory=list)  # made by create_app from carrier_types
    # What every call's scenario may use beyond its call: secrets, ApplicationStorage, Net (one
    # HTTP connection pool, closed with the app), and the calls' access URLs.
    secrets: Secrets = field(init=False, repr=False)
    kv_store: SqliteKeyValueStore = field(init=False)
    net: NetClient = field(init=False)
    services: ScenarioServices = field(init=False)
    session_access: SessionAccess = field(init=False)
    # Scenarios started from outside, by session id (server/scenario_sessions.py), and the calls
    # they placed, by the key their carrier's requests name (server/outbound.py).
    scenario_sessions: dict[str, Any] = field(default_factory=dict)
    outbound_calls: dict[str, Any] = field(default_factory=dict)
    call_store: Any = None  # server/store_writer.StoreWriter, made by create_app when CALL_STORE is on
    audiosocket: Any = None  # server/audiosocket.AudioSocketServer, started by the app's lifespan when configured
    sip: Any = None  # server/sip_listener.SipServer, started by the app's lifespan when configured
    sip_media: Any = None  # the SIP listener's media side; None: server/sip_media's RTP port pool
    softphone: Any = None  # server/softphone.SoftphoneCalls, made with the app's routes, stopped by its lifespan

    def __post_init__(self) -> None:
        self.stream_tokens = StreamTokens(self.settings.stream_token_secret, self.settings.stream_token_ttl_s)
        self.secrets = load_secrets(self.settings.secrets_file, self.settings.environ)
        self.kv_store = SqliteKeyValueStore(self.settings.data_dir)
        self.net = NetClient()
        self.services = ScenarioServices(
            secret=self.secrets.get, secrets_source=self.secrets.source, storage=self.kv_store, net=self.net
        )
        self.session_access = SessionAccess()

    def at_capacity(self) -> bool:
        return len(self.sessions) >= self.settings.max_calls

    def scenario_for(self, number: str) -> str | None:
        if self.router is not None:
            return self.router.scenario_for(number)
        return self.default_scenario if self.default_scenario in self.scenarios else None


def load_scenario_set(scenarios_dir: Path) -> tuple[dict[str, Scenario], Router | None]:
    """Every scenario and the routes, or ScenarioError with file, line and reason.

    A set that cannot answer a call is refused too: without routes.toml every number goes to the
    default scenario, so there must be one."""
    scenarios = load_scenarios(scenarios_dir)
    routes_file = Path(scenarios_dir) / "routes.toml"
    router = load_routes(routes_file, scenarios.keys()) if routes_file.exists() else None
    if router is None and DEFAULT_SCENARIO not in scenarios:
        raise ScenarioError(f"{scenarios_dir}: no routes.toml and no {DEFAULT_SCENARIO}.py scenario")
    return scenarios, router


def load_runtime(settings: Settings) -> BridgeRuntime:
    """Load scenarios and routes, failing with file, line and reason — at start-up, never mid-call."""
    scenarios, router = load_scenario_set(settings.scenarios_dir)
    return BridgeRuntime(settings=settings, scenarios=scenarios, router=router)
