"""What `telephony-bridge serve` hands uvicorn: the C HTTP parser and uvloop when installed, and
the bridge's own limits (server/http_limits.py) on whichever parser runs."""

import subprocess
import sys

from telephony_bridge.cli import uvicorn_options
from telephony_bridge.server.http_limits import GuardedHttpProtocol, uvicorn_config
from telephony_bridge.server.settings import Settings


async def app(scope, receive, send):  # the protocol choice does not depend on the app
    pass


def test_webhooks_are_parsed_by_httptools_with_the_head_limits():
    # The `fast` extra (make, the container image) installs httptools: this fails if it is missing.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    settings = Settings.from_environ({"HTTP_HEADER_TIMEOUT_S": "3", "MAX_CALLS": "50"})
    config = uvicorn_config(app, settings, **uvicorn_options(settings))
    config.load()
    assert config.http_protocol_class is GuardedHttpProtocol
    assert issubclass(GuardedHttpProtocol, HttpToolsProtocol)
    assert config.limit_concurrency == 250 and config.ws_per_message_deflate is False
    assert config.telephony_bridge_head_timeout_s == 3.0


def test_without_httptools_the_limits_sit_on_h11():
    # The choice is made at import, so it is checked in a fresh interpreter without httptools.
    code = ("import sys; sys.modules['httptools'] = None\n"
            "from telephony_bridge.server.http_limits import GuardedHttpProtocol\n"
            "print(GuardedHttpProtocol.__mro__[1].__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "H11Protocol"
