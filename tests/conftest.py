"""Fixtures shared by every test directory."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli_logging_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """`telephony_bridge.cli.main` without its process-wide logging set-up. A CLI run configures the
    root logger (INFO, a stderr handler) for the rest of the process; in a test session that would
    turn on INFO logging for every later test, whose records pytest keeps until the test ends (the
    leak test's 1000 calls then "grew" by 24 MB of log records)."""
    monkeypatch.setattr("telephony_bridge.cli.configure_logging", lambda *args, **kwargs: None)
