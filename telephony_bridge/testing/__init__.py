"""Testing without a phone, a key or a network: the phone simulator, the call-flow kit (a pytest
plugin), a fault-injection proxy, and harnesses that run the real server.

The kit's names are importable from here (`from telephony_bridge.testing import Turn, ToolCall`).
They load lazily, so importing the simulator alone does not pull in the server.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    kit = importlib.import_module("telephony_bridge.testing.kit")  # not `from . import kit`: that re-enters here
    if name in kit.__all__:
        return getattr(kit, name)
    raise AttributeError(f"module 'telephony_bridge.testing' has no attribute {name!r}")
