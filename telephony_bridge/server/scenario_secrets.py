"""What `VoxEngine.getSecretValue(name)` reads: a secrets file, then the bridge's environment.

`SECRETS_FILE` is either TOML (`.toml`: top-level `NAME = "value"` strings) or an env file (any
other name: `NAME=value` lines, optional `export `, optional single or double quotes, `#`
comments). The file is read once, at start-up (restart to change it), so a broken one stops `serve`;
its errors give the file and line, never a value. A name missing from the file is looked up in the
environment the bridge was started with.

Values are never logged: `Secrets` has no repr of its contents, and the errors here and in
`VoxEngine.getSecretValue` name the secret and where it was looked for, nothing more.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class SecretsFileError(ValueError):
    """A secrets file that cannot be read; the message gives file and line, never a value."""


class Secrets:
    """Secret values by name: the file's first, then the environment's."""

    __slots__ = ("_environ", "_file", "source")

    def __init__(
        self,
        file_values: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        source: str = "the environment",
    ) -> None:
        self._file = dict(file_values or {})
        self._environ = environ if environ is not None else {}
        self.source = source  # where a missing secret was looked for, for the error

    def get(self, name: str) -> str | None:
        value = self._file.get(name)
        return value if value is not None else self._environ.get(name)

    def __repr__(self) -> str:
        return f"<Secrets from {self.source}: {len(self._file)} in the file>"

    def values(self) -> list[str]:
        """The file's values (for a test asserting none reached a log)."""
        return list(self._file.values())


def load_secrets(path: Path | None, environ: Mapping[str, str]) -> Secrets:
    if path is None:
        return Secrets(None, environ)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretsFileError(f"{path}: cannot read secrets file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretsFileError(f"{path}: secrets file is not UTF-8") from None
    values = _parse_toml(path, text) if path.suffix.lower() == ".toml" else _parse_env(path, text)
    return Secrets(values, environ, f"SECRETS_FILE {path} and the environment")


def _parse_toml(path: Path, text: str) -> dict[str, str]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a position ("… (at line 3, column 9)"), never the text itself.
        raise SecretsFileError(f"{path}: not valid TOML: {exc}") from None
    values = {}
    for name, value in document.items():
        if not isinstance(value, str):
            raise SecretsFileError(f"{path}: secret {name!r} must be a string (tables and numbers are not secrets)")
        values[name] = value
    return values


def _parse_env(path: Path, text: str) -> dict[str, str]:
    values = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not _NAME.fullmatch(name):
            raise SecretsFileError(f"{path}:{number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif value and value[0] in "\"'":
            raise SecretsFileError(f"{path}:{number}: secret {name!r} has an unterminated quote")
        values[name] = value
    return values
