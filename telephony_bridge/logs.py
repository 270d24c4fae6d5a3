"""Logging set-up: one human-readable line per event by default, JSON lines with --log-json.

Every call-related line names the call (`call CA…`); audio payloads never reach a log, and secrets
are redacted here as a last line of defence in case one slips into a message."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

import orjson

SECRET_ENVIRONMENT = ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            redacted = self.redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
            if record.exc_info and not record.exc_text:
                # Formatters reuse exc_text: an exception's text (a REST error, say) is redacted too.
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(verbose: bool = False, json_lines: bool = False, with_pid: bool = False) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        worker = "[%(process)d] " if with_pid else ""  # which worker, with --workers
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {worker}%(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(RedactingFilter(os.environ.get(name, "") for name in SECRET_ENVIRONMENT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # The per-connection lines of the WebSocket libraries say nothing the call journal does not.
    for noisy in ("websockets.server", "websockets.client", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
