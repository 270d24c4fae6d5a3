from __future__ import annotations

import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from telephony_bridge.server.settings import Settings
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


class TwilioApiStandIn:
    """A local HTTP server standing in for api.twilio.com; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                recorder.requests.append({"path": self.path, "auth": self.headers.get("authorization"), "form": {k: v[0] for k, v in parse_qs(body).items()}})
                payload = b'{"sid": "CA00000000000000000000000000000000", "status": "completed"}'
                self.send_response(recorder.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio_api():
    with TwilioApiStandIn() as api:
        yield api


@pytest.fixture
def signed_settings(probe_settings, twilio_api):
    return replace(probe_settings, twilio_auth_token="test-auth-token-0123456789", twilio_account_sid="AC" + "1" * 32,
                   twilio_api_base_url=twilio_api.url)
