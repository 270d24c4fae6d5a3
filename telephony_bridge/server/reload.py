"""`serve --reload`: pick up edited scenarios and routes without restarting, for development.

The scenarios directory is polled (its files' sizes and mtimes) once a second; a change reloads
every scenario and routes.toml through start-up's own loader, with the same checks (a set that
routes no call, without routes.toml and default.py, is refused too). A broken edit is logged with
file, line and reason and the previous version stays in force. Calls in progress keep the version they
started with: a session takes its scenario from the runtime once, when its stream starts.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from telephony_bridge.server.runtime import BridgeRuntime, load_scenario_set
from telephony_bridge.voxengine.scenario import ScenarioError

log = logging.getLogger("telephony_bridge.server")


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for path in sorted(directory.glob("*")):
        if path.suffix in (".py", ".toml") and path.is_file():
            stat = path.stat()
            state[path.name] = (stat.st_mtime_ns, stat.st_size)
    return state


def reload_runtime(runtime: BridgeRuntime) -> bool:
    """Load scenarios and routes afresh, through the start-up loader and its checks; swap them in
    only if all of it loads."""
    try:
        scenarios, router = load_scenario_set(runtime.settings.scenarios_dir)
    except ScenarioError as exc:
        log.error("reload failed, keeping the previous scenarios: %s", exc)
        return False
    runtime.scenarios, runtime.router = scenarios, router
    runtime.scenario_version += 1
    log.info("scenarios reloaded (version %d): %s", runtime.scenario_version, ", ".join(sorted(scenarios)))
    return True


async def watch_scenarios(runtime: BridgeRuntime, interval_s: float = 1.0) -> None:
    directory = Path(runtime.settings.scenarios_dir)
    seen = snapshot(directory)
    while True:
        await asyncio.sleep(interval_s)  # polling: no extra dependency, and a second is plenty for edits
        current = snapshot(directory)
        if current != seen:
            # A file caught half-written fails to load and is retried when its write changes it again.
            seen = current
            reload_runtime(runtime)
