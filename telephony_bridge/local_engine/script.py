"""The local engine's "brain": a script of what the simulated agent says, turn by turn.

It is not a language model. Each response consumes the next turn, in order, whatever the caller
said; when the turns run out, every further response says the fallback line. A turn may speak a
line (`say`), call a tool (`call`), and say a follow-up once the tool's output is back (`then`, with
`{output}` / `{output.field}` substituted from that output). `hears` is what the engine pretends to
have recognised from the caller before this turn (used as the input transcription).

Scripts come from TOML (`Script.load(path)`, `Script.loads(text)`) or from Python
(`Script.from_turns([...])`). The format is documented in docs/local-engine.md.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_FALLBACK", "Script", "ScriptError", "ToolCall", "Turn", "render_followup"]

DEFAULT_FALLBACK = "Sorry, I can't help with that. Is there anything else?"

_TURN_KEYS = {"say", "hears", "call", "then"}
_CALL_KEYS = {"name", "arguments"}
_TOP_KEYS = {"turn", "fallback", "voice", "name", "description"}


class ScriptError(ValueError):
    """A script that cannot be used; the message names the file and, where known, the line."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def arguments_json(self) -> str:
        return json.dumps(dict(self.arguments), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Turn:
    say: str = ""
    hears: str | None = None
    call: ToolCall | None = None
    then: str | None = None

    def __post_init__(self) -> None:
        if not self.say and self.call is None:
            raise ScriptError("a turn needs `say`, `call` or both")
        if self.then is not None and self.call is None:
            raise ScriptError("`then` (the answer to a tool result) needs a `call`")


@dataclass(frozen=True, slots=True)
class Script:
    turns: tuple[Turn, ...] = ()
    fallback: str = DEFAULT_FALLBACK
    voice: str = "en-us"
    source: str = "<python>"

    @classmethod
    def from_turns(
        cls,
        turns: Iterable[Turn | str | Mapping[str, Any]],
        fallback: str = DEFAULT_FALLBACK,
        voice: str = "en-us",
    ) -> Script:
        """Build a script in Python. Each turn is a `Turn`, a plain string (a line to say), or a dict
        with the TOML keys: {"say": ..., "hears": ..., "call": {"name": ..., "arguments": {...}},
        "then": ...}; "call" may also be a `ToolCall` or just a tool name."""
        built = []
        for index, turn in enumerate(turns, start=1):
            try:
                built.append(_coerce_turn(turn))
            except ScriptError as exc:
                raise ScriptError(f"turn {index}: {exc}") from None
        return cls(turns=tuple(built), fallback=fallback, voice=voice)

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> Script:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib's message ends with "(at line L, column C)"; lead with file:line like a compiler.
            match = re.search(r"at line (\d+), column (\d+)", str(exc))
            where = f"{source}:{match.group(1)}:{match.group(2)}" if match else source
            raise ScriptError(f"{where}: invalid TOML: {exc}") from None
        return cls._from_data(data, text, source)

    @classmethod
    def load(cls, path: str | Path) -> Script:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"{path}: cannot read script: {exc.strerror or exc}") from None
        return cls.loads(text, source=str(path))

    @classmethod
    def default(cls) -> Script:
        """The shipped receptionist script (default_script.toml)."""
        text = resources.files(__package__).joinpath("default_script.toml").read_text(encoding="utf-8")
        return cls.loads(text, source="default_script.toml")

    @classmethod
    def _from_data(cls, data: dict[str, Any], text: str, source: str) -> Script:
        for key in data:
            if key not in _TOP_KEYS:
                line = _line_of_key(text, key, after_line=0)
                raise ScriptError(f"{source}:{line}: unknown key {key!r} (expected one of {sorted(_TOP_KEYS)})")
        raw_turns = data.get("turn", [])
        if not isinstance(raw_turns, list):
            raise ScriptError(f"{source}:{_line_of_key(text, 'turn', 0)}: `turn` must be an array of tables ([[turn]])")
        turn_lines = _turn_header_lines(text)
        turns = []
        for index, raw in enumerate(raw_turns):
            header_line = turn_lines[index] if index < len(turn_lines) else 0
            try:
                turns.append(_coerce_turn(raw))
            except ScriptError as exc:
                bad_key = getattr(exc, "key", None)
                line = _line_of_key(text, bad_key, header_line) if bad_key else header_line
                raise ScriptError(f"{source}:{line or '?'}: turn {index + 1}: {exc}") from None
        fallback = data.get("fallback", DEFAULT_FALLBACK)
        voice = data.get("voice", "en-us")
        for key, value in (("fallback", fallback), ("voice", voice)):
            if not isinstance(value, str):
                raise ScriptError(f"{source}:{_line_of_key(text, key, 0)}: `{key}` must be a string")
        return cls(turns=tuple(turns), fallback=fallback, voice=voice, source=source)


