"""A raw Twilio-like media-stream peer for server tests: sends exactly the JSON we tell it to,
including broken frames, so tests can check the server's codec handling from the outside.

Like Twilio, it asks the bridge's webhook for the call first (`start` does so unless given a
token), since the bridge only takes a stream bound to a call its webhook answered."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from telephony_bridge.server.stream_tokens import TOKEN_PARAMETER
from telephony_bridge.testing import twilio_messages as messages
from telephony_bridge.testing.twilio_messages import new_sid as sid


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
        path = parts.path.removesuffix("/media-stream") + messages.WEBHOOK_PATH
        form = messages.webhook_form(account_sid=sid("AC"), call_sid=self.call_sid, from_=caller, to=to)
        headers = {}
        if auth_token:
            headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(base + path, form)
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.post(base + path, data=form, headers=headers)
        response.raise_for_status()
        answer = messages.read_twiml(response.text)
        assert answer.stream_url is not None, f"the webhook answered no stream: {response.text}"
        return answer.parameters

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else orjson.dumps(message).decode())

    async def start(self, parameters: dict[str, str], auth_token: str | None = None) -> None:
        """Answer (unless `parameters` bring a token) and send connected + start; `parameters`
        beyond the answer's go along as custom parameters."""
        if TOKEN_PARAMETER not in parameters:
            answered = await self.answer(parameters.get("To", "+15550100"), parameters.get("From", "+15550199"), auth_token)
            parameters = {**answered, **parameters}
        await self.send(messages.connected())
        await self.send(messages.start(seq=next(self._seq), stream_sid=self.stream_sid, account_sid=sid("AC"),
                                       call_sid=self.call_sid, custom_parameters={"CallSid": self.call_sid, **parameters}))

    async def media(self, payload: bytes = b"\xff" * 160) -> None:
        await self.send(messages.media(seq=next(self._seq), stream_sid=self.stream_sid, chunk=next(self._chunk),
                                       timestamp_ms=self.timestamp_ms, payload=payload))
        self.timestamp_ms += len(payload) // 8

    async def dtmf(self, digit: str) -> None:
        await self.send(messages.dtmf(seq=next(self._seq), stream_sid=self.stream_sid, digit=digit))

    async def mark(self, name: str) -> None:
        await self.send(messages.mark(seq=next(self._seq), stream_sid=self.stream_sid, name=name))

    async def stop(self) -> None:
        await self.send(messages.stop(seq=next(self._seq), stream_sid=self.stream_sid, account_sid=sid("AC"),
                                      call_sid=self.call_sid))

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
