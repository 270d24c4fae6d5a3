"""Testing without a phone, a key or a network: the phone simulator, the call-flow kit (a pytest
plugin), a fault-injection proxy, and harnesses that run the real server.

The kit's names are importable from here (`from telephony_bridge.testing import Turn, ToolCall`).
They load lazily, so importing the simulator alone does not pull in the server.
"""

from __future__ import annotations

import importlib
from typing import Any

# Static on purpose: `from telephony_bridge.testing import simulator` probes this module's
# attributes first, and answering that by importing the kit would import the simulator mid-import.
KIT_NAMES = frozenset(
    {
        "CALLER_VOICE",
        "CallFlow",
        "CallFlowError",
        "CallReport",
        "Event",
        "Line",
        "LogLine",
        "ModelConnection",
        "RestRequest",
        "Script",
        "ToolCall",
        "ToolCallRecord",
        "Transfer",
        "Turn",
        "TwilioApiStandIn",
    }
)


def __getattr__(name: str) -> Any:
    if name in KIT_NAMES:
        return getattr(importlib.import_module("telephony_bridge.testing.kit"), name)
    raise AttributeError(f"module 'telephony_bridge.testing' has no attribute {name!r}")