def _key_error(message: str, key: str | None) -> ScriptError:
    error = ScriptError(message)
    error.key = key  # type: ignore[attr-defined]
    return error


def _coerce_call(raw: Any) -> ToolCall:
    if isinstance(raw, ToolCall):
        return raw
    if isinstance(raw, str):
        return ToolCall(name=raw)
    if not isinstance(raw, Mapping):
        raise _key_error("`call` must be a table {name = ..., arguments = {...}}", "call")
    unknown = set(raw) - _CALL_KEYS
    if unknown:
        raise _key_error(f"unknown key(s) {sorted(unknown)} in `call` (expected name, arguments)", "call")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise _key_error("`call.name` must be a non-empty string", "call")
    arguments = raw.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise _key_error("`call.arguments` must be a table", "call")
    return ToolCall(name=name, arguments=dict(arguments))


def _coerce_turn(raw: Any) -> Turn:
    if isinstance(raw, Turn):
        return raw
    if isinstance(raw, str):
        return Turn(say=raw)
    if not isinstance(raw, Mapping):
        raise ScriptError(f"a turn must be a table, a string or a Turn, not {type(raw).__name__}")
    for key in raw:
        if key not in _TURN_KEYS:
            raise _key_error(f"unknown key {key!r} (expected one of {sorted(_TURN_KEYS)})", key)
    for key in ("say", "hears", "then"):
        if key in raw and not isinstance(raw[key], str):
            raise _key_error(f"`{key}` must be a string", key)
    call = _coerce_call(raw["call"]) if raw.get("call") is not None else None
    try:
        return Turn(say=raw.get("say", ""), hears=raw.get("hears"), call=call, then=raw.get("then"))
    except ScriptError as exc:
        raise _key_error(str(exc), "then" if "then" in raw else None) from None


def _turn_header_lines(text: str) -> list[int]:
    return [
        number for number, line in enumerate(text.splitlines(), start=1) if re.match(r"\s*\[\[\s*turn\s*\]\]", line)
    ]


def _line_of_key(text: str, key: str | None, after_line: int) -> int:
    if key is None:
        return after_line
    pattern = re.compile(rf"^\s*(\"?){re.escape(key)}\1\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if number > after_line and pattern.match(line):
            return number
    return after_line


_PLACEHOLDER = re.compile(r"\{output((?:\.[A-Za-z0-9_-]+)*)\}")


def render_followup(template: str, output: str) -> str:
    """Substitute a tool's output into a follow-up line.

    `{output}` is the output as sent. `{output.a.b}` reads a field of a JSON object output; when the
    output is not JSON or lacks the field, the whole output is used (so "It's {output.time}" works
    whether the tool answered `{"time": "10:42"}` or just `10:42`).
    """
    parsed: Any = None
    parsed_ok = False

    def replace(match: re.Match[str]) -> str:
        nonlocal parsed, parsed_ok
        path = [part for part in match.group(1).split(".") if part]
        if not path:
            return output
        if not parsed_ok:
            try:
                parsed = json.loads(output)
            except (ValueError, TypeError):
                parsed = None
            parsed_ok = True
        value = parsed
        for part in path:
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return output
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    return _PLACEHOLDER.sub(replace, template)
