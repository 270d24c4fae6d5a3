"""Routing rules: which scenario answers which dialed number (VoxEngine application rules).

`scenarios/routes.toml` holds ordered `[[route]]` tables: `pattern` (a regular expression matched
against the whole dialed number), optional `exclude` (a number matching it skips the rule) and
`scenario` (a file name in the scenarios directory, without `.py`). The first match wins; a number
that matches nothing is rejected.

Every mistake stops start-up with the file, the line and the reason: a TOML syntax error, a table or
key this file does not know (a typo such as `[[rout]]` would otherwise leave no rule, and every call
would be rejected), a bad regular expression, an unknown scenario, and a rule placed after a
catch-all (it could never match).

Line numbers: `tomllib` reports lines for syntax errors only, not where a parsed value came from.
`_SourceLines` recovers them by scanning the source text: the n-th `[[route]]` header, then the
first `key =` line after it and before the next table header. A route written as an inline table,
or a key spelled as a quoted or dotted key, is not found that way; the error then names the
route's header line (or line 1), never a wrong line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from telephony_bridge.voxengine.scenario import ScenarioError

ROUTE_KEYS = frozenset({"pattern", "exclude", "scenario"})

# Number shapes a carrier may send as the dialed number. A rule without `exclude` whose pattern
# matches every one of them leaves nothing for the rules after it. (Whether a regular expression
# matches every string is not decidable in general; these probes catch `.*`, `^.*$`, `.+`,
# `(.*)`, `[\s\S]*`, `(\+1)?.*` and the like.)
_CATCH_ALL_PROBES = (
    "+15550100",
    "15550100",
    "100",
    "anonymous",
    "sip:alice@example.com;user=phone",
    "client:Agent 7",
    "#*0",
    "Ünïcødé ☎",
)

_TABLE_HEADER = re.compile(r"^\s*\[")
_ROUTE_HEADER = re.compile(r"^\s*\[\[\s*route\s*\]\]\s*(#.*)?$")


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    exclude: re.Pattern[str] | None
    scenario: str

    def matches(self, number: str) -> bool:
        if not self.pattern.fullmatch(number):
            return False
        return not (self.exclude and self.exclude.fullmatch(number))

    @property
    def catches_all(self) -> bool:
        return self.exclude is None and all(self.pattern.fullmatch(probe) for probe in _CATCH_ALL_PROBES)


@dataclass(frozen=True, slots=True)
class Router:
    routes: tuple[Route, ...]

    def scenario_for(self, number: str) -> str | None:
        for route in self.routes:
            if route.matches(number):
                return route.scenario
        return None


class _SourceLines:
    """Where things are in the routes file's text (see the module docstring for why and how)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def route_header(self, index: int) -> int:
        return self._route_header(index) or 1

    def route_key(self, index: int, key: str) -> int:
        header = self._route_header(index)
        if header is None:
            return 1
        assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(header + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if _TABLE_HEADER.match(line):
                break
            if assignment.match(line):
                return number
        return header

    def _route_header(self, index: int) -> int | None:
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if _ROUTE_HEADER.match(line):
                seen += 1
                if seen == index:
                    return number
        return None

    def top_level_name(self, name: str) -> int:
        """The line of a top-level table header `[name]`, `[[name]]`, `[name.x]`, or key `name = …`."""
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*[\].]")
        key = re.compile(rf"^\s*{re.escape(name)}\s*[=.]")
        in_table = False
        for number, line in enumerate(self.lines, start=1):
            if header.match(line):
                return number
            if _TABLE_HEADER.match(line):
                in_table = True
            elif not in_table and key.match(line):
                return number
        return 1


def load_routes(path: Path, scenario_names: Collection[str]) -> Router:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read routes: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}:{_line_from_message(str(exc))}: {exc}{_syntax_hint(str(exc))}") from None
    source = _SourceLines(text)
    for name in data:
        if name != "route":
            raise ScenarioError(
                f"{path}:{source.top_level_name(name)}: unknown table or key {name!r} "
                "(routes.toml holds only [[route]] tables)"
            )
    tables = data.get("route")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ScenarioError(f"{path}:{source.top_level_name('route')}: expected one or more [[route]] tables")
    routes: list[Route] = []
    for index, table in enumerate(tables, start=1):
        route = _route(table, index, path, source, scenario_names)
        if routes and routes[-1].catches_all:
            raise ScenarioError(
                f"{path}:{source.route_header(index)}: route {index} can never match: route {index - 1} "
                f"(line {source.route_key(index - 1, 'pattern')}) matches every number; "
                "move the catch-all last, or give it an 'exclude'"
            )
        routes.append(route)
    return Router(tuple(routes))


def _route(table: dict, index: int, path: Path, source: _SourceLines, scenario_names: Collection[str]) -> Route:
    for key in table:
        if key not in ROUTE_KEYS:
            raise ScenarioError(
                f"{path}:{source.route_key(index, key)}: route {index} has unknown key {key!r} "
                f"(known: {', '.join(sorted(ROUTE_KEYS))})"
            )
    for key in ("pattern", "scenario"):
        if not isinstance(table.get(key), str):
            raise ScenarioError(f"{path}:{source.route_key(index, key)}: route {index} needs a string {key!r}")
    exclude = table.get("exclude")
    if exclude is not None and not isinstance(exclude, str):
        raise ScenarioError(f"{path}:{source.route_key(index, 'exclude')}: route {index}: 'exclude' must be a string")
    scenario = table["scenario"]
    if scenario not in scenario_names:
        raise ScenarioError(
            f"{path}:{source.route_key(index, 'scenario')}: route {index} names scenario {scenario!r}, "
            f"which does not exist (have: {', '.join(sorted(scenario_names)) or 'none'})"
        )
    return Route(
        _compile(table["pattern"], "pattern", index, path, source),
        _compile(exclude, "exclude", index, path, source) if exclude else None,
        scenario,
    )


def _compile(pattern: str, key: str, index: int, path: Path, source: _SourceLines) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        at = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ScenarioError(
            f"{path}:{source.route_key(index, key)}: route {index}: bad regular expression in {key!r} "
            f"{pattern!r}{at}: {exc.msg}"
        ) from None


def _syntax_hint(message: str) -> str:
    # "\d" or "\+" inside a double-quoted (basic) TOML string is an invalid escape; in a
    # single-quoted (literal) string a backslash is just a backslash, as a regular expression needs.
    if "Unescaped '\\'" in message or "escape" in message.lower():
        return (
            " (backslashes in double-quoted TOML strings start escapes: write regular expressions in "
            "single quotes, e.g. pattern = '\\+1555\\d+')"
        )
    return ""


def _line_from_message(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 1
