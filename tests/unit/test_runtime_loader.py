"""The one scenario loader (`server.runtime`), at start-up and on `--reload`."""

from __future__ import annotations

import logging

import pytest

from telephony_bridge.server.reload import reload_runtime
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.voxengine.scenario import ScenarioError

SCENARIO = "VoxEngine.addEventListener(AppEvents.CallAlerting, lambda e: e.call.answer())\n"


def settings_for(directory) -> Settings:
    return Settings(scenarios_dir=directory, realtime_url="ws://127.0.0.1:9/unused")


def test_start_up_refuses_a_directory_that_routes_no_call(tmp_path):
    (tmp_path / "sales.py").write_text(SCENARIO)
    with pytest.raises(ScenarioError, match=r"no routes\.toml and no default\.py"):
        load_runtime(settings_for(tmp_path))


def test_a_reload_that_leaves_no_routes_and_no_default_is_refused_and_the_old_scenarios_stay(tmp_path, caplog):
    (tmp_path / "default.py").write_text(SCENARIO)
    runtime = load_runtime(settings_for(tmp_path))
    assert runtime.scenario_for("+15551234") == "default"

    (tmp_path / "default.py").rename(tmp_path / "sales.py")  # loads, but nothing would answer a call
    with caplog.at_level(logging.ERROR, logger="telephony_bridge.server"):
        assert reload_runtime(runtime) is False

    assert "no routes.toml and no default.py" in caplog.text
    assert sorted(runtime.scenarios) == ["default"] and runtime.router is None
    assert runtime.scenario_version == 1
    assert runtime.scenario_for("+15551234") == "default"


def test_a_good_reload_swaps_scenarios_and_routes_in_and_bumps_the_version(tmp_path):
    (tmp_path / "default.py").write_text(SCENARIO)
    runtime = load_runtime(settings_for(tmp_path))
    (tmp_path / "sales.py").write_text(SCENARIO)
    (tmp_path / "routes.toml").write_text('[[route]]\npattern = "\\\\+1555.*"\nscenario = "sales"\n')

    assert reload_runtime(runtime) is True

    assert sorted(runtime.scenarios) == ["default", "sales"] and runtime.scenario_version == 2
    assert runtime.scenario_for("+15551234") == "sales"
    assert runtime.scenario_for("+4930123") is None  # routes, once present, decide alone
