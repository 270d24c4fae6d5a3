"""A raw Twilio-like media-stream peer for server tests: sends exactly the JSON we tell it to,
including broken frames, so tests can check the server's codec handling from the outside.

Like Twilio, it asks the bridge's webhook for the call first (`start` does so unless given a
token), since the bridge only takes a stream bound to a call its webhook answered."""

from __future__ import annotations

import base64
import itertools
import os
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from telephony_bridge.server.stream_tokens import TOKEN_PARAMETER


def sid(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


class TwilioPeer:
    def __init__(self, ws: ClientConnection, call_sid: str, stream_sid: str, url: str = "") -> None:
        self.ws = ws
        self.url = url
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._seq = itertools.count(1)
        self._chunk = itertools.count(1)
        self.timestamp_ms = 0

    @classmethod
    async def open(cls, url: str, headers: dict[str, str] | None = None) -> TwilioPeer:
        ws = await connect(url, additional_headers=headers or {}, open_timeout=5)
        return cls(ws, sid("CA"), sid("MZ"), url)

    async def answer(self, to: str = "+15550100", caller: str = "+15550199", auth_token: str | None = None) -> dict[str, str]:
        """POST the bridge's webhook for this peer's call, as Twilio does before it opens the
        stream, and return the stream parameters the TwiML names (the token among them)."""
        parts = urlsplit(self.url)
        base = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        path = parts.path.removesuffix("/media-stream") + "/incoming-call"
        form = {"CallSid": self.call_sid, "AccountSid": sid("AC"), "From": caller, "To": to,
                "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        headers = {}
        if auth_token:
            headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(base + path, form)
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.post(base + path, data=form, headers=headers)
        response.raise_for_status()
        stream = ET.fromstring(response.text).find("./Connect/Stream")
        assert stream is not None, f"the webhook answered no stream: {response.text}"
        return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else orjson.dumps(message).decode())

    async def start(self, parameters: dict[str, str], auth_token: str | None = None) -> None:
        """Answer (unless `parameters` bring a token) and send connected + start; `parameters`
        beyond the answer's go along as custom parameters."""
        if TOKEN_PARAMETER not in parameters:
            answered = await self.answer(parameters.get("To", "+15550100"), parameters.get("From", "+15550199"), auth_token)
            parameters = {**answered, **parameters}
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send({
            "event": "start", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
            "start": {"accountSid": sid("AC"), "streamSid": self.stream_sid, "callSid": self.call_sid,
                      "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                      "customParameters": {"CallSid": self.call_sid, **parameters}},
        })

    async def media(self, payload: bytes = b"\xff" * 160) -> None:
        await self.send({
            "event": "media", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
            "media": {"track": "inbound", "chunk": str(next(self._chunk)), "timestamp": str(self.timestamp_ms),
                      "payload": base64.b64encode(payload).decode()},
        })
        self.timestamp_ms += len(payload) // 8

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
                         "dtmf": {"track": "inbound_track", "digit": digit}})

    async def mark(self, name: str) -> None:
        await self.send({"event": "mark", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid, "mark": {"name": name}})

    async def stop(self) -> None:
        await self.send({"event": "stop", "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid,
                         "stop": {"accountSid": sid("AC"), "callSid": self.call_sid}})

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int | None, str | None]:
        import asyncio

        async def drain() -> None:
            async for _ in self.ws:
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except Exception:
            pass
        return self.ws.close_code, self.ws.close_reason
