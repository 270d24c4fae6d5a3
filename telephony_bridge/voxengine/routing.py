"""Routing rules: which scenario answers which dialed number (VoxEngine application rules).

`scenarios/routes.toml` holds ordered `[[route]]` tables: `pattern` (a regular expression matched
against the whole dialed number), optional `exclude` (a number matching it skips the rule) and
`scenario` (a file name in the scenarios directory, without `.py`). The first match wins; a number
that matches nothing is rejected. Errors name the file, the line and the reason.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from telephony_bridge.voxengine.scenario import ScenarioError


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    exclude: re.Pattern[str] | None
    scenario: str

    def matches(self, number: str) -> bool:
        if not self.pattern.fullmatch(number):
            return False
        return not (self.exclude and self.exclude.fullmatch(number))


@dataclass(frozen=True, slots=True)
class Router:
    routes: tuple[Route, ...]

    def scenario_for(self, number: str) -> str | None:
        for route in self.routes:
            if route.matches(number):
                return route.scenario
        return None


def _line_of(text: str, needle: str, fallback: int) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle and needle in line:
            return number
    return fallback


def load_routes(path: Path, scenario_names: Collection[str]) -> Router:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read routes: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ScenarioError(f"{path}:{line}: {exc}") from None
    tables = data.get("route")
    if not isinstance(tables, list) or not tables:
        raise ScenarioError(f"{path}:1: expected one or more [[route]] tables")
    routes = []
    for index, table in enumerate(tables, start=1):
        where = f"{path}:{_nth_route_line(text, index)}"
        unknown = set(table) - {"pattern", "exclude", "scenario"}
        if unknown:
            raise ScenarioError(f"{where}: route {index} has unknown keys {sorted(unknown)}")
        pattern, scenario, exclude = table.get("pattern"), table.get("scenario"), table.get("exclude")
        if not isinstance(pattern, str) or not isinstance(scenario, str):
            raise ScenarioError(f"{where}: route {index} needs string 'pattern' and 'scenario'")
        if scenario not in scenario_names:
            raise ScenarioError(f"{path}:{_line_of(text, scenario, 1)}: route {index} names scenario {scenario!r}, which does not exist (have: {', '.join(sorted(scenario_names)) or 'none'})")
        routes.append(Route(_compile(pattern, path, text, index), _compile(exclude, path, text, index) if exclude else None, scenario))
    return Router(tuple(routes))


def _compile(pattern: str, path: Path, text: str, index: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ScenarioError(f"{path}:{_nth_route_line(text, index)}: route {index}: bad regular expression {pattern!r}: {exc}") from None


def _nth_route_line(text: str, index: int) -> int:
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == "[[route]]":
            seen += 1
            if seen == index:
                return number
    return 1


def _line_from_message(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 1
