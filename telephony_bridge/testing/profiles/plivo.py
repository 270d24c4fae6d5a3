"""Plivo's side of the wire, for the phone simulator (testing/carrier_profile.py).

`POST /plivo/incoming-call` with `CallUUID, From, To`; the `<Stream>` of the answer XML gives the
stream URL; no `connected`, a `start` with `callId/streamId/mediaFormat`, numeric sequence numbers,
base64 μ-law media; back: `playAudio`, `checkpoint` (echoed `playedStream` once played),
`clearAudio` (checkpoints before it are never echoed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
import xml.etree.ElementTree as ET

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.testing.carrier_profile import (
    AnswerDeclined,
    AnswerRequestSpec,
    BridgeAudio,
    BridgeClear,
    BridgeMark,
    PhoneEvent,
    StreamTarget,
)

__all__ = ["PlivoProfile"]


class PlivoProfile:
    name = "plivo"
    audio_format = ULAW_8K
    echoes_marks = True
    frame_ms = 20

    answer_content_types = ("application/xml", "text/xml")
    signature_header = "X-Plivo-Signature-V3"

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        self._stream_id = ""
        self.auth_token = secret  # PLIVO_AUTH_TOKEN: then X-Plivo-Signature-V3 over base_url + path
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_id or "MA" + os.urandom(9).hex().upper()

    @property
    def signed(self) -> bool:
        return self.auth_token is not None

    def new_call_id(self) -> str:
        return str(uuid.uuid4())

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec:
        form = {
            "CallUUID": call_id,
            "From": caller.lstrip("+"),
            "To": number.lstrip("+"),
            "Direction": "inbound",
            "CallStatus": "in-progress",
        }
        path = "/plivo/incoming-call"
        if self.auth_token is None:
            return AnswerRequestSpec("POST", path, form=form)
        # Plivo's V3 over a POST: base64(HMAC-SHA256(token, URL + "?" + each field's name and value in
        # name order + "." + nonce)).
        nonce = os.urandom(10).hex()
        signed = f"{self.base_url}{path}?" + "".join(f"{k}{form[k]}" for k in sorted(form)) + f".{nonce}"
        signature = base64.b64encode(hmac.new(self.auth_token.encode(), signed.encode(), hashlib.sha256).digest())
        return AnswerRequestSpec(
            "POST",
            path,
            form=form,
            headers={"X-Plivo-Signature-V3": signature.decode(), "X-Plivo-Signature-V3-Nonce": nonce},
        )

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        if status != 200 or "xml" not in content_type:
            raise ValueError(f"not Plivo XML: {status} {content_type}")
        stream = ET.fromstring(body).find("Stream")
        if stream is None or not stream.text:
            if ET.fromstring(body).find("Hangup") is not None:
                raise AnswerDeclined("Plivo XML <Hangup>: the call ends")
            raise ValueError("the XML has no <Stream>")
        if stream.get("bidirectional") != "true" or stream.get("contentType") != "audio/x-mulaw;rate=8000":
            raise ValueError("not a bidirectional μ-law stream")
        return StreamTarget(stream.text.strip())

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        self._stream_id = stream_id
        return [
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": 1,
                    "start": {
                        "callId": call_id,
                        "streamId": stream_id,
                        "accountId": self.account_sid,
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                    },
                    "extra_headers": "",
                }
            )
        ]

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> str | bytes:
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": sequence,
                "streamId": self._stream_id,
                "media": {
                    "track": "inbound",
                    "timestamp": str(timestamp_ms),
                    "chunk": sequence,
                    "payload": base64.b64encode(payload).decode(),
                },
            }
        )

    def dtmf_message(self, digit: str, sequence: int) -> str | bytes | None:
        return json.dumps(
            {
                "event": "dtmf",
                "sequenceNumber": sequence,
                "streamId": self._stream_id,
                "dtmf": {"track": "inbound", "digit": digit},
            }
        )

    def stop_message(self, sequence: int) -> str | bytes | None:
        return json.dumps({"event": "stop", "sequenceNumber": sequence, "streamId": self._stream_id})

    def mark_echo(self, name: str, sequence: int) -> str | bytes:
        return json.dumps(
            {"event": "playedStream", "sequenceNumber": sequence, "streamId": self._stream_id, "name": name}
        )

    def parse(self, message: str | bytes) -> PhoneEvent:
        if isinstance(message, bytes):
            raise ValueError("Plivo takes JSON text frames only")
        event = json.loads(message)
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "playAudio":
            media = event["media"]
            if media.get("contentType") != "audio/x-mulaw" or media.get("sampleRate") != 8000:
                raise ValueError(f"playAudio in another format: {media.get('contentType')}")
            return BridgeAudio(base64.b64decode(media["payload"], validate=True))
        if kind == "checkpoint" and event.get("streamId") == self._stream_id and isinstance(event.get("name"), str):
            return BridgeMark(event["name"])
        if kind == "clearAudio" and event.get("streamId") == self._stream_id:
            return BridgeClear()
        raise ValueError(f"not a Plivo stream event: {message[:60]!r}")
