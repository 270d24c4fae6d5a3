"""Scenario files: compiled once at start-up, executed afresh for every call.

A scenario is a Python file in `scenarios/` written like a VoxEngine script: its top level runs once
per call, in a fresh namespace that already holds `VoxEngine`, `OpenAI`, `AppEvents`, `CallEvents`,
`Logger`, `Net` and `ApplicationStorage` for *that* call. Module-level variables are therefore per
call, exactly as in VoxEngine,
and nothing leaks between calls. Files are checked at start-up (compiled, and their top level run
against an inert context) so a broken scenario fails `serve` with file, line and reason — never
mid-call.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from telephony_bridge.voxengine.events import AppEvents, CallEvents


class ScenarioLogger(logging.LoggerAdapter):
    """The `Logger` a scenario sees: its lines name the call, and VoxEngine's `Logger.write` works."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None  # always built with {"call": label} (below)
        return f"{self.extra['call']}: {msg}", kwargs

    def write(self, msg: Any, *args: Any) -> None:
        self.info(msg, *args)


class ScenarioError(Exception):
    """A scenario or routes file that cannot run; the message names file, line and reason."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    path: Path
    code: CodeType

    def logger(self, call_label: str) -> ScenarioLogger:
        return ScenarioLogger(logging.getLogger(f"telephony_bridge.scenario.{self.name}"), {"call": call_label})

    def namespace(self, vox: Any, openai: Any, logger: Any) -> dict[str, Any]:
        return {
            "__name__": f"scenario_{self.name}",
            "__file__": str(self.path),
            "VoxEngine": vox,
            "OpenAI": openai,
            "AppEvents": AppEvents,
            "CallEvents": CallEvents,
            "Logger": logger,
            **(vox.scenario_globals() if hasattr(vox, "scenario_globals") else {}),  # Net, ApplicationStorage
        }

    def run(self, vox: Any, openai: Any, logger: Any) -> dict[str, Any]:
        namespace = self.namespace(vox, openai, logger)
        self.execute(namespace)
        return namespace

    def execute(self, namespace: dict[str, Any]) -> None:
        """Run the scenario's top level in `namespace`. The caller owns the dict (and clears it
        when the call is over: its functions' globals are that dict, a reference cycle)."""
        exec(self.code, namespace)


def _where(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


def load_scenario(path: Path) -> Scenario:
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror}") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ScenarioError(f"{path}:{exc.lineno}: {exc.msg}") from None
    scenario = Scenario(name=path.stem, path=path, code=code)
    _check_top_level(scenario)
    return scenario


def _check_top_level(scenario: Scenario) -> None:
    from telephony_bridge.voxengine.context import inert_context

    vox, openai = inert_context()
    try:
        scenario.run(vox, openai, scenario.logger("scenario check"))
    except Exception as exc:
        raise ScenarioError(f"{_where(exc, scenario.path)}: {type(exc).__name__}: {exc}") from None


def load_scenarios(directory: Path) -> dict[str, Scenario]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: scenarios directory not found")
    return {path.stem: load_scenario(path) for path in sorted(directory.glob("*.py")) if not path.name.startswith("_")}
