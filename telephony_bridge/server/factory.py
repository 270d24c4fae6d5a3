"""The app as a worker process builds it: everything from the environment.

`serve --workers N` starts N processes on one port; each loads its own scenarios and runs its own
calls. Nothing of a call crosses processes (what the media stream needs travels in the TwiML
<Parameter>s), so any worker can take any stream.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from telephony_bridge.logs import configure_logging
from telephony_bridge.server.app import create_app
from telephony_bridge.server.runtime import load_runtime
from telephony_bridge.server.settings import Settings

HOST_ENV, PORT_ENV = "TELEPHONY_BRIDGE_HOST", "TELEPHONY_BRIDGE_PORT"


def app_from_environ() -> Starlette:
    configure_logging(
        os.environ.get("TELEPHONY_BRIDGE_VERBOSE") == "1", os.environ.get("LOG_FORMAT") == "json", with_pid=True
    )
    settings = Settings.from_environ(
        host=os.environ.get(HOST_ENV), port=int(os.environ[PORT_ENV]) if os.environ.get(PORT_ENV) else None
    )
    return create_app(settings, load_runtime(settings))
