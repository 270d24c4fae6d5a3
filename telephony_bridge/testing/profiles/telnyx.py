"""Telnyx's side of a call for the phone simulator: the TeXML voice webhook (a form POST, signed
with Ed25519 when given the account's private key seed, base64), TeXML read as Telnyx reads it, and
the media-stream messages (snake_case JSON). Written from Telnyx's documentation, independently of
the bridge's codec."""

from __future__ import annotations

import base64
import os
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import orjson

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.testing.carrier_profile import (
    AnswerDeclined,
    AnswerRequestSpec,
    BridgeClear,
    PhoneEvent,
    StreamTarget,
    json_message,
    media_or_mark,
)

__all__ = ["TelnyxProfile"]


def _dumps(message: dict) -> str:
    return orjson.dumps(message).decode()


class TelnyxProfile:
    """TeXML `<Connect><Stream bidirectionalMode="rtp">`, PCMU 8 kHz in 20 ms frames, marks echoed."""

    name = "telnyx"
    audio_format = ULAW_8K
    echoes_marks = True
    frame_ms = 20
    answer_path = "/telnyx/incoming-call"
    answer_content_types = ("text/xml", "application/xml")
    signature_header = "telnyx-signature-ed25519"
    http_user_agent = "Telnyx-TeXML/1.0"
    ws_user_agent = "Telnyx-MediaStreaming/1.0"

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.signing_key = None
        if secret:
            from nacl.signing import SigningKey

            self.signing_key = SigningKey(base64.b64decode(secret))
        self.account_sid = account_id or str(uuid.uuid4())
        self.stream_id = ""
        self.call_control_id = ""
        self.chunk = 0

    @property
    def signed(self) -> bool:
        return self.signing_key is not None

    def new_call_id(self) -> str:
        """The seam's form of a call_control_id (`v3:…` → `v3_…`): what the bridge's journal names."""
        return "v3_" + base64.urlsafe_b64encode(os.urandom(30)).decode().rstrip("=")

    def new_stream_id(self) -> str:
        return str(uuid.uuid4())

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        if self.signing_key is None:
            return {}
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.signing_key.sign(ts.encode() + b"|" + body).signature
        return {"telnyx-timestamp": ts, "telnyx-signature-ed25519": base64.b64encode(signature).decode()}

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec:
        self.call_control_id = call_id.replace("_", ":", 1)
        form = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_control_id,
            "CallSidLegacy": self.call_control_id,
            "CallSessionId": str(uuid.uuid4()),
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": caller,
            "To": number,
        }
        return AnswerRequestSpec(
            "POST", self.answer_path, form, headers=self.sign(urllib.parse.urlencode(form).encode())
        )

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        if status != 200:
            raise ValueError(f"HTTP {status}")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise ValueError(f"unusable TeXML: {e}") from None
        if root.tag != "Response":
            raise ValueError(f"unusable TeXML: root element is <{root.tag}>, not <Response>")
        for verb in root:
            if verb.tag == "Connect":
                stream = verb.find("Stream")
                if stream is None or not stream.get("url"):
                    raise ValueError("unusable TeXML: <Connect> without <Stream url=…>")
                if stream.get("bidirectionalMode") != "rtp":
                    raise ValueError('unusable TeXML: <Stream> is not bidirectionalMode="rtp": Telnyx would expect mp3')
                params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
                return StreamTarget(str(stream.get("url")), params)
            if verb.tag in ("Reject", "Hangup", "Dial", "Redirect"):
                raise AnswerDeclined(f"<{verb.tag}>")
        raise AnswerDeclined("no <Connect><Stream>")

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        self.stream_id = stream_id
        self.call_control_id = call_id.replace("_", ":", 1)
        return [
            _dumps({"event": "connected", "version": "1.0.0"}),
            _dumps(
                {
                    "event": "start",
                    "sequence_number": "1",
                    "stream_id": stream_id,
                    "start": {
                        "user_id": self.account_sid,
                        "call_control_id": self.call_control_id,
                        "call_session_id": str(uuid.uuid4()),
                        "from": "",
                        "to": "",
                        "custom_parameters": dict(target.parameters),
                        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                    },
                }
            ),
        ]

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> str:
        self.chunk += 1
        return _dumps(
            {
                "event": "media",
                "sequence_number": str(sequence),
                "stream_id": self.stream_id,
                "media": {
                    "track": "inbound",
                    "chunk": str(self.chunk),
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(payload).decode("ascii"),
                },
            }
        )

    def dtmf_message(self, digit: str, sequence: int) -> str:
        return _dumps(
            {"event": "dtmf", "sequence_number": str(sequence), "stream_id": self.stream_id, "dtmf": {"digit": digit}}
        )

    def stop_message(self, sequence: int) -> str:
        return _dumps(
            {
                "event": "stop",
                "sequence_number": str(sequence),
                "stream_id": self.stream_id,
                "stop": {"user_id": self.account_sid, "call_control_id": self.call_control_id},
            }
        )

    def mark_echo(self, name: str, sequence: int) -> str:
        return _dumps(
            {"event": "mark", "sequence_number": str(sequence), "stream_id": self.stream_id, "mark": {"name": name}}
        )

    def parse(self, message: str | bytes) -> PhoneEvent:
        msg = json_message("Telnyx", message)
        assert isinstance(message, str)
        event = msg.get("event")
        audio_or_mark = media_or_mark(event, msg, message)
        if audio_or_mark is not None:
            return audio_or_mark
        if event == "clear":
            return BridgeClear()
        raise ValueError(f"unknown event {event!r}: {message[:80]!r}")
