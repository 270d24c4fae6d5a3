"""Logs: JSON lines on request, secrets redacted whatever logger writes them."""

import io
import logging

import orjson
import pytest

from telephony_bridge.logs import configure_logging

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def captured(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tw-token-abcdef123")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield lambda: root.handlers[0]
    root.handlers[:], root.level = saved


def use_buffer(handler) -> io.StringIO:
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def test_json_lines_carry_level_logger_message_pid_and_no_secret(captured):
    configure_logging(json_lines=True)
    buffer = use_buffer(captured())
    log = logging.getLogger("telephony_bridge.call")
    log.info("call CA1 model refused key %s", SECRET)
    try:
        raise ValueError("token tw-token-abcdef123 rejected")
    except ValueError:
        log.exception("call CA1 REST failed")
    first, second = [orjson.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    assert first["level"] == "info" and first["logger"] == "telephony_bridge.call" and isinstance(first["pid"], int)
    assert first["message"] == "call CA1 model refused key ***"
    assert second["message"] == "call CA1 REST failed" and "ValueError" in second["exception"]
    assert "token *** rejected" in second["exception"]
    assert SECRET not in buffer.getvalue() and "tw-token-abcdef123" not in buffer.getvalue()


def test_human_lines_name_the_worker_when_asked_and_redact_too(captured):
    configure_logging(with_pid=True)
    buffer = use_buffer(captured())
    try:
        raise RuntimeError("auth tw-token-abcdef123")
    except RuntimeError:
        logging.getLogger("telephony_bridge.server").exception("token is tw-token-abcdef123")
    line = buffer.getvalue()
    assert "RuntimeError: auth ***" in line
    assert "tw-token-abcdef123" not in line and "token is ***" in line
    assert f"[{__import__('os').getpid()}]" in line
