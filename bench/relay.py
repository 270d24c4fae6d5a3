"""The floor: a minimal pass-through relay between Twilio media streams and a Realtime endpoint.

    python -m bench.relay --port P --engine-url ws://127.0.0.1:E/v1/realtime [--server starlette|websockets]

What any phone-to-model bridge must do at the least, and nothing more: parse each carrier message
with the standard library's json, forward the caller's μ-law payload as-is (still base64, never
decoded) in an `input_audio_buffer.append` (the engine is told `codec=g711_ulaw`), and send each
model audio delta back as a Twilio `media` message plus a `mark` — the same messages on the wire as
the bridge, so the two carry identical traffic. No codec, no resampling, no playback ledger, no
scenario, no orjson.

`--json orjson` swaps orjson in for the standard library's json (same messages, no spaces): a leaner
floor, which is what a relay written elsewhere may well be. Std json is ~40 % of this relay's own
work per message (bench/README.md, "The floor"); the default stays std json, so recorded sweeps
remain comparable.

`--server starlette` (default) runs on the bridge's own stack (uvicorn + Starlette + uvloop, same
WebSocket implementation), so bridge ÷ relay isolates what the bridge does on top of the plumbing.
`--server websockets` serves the media WebSocket with the `websockets` library alone (no ASGI): the
cost of the framework shows as the difference. It has no webhook (the `websockets` server answers
GET only), so the load generator then connects to `/media-stream` directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json as std_json
import sys
from html import escape
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

if __package__ in (None, ""):  # `python bench/relay.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import install_fast_loop  # noqa: E402


class CarrierClosed(Exception):
    pass


class OrjsonAsJson:
    """orjson behind the two calls of std json this relay makes (`--json orjson`)."""

    @staticmethod
    def loads(text: str | bytes) -> Any:
        return orjson.loads(text)

    @staticmethod
    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()


json: Any = std_json  # the relay's JSON: std json (the floor of record) or OrjsonAsJson


def use_json(name: str) -> None:
    """Pick the relay's JSON library: "std" (default) or "orjson"."""
    global json
    json = OrjsonAsJson if name == "orjson" else std_json


async def relay_call(receive_text: Any, send_text: Any, engine_url: str, connect_engine: Any = connect) -> None:
    """One call: carrier messages in through `receive_text()`, out through `send_text(str)`.
    `connect_engine`: websockets' `connect` (bench/frame_cost.py passes an in-memory socket's)."""
    engine: ClientConnection | None = None
    pump: asyncio.Task | None = None
    try:
        while True:
            try:
                text = await receive_text()
            except CarrierClosed:
                break
            msg = json.loads(text)
            event = msg.get("event")
            if event == "media":
                if engine is not None:
                    await engine.send(json.dumps({"type": "input_audio_buffer.append", "audio": msg["media"]["payload"]}))
            elif event == "start":
                start = msg["start"]
                stream_sid = msg["streamSid"]
                sep = "&" if "?" in engine_url else "?"
                engine = await connect_engine(f"{engine_url}{sep}call={start['callSid']}&codec=g711_ulaw&model=relay",
                                       compression=None, max_size=1 << 24, ping_interval=None)
                await engine.send(json.dumps({"type": "session.update", "session": {
                    "type": "realtime",
                    "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}},
                }}))
                pump = asyncio.create_task(_pump(engine, send_text, stream_sid))
            elif event == "stop":
                break
            # connected, mark, dtmf: nothing to do for a relay
    finally:
        if engine is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(engine.close(), 2)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


async def _pump(engine: ClientConnection, send_text: Any, stream_sid: str) -> None:
    marks = 0
    try:
        async for raw in engine:
            event = json.loads(raw)
            if event.get("type") == "response.output_audio.delta":
                await send_text(json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": event["delta"]}}))
                marks += 1
                await send_text(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": f"m{marks}"}}))
    except (ConnectionClosed, CarrierClosed, RuntimeError, OSError):
        pass


def create_app(engine_url: str, base_url: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    parts = urlsplit(base_url)
    stream = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/media-stream"
    active = 0

    async def incoming_call(request: Request) -> Response:
        form = await request.form()
        params = {"scenario": "relay", "From": str(form.get("From", "")), "To": str(form.get("To", "")), "CallSid": str(form.get("CallSid", ""))}
        if not params["CallSid"]:
            return PlainTextResponse("CallSid needed", status_code=400)
        parameters = "".join(f'<Parameter name="{escape(k)}" value="{escape(v)}"/>' for k, v in params.items())
        twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{stream}">{parameters}</Stream></Connect></Response>'
        return Response(twiml, media_type="text/xml")

    async def media_stream(websocket: WebSocket) -> None:
        nonlocal active
        await websocket.accept()
        active += 1

        async def receive_text() -> str:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise CarrierClosed
                text = message.get("text")
                if text is not None:
                    return text

        async def send_text(text: str) -> None:
            try:
                await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                raise CarrierClosed from None

        try:
            await relay_call(receive_text, send_text, engine_url)
        except WebSocketDisconnect:
            pass
        finally:
            active -= 1
            with contextlib.suppress(Exception):
                await websocket.close(1000)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "active_calls": active})

    return Starlette(routes=[
        Route("/incoming-call", incoming_call, methods=["POST"]),
        WebSocketRoute("/media-stream", media_stream),
        Route("/healthz", healthz, methods=["GET"]),
    ])


async def _serve_websockets(host: str, port: int, engine_url: str) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request

    active = 0

    def process_request(connection: ServerConnection, request: Request) -> Any:
        path = urlsplit(request.path).path
        if path == "/media-stream":
            return None
        if path == "/healthz":
            response = connection.respond(HTTPStatus.OK, json.dumps({"status": "ok", "active_calls": active}))
            return response
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def handler(ws: ServerConnection) -> None:
        nonlocal active
        active += 1

        async def receive_text() -> str:
            try:
                return await ws.recv()
            except ConnectionClosed:
                raise CarrierClosed from None

        async def send_text(text: str) -> None:
            try:
                await ws.send(text)
            except ConnectionClosed:
                raise CarrierClosed from None

        try:
            await relay_call(receive_text, send_text, engine_url)
        finally:
            active -= 1

    async with serve(handler, host, port, process_request=process_request, compression=None,
                     max_size=1 << 20, ping_interval=None):
        print(f"READY port={port}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.relay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine-url", required=True, help="ws://HOST:PORT/v1/realtime of the engine")
    parser.add_argument("--server", choices=("starlette", "websockets"), default="starlette")
    parser.add_argument("--json", choices=("std", "orjson"), default="std", help="the relay's JSON library (default std)")
    args = parser.parse_args(argv)
    use_json(args.json)
    loop = install_fast_loop()
    if args.server == "websockets":
        try:
            asyncio.run(_serve_websockets(args.host, args.port, args.engine_url))
        except KeyboardInterrupt:
            pass
        return 0
    import uvicorn

    app = create_app(args.engine_url, f"http://{args.host}:{args.port}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", loop=loop, ws_max_size=1 << 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
