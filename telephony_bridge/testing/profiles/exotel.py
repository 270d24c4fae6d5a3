"""Exotel's side of the wire, for the phone simulator (testing/carrier_profile.py).

The Voicebot applet's dynamic URL: `GET /exotel/incoming-call?CallSid=…&CallFrom=…&CallTo=…`,
answered `{"url": "wss://…?bridge_token=…"}`; the URL's query parameters come back in
`start.custom_parameters`. `connected`, `start`, base64 slin16 LE 8 kHz media, `dtmf {digit,
duration}`, `mark` echoed once played, `stop`; back: `media` (multiples of 320 bytes), `mark`, `clear`.
"""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.testing.carrier_profile import (
    AnswerDeclined,
    AnswerRequestSpec,
    BridgeAudio,
    BridgeClear,
    BridgeMark,
    PhoneEvent,
    StreamTarget,
)

__all__ = ["ExotelProfile"]


class ExotelProfile:
    name = "exotel"
    audio_format = L16_8K
    echoes_marks = True
    frame_ms = 20

    answer_content_types = ("application/json",)
    signature_header = "Authorization (Basic)"

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        self._stream_sid = ""
        self.stream_auth = secret  # EXOTEL_STREAM_AUTH (user:password): then Basic auth, as Exotel sends it
        self.base_url = base_url
        self.account_sid = account_id or "exotel-account"

    @property
    def signed(self) -> bool:
        return self.stream_auth is not None

    def new_call_id(self) -> str:
        return os.urandom(16).hex()  # Exotel CallSids: 32 hex digits

    def stream_headers(self, target: StreamTarget) -> dict[str, str]:
        """Exotel sends the stream URL's credentials as Basic auth on the upgrade."""
        return self._authorization()

    def _authorization(self) -> dict[str, str]:
        if not self.stream_auth:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(self.stream_auth.encode()).decode()}

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec:
        return AnswerRequestSpec(
            "GET",
            "/exotel/incoming-call",
            form={"CallSid": call_id, "CallFrom": caller, "CallTo": number, "Direction": "incoming"},
            headers=self._authorization(),
        )

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        if status == 404:
            raise AnswerDeclined("no stream URL for this number: the applet fails and the flow goes on")
        if status != 200 or not content_type.startswith("application/json"):
            raise ValueError(f"no stream URL: {status} {content_type}")
        url = json.loads(body).get("url")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError("the answer names no WebSocket URL")
        parts = urlsplit(url)
        # Exotel connects to the URL and hands its query back as custom parameters.
        return StreamTarget(urlunsplit(parts), dict(parse_qsl(parts.query)))

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        self._stream_sid = stream_id
        return [
            json.dumps({"event": "connected"}),
            json.dumps(
                {
                    "event": "start",
                    "sequence_number": 1,
                    "stream_sid": stream_id,
                    "start": {
                        "stream_sid": stream_id,
                        "call_sid": call_id,
                        "account_sid": self.account_sid,
                        "from": "",
                        "to": "",
                        "custom_parameters": dict(target.parameters),
                        "media_format": {"encoding": "base64", "sample_rate": "8000", "bit_rate": "128kbps"},
                    },
                }
            ),
        ]

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> str | bytes:
        return json.dumps(
            {
                "event": "media",
                "sequence_number": sequence,
                "stream_sid": self._stream_sid,
                "media": {
                    "chunk": sequence,
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(payload).decode(),
                },
            }
        )

    def dtmf_message(self, digit: str, sequence: int) -> str | bytes | None:
        return json.dumps(
            {
                "event": "dtmf",
                "sequence_number": sequence,
                "stream_sid": self._stream_sid,
                "dtmf": {"duration": "120", "digit": digit},
            }
        )

    def stop_message(self, sequence: int) -> str | bytes | None:
        return json.dumps(
            {
                "event": "stop",
                "sequence_number": sequence,
                "stream_sid": self._stream_sid,
                "stop": {"call_sid": "", "account_sid": "exotel-account", "reason": "callended"},
            }
        )

    def mark_echo(self, name: str, sequence: int) -> str | bytes:
        return json.dumps(
            {"event": "mark", "sequence_number": sequence, "stream_sid": self._stream_sid, "mark": {"name": name}}
        )

    def parse(self, message: str | bytes) -> PhoneEvent:
        if isinstance(message, bytes):
            raise ValueError("Exotel takes JSON text frames only")
        event = json.loads(message)
        kind = event.get("event") if isinstance(event, dict) else None
        if event.get("stream_sid") != self._stream_sid:
            raise ValueError("a message for another stream")
        if kind == "media":
            audio = base64.b64decode(event["media"]["payload"], validate=True)
            if not audio or len(audio) % 320:
                raise ValueError(f"Exotel media must be a multiple of 320 bytes, got {len(audio)}")
            return BridgeAudio(audio)
        if kind == "mark" and isinstance(event.get("mark", {}).get("name"), str):
            return BridgeMark(event["mark"]["name"])
        if kind == "clear":
            return BridgeClear()
        raise ValueError(f"not an Exotel stream event: {message[:60]!r}")
