import textwrap

import pytest

from telephony_bridge.voxengine.routing import load_routes
from telephony_bridge.voxengine.scenario import ScenarioError, load_scenario, load_scenarios
from telephony_bridge.voxengine.context import inert_context


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_first_matching_route_wins_and_exclude_skips(tmp_path):
    routes = write(tmp_path / "routes.toml", r'''
        [[route]]
        pattern = '\+1555\d+'
        exclude = '\+15550000'
        scenario = "support"

        [[route]]
        pattern = '.*'
        scenario = "default"
    ''')
    router = load_routes(routes, {"support", "default"})
    assert router.scenario_for("+15551234") == "support"
    assert router.scenario_for("+15550000") == "default"
    assert router.scenario_for("+4930123") == "default"


def test_unmatched_number_gets_no_scenario(tmp_path):
    routes = write(tmp_path / "routes.toml", '[[route]]\npattern = "\\\\+1.*"\nscenario = "default"\n')
    assert load_routes(routes, {"default"}).scenario_for("+44123") is None


@pytest.mark.parametrize("text, line, words", [
    ('[[route]]\npattern = "(unclosed"\nscenario = "default"\n', 1, "bad regular expression"),
    ('[[route]]\npattern = ".*"\nscenario = "nope"\n', 3, "does not exist"),
    ('[[route]]\npattern = ".*"\nscenario = \n', 3, ""),
    ('# nothing\n', 1, "[[route]]"),
    ('[[route]]\npattern = ".*"\nscenario = "default"\ncolour = "red"\n', 1, "unknown keys"),
])
def test_broken_routes_name_file_line_and_reason(tmp_path, text, line, words):
    routes = write(tmp_path / "routes.toml", text)
    with pytest.raises(ScenarioError) as info:
        load_routes(routes, {"default"})
    assert f"{routes}:{line}:" in str(info.value)
    assert words in str(info.value)


def test_scenario_syntax_error_names_line(tmp_path):
    path = write(tmp_path / "bad.py", "x = 1\ndef broken(:\n")
    with pytest.raises(ScenarioError, match=rf"{path}:2: "):
        load_scenario(path)


def test_scenario_top_level_error_names_line(tmp_path):
    path = write(tmp_path / "bad.py", "import json\n\nVoxEngine.addEventListener(AppEvents.NoSuchEvent, print)\n")
    with pytest.raises(ScenarioError, match=rf"{path}:3: AttributeError"):
        load_scenario(path)


def test_each_run_gets_a_fresh_namespace(tmp_path):
    path = write(tmp_path / "counter.py", '''
        calls = []
        calls.append(VoxEngine)
        def on_alerting(e):
            calls.append(e)
        VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
    ''')
    scenario = load_scenario(path)
    first = scenario.run(*inert_context(), logger=None)
    second = scenario.run(*inert_context(), logger=None)
    assert first["calls"] is not second["calls"]
    assert first["VoxEngine"] is not second["VoxEngine"]


def test_project_scenarios_load():
    scenarios = load_scenarios("scenarios")
    assert "default" in scenarios
