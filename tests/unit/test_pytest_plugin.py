"""The call_flow plugin in a user's project: strict or auto mode, no pytest-asyncio configuration,
no warning. Each case runs pytest in a subprocess on a throwaway project, as a user would."""

import os

import pytest

pytest_plugins = ["pytester"]

USER_TEST = '''
async def test_the_bridge_routes_my_number(call_flow):
    assert call_flow.scenario_for("+15550100") == "default"
'''

# A scenario that answers and bridges nothing: starting the bridge is what is under test.
DEFAULT_SCENARIO = '''
VoxEngine.addEventListener(AppEvents.CallAlerting, lambda event: event.call.answer())
'''


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The subprocess must import this checkout's plugin, whichever copy is installed.
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_user=USER_TEST)
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "default.py").write_text(DEFAULT_SCENARIO)
    return pytester


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_call_flow_needs_no_asyncio_configuration_and_warns_nothing(user_project, mode):
    user_project.makeini(f"[pytest]\nasyncio_mode = {mode}\n")  # and no asyncio_default_fixture_loop_scope
    result = user_project.runpytest_subprocess("-W", "error::DeprecationWarning", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    result.assert_outcomes(passed=1)
    assert "is unset" not in output and "DeprecationWarning" not in output, output


def test_a_module_marker_still_chooses_the_loop(user_project):
    # The plugin marks only coroutine tests that say nothing: a module-wide marker is left to apply.
    user_project.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    user_project.makepyfile(test_user='import pytest\npytestmark = pytest.mark.asyncio(loop_scope="module")\n' + USER_TEST)
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
