import importlib
import subprocess
import sys

import telephony_bridge.testing as testing


def test_lazy_exports_are_exactly_the_kits_public_names():
    kit = importlib.import_module("telephony_bridge.testing.kit")
    assert set(kit.__all__) == testing.KIT_NAMES
    assert testing.Turn is kit.Turn


def test_importing_the_simulator_first_does_not_cycle_through_the_kit():
    code = "import telephony_bridge.testing.simulator, telephony_bridge.testing.kit; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
