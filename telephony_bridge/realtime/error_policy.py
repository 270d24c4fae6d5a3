"""Which model errors end the model connection, and which the call lives through: pure data.

After a fatal error the session is unusable (bad key, no quota, the session gone), so the
connection closes and the client reports it; everything else (nothing to cancel, a truncate
rejected, a response already active, …) is handed to the scenario and the call goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

FATAL_ERROR_CODES: Final = frozenset(
    {
        "invalid_api_key",
        "insufficient_quota",
        "session_expired",
        "invalid_session",
        "session_not_found",
        "account_deactivated",
        "billing_hard_limit_reached",
    }
)
# GPT-Live's own, on top of the Realtime ones.
LIVE_FATAL_ERROR_CODES: Final = FATAL_ERROR_CODES | {
    "model_not_found",
    "credit_balance_exhausted",
    "session_not_started",
}
FATAL_ERROR_TYPES: Final = frozenset({"authentication_error", "insufficient_quota", "permission_error"})


def is_fatal(error: Mapping[str, Any], fatal_codes: frozenset[str] = FATAL_ERROR_CODES) -> bool:
    """`error` is an `error` event's `error` object."""
    return error.get("code") in fatal_codes or error.get("type") in FATAL_ERROR_TYPES
