import textwrap
from pathlib import Path

import pytest

from telephony_bridge.voxengine.context import inert_context
from telephony_bridge.voxengine.routing import load_routes
from telephony_bridge.voxengine.scenario import (
    ScenarioError,
    load_scenario,
    load_scenarios,
)


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
    ('[[route]]\npattern = "(unclosed"\nscenario = "default"\n', 2, "bad regular expression in 'pattern'"),
    ('[[route]]\npattern = ".*"\nscenario = "nope"\n', 3, "does not exist"),
    ('[[route]]\npattern = ".*"\nscenario = \n', 3, ""),
    ('# nothing\n', 1, "[[route]]"),
    ('# one table, not an array of tables\n[route]\npattern = ".*"\nscenario = "default"\n', 2, "[[route]]"),
    ('[[route]]\npattern = ".*"\nscenario = "default"\ncolour = "red"\n', 4, "unknown key 'colour'"),
])
def test_broken_routes_name_file_line_and_reason(tmp_path, text, line, words):
    routes = write(tmp_path / "routes.toml", text)
    with pytest.raises(ScenarioError) as info:
        load_routes(routes, {"default"})
    assert f"{routes}:{line}:" in str(info.value)
    assert words in str(info.value)


def load_error(tmp_path, text: str, scenarios=("default", "sales")) -> str:
    routes = write(tmp_path / "routes.toml", text)
    with pytest.raises(ScenarioError) as info:
        load_routes(routes, set(scenarios))
    message = str(info.value)
    assert message.startswith(f"{routes}:")
    return message.removeprefix(f"{routes}:")


@pytest.mark.parametrize("table", ["[[rout]]", "[[routes]]", "[rout]", "[ rout.sub ]"])
def test_unknown_top_level_table_or_key_stops_start_up_at_its_line(tmp_path, table):
    # Before, a misspelt table was ignored and every call was rejected at run time.
    message = load_error(tmp_path, """
        [[route]]
        pattern = '\\+1555.*'
        scenario = "sales"

        {table}
        pattern = '.*'
        scenario = "default"
    """.replace("{table}", table))
    assert message.startswith("6: unknown table or key"), message


def test_unknown_top_level_key_names_its_line(tmp_path):
    message = load_error(tmp_path, """
        # routes
        default_scenario = "default"
        [[route]]
        pattern = '.*'
        scenario = "default"
    """)
    assert message.startswith("3: unknown table or key 'default_scenario'"), message


def test_unknown_key_inside_a_later_route_names_its_own_line(tmp_path):
    message = load_error(tmp_path, """
        [[route]]
        pattern = '\\+1555.*'
        scenario = "sales"

        [[route]]
        patern = '.*'
        scenario = "default"
    """)
    assert message.startswith("7: route 2 has unknown key 'patern'"), message


@pytest.mark.parametrize("catch_all", [".*", "^.*$", ".+", "(.*)", r"[\s\S]*", r"(\+1)?.*"])
def test_rule_after_a_catch_all_is_a_start_up_error(tmp_path, catch_all):
    message = load_error(tmp_path, """
        # everything
        [[route]]
        pattern = '{catch_all}'
        scenario = "default"

        [[route]]
        pattern = '\\+1555.*'
        scenario = "sales"
    """.replace("{catch_all}", catch_all))
    assert message.startswith("7: route 2 can never match: route 1 (line 4) matches every number"), message


def test_catch_all_with_exclude_or_last_is_fine(tmp_path):
    routes = write(tmp_path / "routes.toml", """
        [[route]]
        pattern = '.*'
        exclude = '\\+1555.*'
        scenario = "default"

        [[route]]
        pattern = '\\+1555.*'
        scenario = "sales"

        [[route]]
        pattern = '.*'
        scenario = "default"
    """)
    router = load_routes(routes, {"default", "sales"})
    assert router.scenario_for("+15551234") == "sales"
    assert router.scenario_for("+4930") == "default"


def test_bad_exclude_points_at_the_exclude_line(tmp_path):
    message = load_error(tmp_path, """
        [[route]]
        pattern = '\\+1555.*'
        scenario = "sales"

        [[route]]  # the rest
        scenario = "default"
        pattern = '.*'
        exclude = '[0-9'
    """)
    assert message.startswith("9: route 2: bad regular expression in 'exclude' '[0-9' at position 0: "), message


def test_backslash_in_double_quoted_pattern_suggests_single_quotes(tmp_path):
    message = load_error(tmp_path, """
        [[route]]
        scenario = "sales"
        pattern = "\\+1555\\d+"
    """)
    assert message.startswith("4: "), message
    assert "single quotes" in message and "pattern = '\\+1555\\d+'" in message


def test_project_routes_file_loads():
    router = load_routes(Path("scenarios/routes.toml"), {path.stem for path in Path("scenarios").glob("*.py")})
    assert router.scenario_for("+15550200") == "ivr_transfer"
    assert router.scenario_for("+15550700") == "voxengine_ga_port"
    assert router.scenario_for("+15550800") == "translator"
    assert router.scenario_for("+15550400") == "realtime_client_port"
    assert router.scenario_for("+15550900") == "live_receptionist"
    assert router.routes[-1].catches_all


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
