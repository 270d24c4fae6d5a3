"""Which model errors end the model connection (realtime/error_policy.py)."""

from __future__ import annotations

import pytest

from telephony_bridge.realtime.error_policy import LIVE_FATAL_ERROR_CODES, is_fatal


@pytest.mark.parametrize(
    ("error", "fatal"),
    [
        ({"type": "invalid_request_error", "code": "invalid_api_key"}, True),
        ({"type": "authentication_error"}, True),  # by its type, whatever the code
        ({"type": "invalid_request_error", "code": "response_cancel_not_active"}, False),
        ({"type": "invalid_request_error", "code": "conversation_already_has_active_response"}, False),
        ({"type": "server_error"}, False),
        ({}, False),
    ],
)
def test_realtime_errors(error: dict[str, str], fatal: bool) -> None:
    assert is_fatal(error) is fatal


def test_live_codes_are_fatal_only_on_a_live_session() -> None:
    error = {"type": "invalid_request_error", "code": "session_not_started"}
    assert not is_fatal(error) and is_fatal(error, LIVE_FATAL_ERROR_CODES)
    assert is_fatal({"code": "insufficient_quota"}, LIVE_FATAL_ERROR_CODES)  # the Realtime ones too
