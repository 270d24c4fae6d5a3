from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.fake_twilio_api import TwilioApiStandIn
from tests.integration.probe import PROBE

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
def probe():
    PROBE.reset()
    yield PROBE
    PROBE.reset()


@pytest.fixture
def probe_settings():
    # A model URL that is never dialled: the probe scenario opens no client, and naming one keeps
    # the server from starting the embedded engine.
    return Settings(scenarios_dir=SCENARIOS, realtime_url="ws://127.0.0.1:9/unused")


@pytest.fixture
def twilio_api():
    with TwilioApiStandIn() as api:
        yield api


@pytest.fixture
def signed_settings(probe_settings, twilio_api):
    return replace(probe_settings, twilio_auth_token="test-auth-token-0123456789", twilio_account_sid="AC" + "1" * 32,
                   twilio_api_base_url=twilio_api.url)
