"""Log capture for the kit: which bridge log records belong to which call.

The kit's session-start hook (BridgeRuntime.on_session_start) runs in the task that runs the session
and sets `current_session` there; every task of the call, and every thread it hands work to, inherits
it, so a record belongs to the session whose context logged it. No call ids are read out of text.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

from telephony_bridge.testing.report import LogLine


def session_sid(session: Any) -> str | None:
    return getattr(session, "call_sid", None)  # still set after teardown released the Call


# The session whose task is running: set by the runtime's session-start hook in the task that runs
# the session, so every task the call starts (and every thread it hands work to) inherits it.
current_session: contextvars.ContextVar[Any] = contextvars.ContextVar("kit_current_session", default=None)


class CallLogHandler(logging.Handler):
    """Bridge log records of each call: everything a scenario logs, warnings and errors of the rest.
    A record belongs to the call whose session's context it was logged in."""

    def __init__(self, owns: Callable[[Any], bool], deliver: Callable[[str, LogLine], None]) -> None:
        super().__init__(logging.INFO)
        self._owns = owns  # is this session one of ours (a process may run several bridges)
        self._deliver = deliver

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from_scenario = record.name.startswith("telephony_bridge.scenario.")
            if record.levelno < logging.WARNING and not from_scenario:
                return  # the journal's own lines, the engine's chatter
            session = current_session.get()
            sid = session_sid(session) if session is not None and self._owns(session) else None
            if sid is None:
                return
            message = record.getMessage()
            if from_scenario:
                message = message.removeprefix(f"call {sid}: ")  # the report is per call already
            traceback = None
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message = f"{message} — {type(exc).__name__}: {exc}"
                traceback = logging.Formatter().formatException(record.exc_info)
            self._deliver(sid, LogLine(time.monotonic(), record.levelname, record.name, message, traceback))
        except Exception:  # a logging handler must never raise into the code that logs
            self.handleError(record)
