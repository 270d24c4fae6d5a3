"""The SIP tests' bridge: the real app in this process with SIP on a free UDP port, and its tables."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from telephony_bridge.carriers.sip.transaction import TxState
from telephony_bridge.server.runtime import BridgeRuntime, load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.sip.probe import PROBE
from tests.sip.recording_pool import RecordingPool

BRIDGE_SCENARIOS = Path(__file__).parent / "bridge_scenarios"
SETTLED = (TxState.COMPLETED, TxState.CONFIRMED, TxState.TERMINATED)


def sip_settings(**environ: str) -> Settings:
    env = {"SIP_ALLOW": "127.0.0.1/32", **environ}
    return Settings.from_environ(
        env,
        scenarios_dir=BRIDGE_SCENARIOS,
        realtime_url="ws://127.0.0.1:9/unused",  # no model: the scenarios open none
        sip_listen=("udp:127.0.0.1:0",),
        call_store=False,
        gc_freeze=False,  # the default of from_environ: it would freeze the test process's heap
    )


class Bridge:
    def __init__(self, runtime: BridgeRuntime, media: RecordingPool) -> None:
        self.runtime, self.media = runtime, media

    @property
    def port(self) -> int:
        return int(self.runtime.sip.bound[0][1])

    def empty(self) -> bool:
        sip = self.runtime.sip
        return (
            not sip.calls
            and len(sip.dialogs) == 0
            and not self.media.streams
            and not self.runtime.sessions
            # What is left only absorbs retransmissions until its timer ends it (RFC 3261 J, I, K).
            and all(entry.transaction.state in SETTLED for entry in sip.transactions.server.values())
        )


@contextlib.asynccontextmanager
async def start_bridge(settings: Settings) -> AsyncIterator[Bridge]:
    PROBE.clear()
    runtime = load_runtime(settings)
    media = RecordingPool(31000, 31999, "127.0.0.1", runtime.metrics)
    runtime.sip_media = media
    async with running_bridge(settings, runtime) as running:
        yield Bridge(running, media)
