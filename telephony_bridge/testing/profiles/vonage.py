"""Vonage's side of the wire, for the phone simulator (testing/carrier_profile.py).

The answer request is Vonage's `GET /vonage/incoming-call?uuid=…&to=…` (numbers without the plus);
the NCCO's websocket endpoint gives the stream URL and the headers the first message carries back;
audio is binary L16 16 kHz both ways, in whole 20 ms frames; `notify` would be echoed as
`websocket:notify`, but the bridge sends none (it paces Vonage by clock).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import jwt
import orjson

from telephony_bridge.audio.formats import L16_16K
from telephony_bridge.testing.carrier_profile import (
    AnswerDeclined,
    AnswerRequestSpec,
    BridgeAudio,
    BridgeClear,
    BridgeMark,
    PhoneEvent,
    StreamTarget,
)

__all__ = ["VonageProfile"]


class VonageProfile:
    name = "vonage"
    audio_format = L16_16K
    # Vonage does echo `notify` (mark_echo and parse speak it), but the bridge paces Vonage by clock
    # and relies on no echo: the phone plays the stream as the bridge drives it.
    echoes_marks = False
    frame_ms = 20

    answer_content_types = ("application/json",)
    signature_header = "Authorization (Vonage signed JWT)"

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        self.base_url = base_url
        self.signature_secret = secret  # VONAGE_SIGNATURE_SECRET: then a signed POST, as Vonage sends it
        self.account_sid = account_id or "vonage-application"

    @property
    def signed(self) -> bool:
        return self.signature_secret is not None

    def new_call_id(self) -> str:
        return str(uuid.uuid4())

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec:
        fields = {
            "uuid": call_id,
            "conversation_uuid": "CON-" + call_id,
            "from": caller.lstrip("+"),
            "to": number.lstrip("+"),
        }
        if self.signature_secret is None:
            return AnswerRequestSpec("GET", "/vonage/incoming-call", form=fields)
        body = orjson.dumps(fields)
        claims = {
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            "iss": "Vonage",
            "payload_hash": hashlib.sha256(body).hexdigest(),
        }
        signed = jwt.encode(claims, self.signature_secret, algorithm="HS256")
        # payload_hash covers the body's bytes: the simulator sends `orjson.dumps(spec.json)`, as here.
        return AnswerRequestSpec(
            "POST", "/vonage/incoming-call", json=fields, headers={"Authorization": f"Bearer {signed}"}
        )

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        if status != 200 or not content_type.startswith("application/json"):
            raise ValueError(f"not an NCCO: {status} {content_type}")
        ncco = json.loads(body)
        for action in ncco if isinstance(ncco, list) else ():
            if isinstance(action, dict) and action.get("action") == "connect":
                for endpoint in action.get("endpoint", ()):
                    if endpoint.get("type") == "websocket":
                        if endpoint.get("content-type") != "audio/l16;rate=16000":
                            raise ValueError(f"unexpected content-type {endpoint.get('content-type')!r}")
                        return StreamTarget(endpoint["uri"], dict(endpoint.get("headers", {})))
        raise AnswerDeclined("the NCCO connects no websocket: the call ends")

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        return [
            json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=16000", **target.parameters})
        ]

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> str | bytes:
        return payload

    def dtmf_message(self, digit: str, sequence: int) -> str | bytes | None:
        return json.dumps({"event": "websocket:dtmf", "digit": digit, "duration": 260})

    def stop_message(self, sequence: int) -> str | bytes | None:
        return None  # Vonage closes the socket

    def mark_echo(self, name: str, sequence: int) -> str | bytes:
        return json.dumps({"event": "websocket:notify", "payload": {"mark": name}})

    def parse(self, message: str | bytes) -> PhoneEvent:
        if isinstance(message, bytes):
            if len(message) % 640:
                raise ValueError(f"Vonage plays whole 20 ms frames; got {len(message)} bytes")
            return BridgeAudio(message)
        command = json.loads(message)
        action = command.get("action") if isinstance(command, dict) else None
        if action == "clear":
            return BridgeClear()
        if action == "notify":
            payload = command.get("payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("mark"), str):
                raise ValueError("notify without the bridge's mark")
            return BridgeMark(payload["mark"])
        raise ValueError(f"not a Vonage command: {message[:60]!r}")
