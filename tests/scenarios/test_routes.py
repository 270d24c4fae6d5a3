"""scenarios/routes.toml: the example numbers reach their scenarios; anything else the receptionist."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)


async def test_the_routes_file_loads_and_routes_the_example_numbers(call_flow):
    assert call_flow.scenario_for("+15550100") == "default"  # the demo's and the simulator's number
    assert call_flow.scenario_for("+15550200") == "ivr_transfer"
    assert call_flow.scenario_for("+15550300") == "voxengine_port"
    assert call_flow.scenario_for("+15550400") == "realtime_client_port"
    assert call_flow.scenario_for("+15550500") == "agents_websocket_port"
    assert call_flow.scenario_for("+15550600") == "recording"
    assert call_flow.scenario_for("+15550700") == "voxengine_ga_port"
    assert call_flow.scenario_for("+15550800") == "translator"
    assert call_flow.scenario_for("+15550900") == "live_receptionist"
    assert call_flow.scenario_for("+442071234567") == "default"  # the catch-all: your own number just works
    assert call_flow.scenario_for("+155501000") == "default"  # patterns match the whole number

