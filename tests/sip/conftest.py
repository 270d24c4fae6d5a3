from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sip.harness import Bridge, sip_settings, start_bridge
from tests.sip.probe import PROBE


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    PROBE.clear()
    async with start_bridge(sip_settings()) as running:
        yield running
