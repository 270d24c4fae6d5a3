"""pytest plugin of the call-flow test kit (registered by the `pytest11` entry point).

Fixtures:
- `call_flow`: a started `telephony_bridge.testing.kit.CallFlow` (bridge + scripted local engine,
  free ports, this test's temporary calls directory), stopped after the test.
- `call_flow_scenarios`: the scenarios directory it serves. Defaults to the ini option
  `telephony_bridge_scenarios` (relative to the ini file), else `./scenarios`; override the
  fixture to use another directory (e.g. one written into `tmp_path`).

Marker: `@pytest.mark.call_flow(twilio=True, realtime_factor=4.0, call_timeout=30, secret_values={...},
data_dir=...)`: options of that test's `CallFlow` (module-wide through `pytestmark`).

pytest-asyncio, strict or auto mode alike, with no configuration: `call_flow` states its own event
loop scope (the test's), and a coroutine test asking for it is an asyncio test without a marker.

When a test using `call_flow` fails, the report gets one section per call placed: the call's
timeline, phone and bridge side merged.

This module is imported by every pytest run in an environment where telephony_bridge is
installed, so it imports nothing heavy until a test asks for `call_flow`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

_pytest_asyncio_fixture: Callable[..., Any] | None
try:  # pytest-asyncio's fixture decorator works in its strict and auto modes alike
    from pytest_asyncio import fixture as _pytest_asyncio_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio, another async plugin must run it
    _pytest_asyncio_fixture = None

SCENARIOS_INI = "telephony_bridge_scenarios"
TIMEOUT_INI = "telephony_bridge_call_timeout"
LOOP_SCOPE_INI = "asyncio_default_fixture_loop_scope"  # pytest-asyncio's

_FLOW = pytest.StashKey[Any]()
_TIMELINES_SHOWN = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SCENARIOS_INI,
        "scenarios directory served by the call_flow fixture (relative to the ini file; default: scenarios)",
        default="scenarios",
    )
    parser.addini(
        TIMEOUT_INI,
        "seconds a call_flow call may take after the caller's last line before it fails (default: 30)",
        default="30",
    )


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's, which warns
def pytest_configure(config: pytest.Config) -> None:
    if _pytest_asyncio_fixture is not None and not config.getini(LOOP_SCOPE_INI):
        # pytest-asyncio reminds projects that leave this option unset that the event loop of an
        # async fixture without a `loop_scope` will change. `call_flow` states its own, so the
        # reminder is not about it; a project whose only async fixture is `call_flow` would get
        # it on every run just for installing the kit. Projects with async fixtures of their own
        # should set the option (docs/testing-scenarios.md).
        warnings.filterwarnings(
            "ignore",
            message=f'The configuration option "{LOOP_SCOPE_INI}" is unset',
            category=pytest.PytestDeprecationWarning,
        )
    config.addinivalue_line(
        "markers",
        "call_flow(twilio=False, realtime_factor=4.0, call_timeout=None, recordings_dir=None, api_keys=None): "
        "options of the call_flow fixture "
        "(twilio=True: Twilio credentials and a local REST stand-in, so transfers and REST hang-ups happen)",
    )


@pytest.fixture
def call_flow_scenarios(pytestconfig: pytest.Config) -> Path:
    """The scenarios directory `call_flow` serves; override this fixture to serve another one."""
    path = Path(pytestconfig.getini(SCENARIOS_INI) or "scenarios")
    if not path.is_absolute():
        base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
        path = base / path
    return path


def _async_fixture(function: Any) -> Any:
    if _pytest_asyncio_fixture is None:  # pragma: no cover
        return pytest.fixture(function)
    return _pytest_asyncio_fixture(function, loop_scope="function")  # the test's own loop


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio decides which coroutines it runs
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """In strict mode pytest-asyncio runs only coroutine tests marked `asyncio`: mark those that
    ask for `call_flow` (they cannot run otherwise), unless they or their module/class say how."""
    if _pytest_asyncio_fixture is None or not inspect.iscoroutinefunction(obj):
        return
    try:
        if "call_flow" not in inspect.signature(obj).parameters:
            return
    except (TypeError, ValueError):
        return
    if any(mark.name == "asyncio" for mark in getattr(obj, "pytestmark", ())):
        return
    if next(collector.iter_markers("asyncio"), None) is None:
        pytest.mark.asyncio(obj)  # stores the mark on the function the item is built from


@_async_fixture
async def call_flow(request: pytest.FixtureRequest, call_flow_scenarios: Path, tmp_path: Path) -> AsyncIterator[Any]:
    """The bridge serving your scenarios, a scripted model and a phone: `await call_flow.call(...)`."""
    from telephony_bridge.testing.kit import CallFlow

    marker = request.node.get_closest_marker("call_flow")
    options = dict(marker.kwargs) if marker is not None else {}
    options.setdefault("call_timeout", float(request.config.getini(TIMEOUT_INI) or 30))
    options.setdefault("data_dir", tmp_path / "data")  # ApplicationStorage's file, per test
    options.setdefault("recordings_dir", tmp_path / "recordings")
    flow = CallFlow(call_flow_scenarios, calls_dir=tmp_path / "calls", **options)
    async with flow:
        request.node.stash[_FLOW] = flow
        yield flow


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or item.stash.get(_TIMELINES_SHOWN, False):
        return
    flow = item.stash.get(_FLOW, None)
    if flow is None:
        return
    item.stash[_TIMELINES_SHOWN] = True
    for title, text in flow.timelines():
        report.sections.append((f"call-flow timeline: {title}", text))
