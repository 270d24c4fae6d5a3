"""SignalWire's side of a call for the phone simulator: Twilio's (LaML is TwiML-compatible and the
stream speaks Twilio's protocol) at SignalWire's paths, with UUIDs for ids and the signature in
X-SignalWire-Signature (the same HMAC-SHA1 scheme, keyed with the project's signing key)."""

from __future__ import annotations

import uuid

from telephony_bridge.testing.carrier_profile import StreamTarget
from telephony_bridge.testing.profiles.twilio import TwilioProfile

__all__ = ["SignalWireProfile"]


class SignalWireProfile(TwilioProfile):
    name = "signalwire"
    answer_path = "/signalwire/incoming-call"
    signature_header = "X-SignalWire-Signature"
    http_user_agent = "SignalWire-LaML/1.0"
    ws_user_agent = "SignalWire-Stream/1.0"

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        super().__init__(base_url=base_url, secret=secret, account_id=account_id or str(uuid.uuid4()))

    def new_call_id(self) -> str:
        return str(uuid.uuid4())

    def new_stream_id(self) -> str:
        return str(uuid.uuid4())

    def stream_headers(self, target: StreamTarget) -> dict[str, str]:
        return {}  # SignalWire documents no signature on the stream's upgrade
