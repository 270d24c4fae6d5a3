"""What a bridge lends every call's scenario beyond the call: secrets, application storage, HTTP.

The server builds one `ScenarioServices` per process (server/runtime.py) and each call's context
takes it; a scenario's start-up check gets none of them (`ScenarioServices()`), so using them at a
scenario's top level fails with a clear error instead of touching files or the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telephony_bridge.voxengine.net import NetClient
from telephony_bridge.voxengine.storage import KeyValueStore


class SecretNotFound(LookupError):
    """`VoxEngine.getSecretValue(name)` for a secret that is not configured. Names the secret and
    where it was looked for; never a value (there is none to give)."""

    def __init__(self, name: str, source: str) -> None:
        super().__init__(f"secret {name!r} is not configured (looked in {source})")
        self.name = name


@dataclass(frozen=True, slots=True)
class ScenarioServices:
    secret: Callable[[str], str | None] | None = None  # a secret's value by name, None if unknown
    secrets_source: str = "no secrets (a scenario's start-up check)"
    storage: KeyValueStore | None = None
    net: NetClient | None = None
