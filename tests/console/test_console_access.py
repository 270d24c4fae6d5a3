"""Who may use the console: the token (Bearer, or once as ?token= for an HttpOnly cookie), or
loopback clients only when no token is configured. Recordings and transcripts never without it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from telephony_bridge.server.app import create_app
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.kit import CallFlow

KEY = "console-test-key-0123456789"
TOKEN = "console-only-token-0123456789"
PATHS = ("/console", "/console/live", "/console/calls/CAx", "/console/calls/CAx/recording")


async def test_the_token_as_bearer_or_once_in_the_url(tmp_path: Path):
    async with CallFlow("scenarios", data_dir=tmp_path, api_keys=[KEY], call_store=True) as flow:
        await flow.runtime.call_store.ready.wait()
        async with httpx.AsyncClient(base_url=flow.url) as client:
            for path in PATHS:
                assert (await client.get(path)).status_code == 401, path
            assert (await client.get("/console?token=wrong")).status_code == 401
            assert (await client.get("/console", headers={"Authorization": f"Bearer {KEY}"})).status_code == 200
            moved = await client.get(f"/console?token={KEY}&scenario=default")
            assert moved.status_code == 303 and moved.headers["location"] == "/console?scenario=default"
            cookie = moved.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and KEY not in cookie
            assert (await client.get("/console/live")).status_code == 200  # the cookie
            assert (await client.get("/console/calls/CAx")).status_code == 404
            assert (await client.get("/console/static/console.css")).status_code == 200


def test_console_token_and_loopback_only_without_one(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    settings = Settings(scenarios_dir=Path("scenarios"), data_dir=tmp_path, console_token=TOKEN)
    with TestClient(create_app(settings, load_runtime(settings)), client=("203.0.113.9", 5000)) as client:
        assert client.get("/console/live").status_code == 401
        assert client.get("/console/live", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    settings = Settings(scenarios_dir=Path("scenarios"), data_dir=tmp_path)
    with caplog.at_level("WARNING"):
        app = create_app(settings, load_runtime(settings))
        with TestClient(app, client=("203.0.113.9", 5000)) as remote:
            refused = remote.get("/console/live")
            assert refused.status_code == 403 and "loopback clients only" in refused.text
        with TestClient(app, client=("127.0.0.1", 5000)) as local:
            assert local.get("/console/live").status_code == 200
            assert local.get("/console").status_code == 503  # CALL_STORE off: said, not hidden
    assert any("console at /console serves loopback clients only" in r.message for r in caplog.records)


def test_settings_from_the_environment_without_api_keys(tmp_path: Path):
    """From the environment API_KEYS unset is None, not (): `serve` once failed at start-up on it."""
    settings = Settings.from_environ({"SCENARIOS_DIR": "scenarios", "DATA_DIR": str(tmp_path), "GC_FREEZE": "0"})
    with TestClient(create_app(settings, load_runtime(settings)), client=("127.0.0.1", 5000)) as local:
        assert local.get("/console/live").status_code == 200
