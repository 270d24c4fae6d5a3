"""The local engine's WebSocket server: a thin asyncio layer over `EngineSession`.

    async with LocalEngine(script=Script.from_turns(["Hi there!"])) as engine:
        client = AsyncOpenAI(api_key="test", websocket_base_url=f"ws://127.0.0.1:{engine.port}/v1")

Serves `/v1/realtime` (any `?model=`), `/v1/realtime/translations` (the translation mode,
translation.py) and GPT-Live's `/v1/live/sessions` (live_session.py); any other path is refused
with HTTP 404 at the handshake.
The dialect follows the client: beta when the `OpenAI-Beta: realtime=v1` header is present, GA
otherwise. Any bearer key is accepted unless `require_key` is set, in which case a missing or other
key is refused with HTTP 401 (to exercise a client's auth-failure path).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .config import Dialect
from .live_session import LiveEngineSession
from .script import Script, ScriptError
from .session import MAX_MESSAGE_BYTES, EngineSession, SpeechRequest
from .translation import TRANSLATIONS_PATH, TranslationSession
from .tts import synthesize as espeak_synthesize

if TYPE_CHECKING:
    from .webrtc_endpoint import WebRTCEndpoint

__all__ = ["REALTIME_PATH", "REQUIRE_KEY_ENV", "LocalEngine", "add_arguments", "main", "run"]

log = logging.getLogger(__name__)

REALTIME_PATH = "/v1/realtime"
LIVE_PATH = "/v1/live/sessions"
REQUIRE_KEY_ENV = "TELEPHONY_BRIDGE_ENGINE_REQUIRE_KEY"

Synthesizer = Callable[[str, int, str, float], bytes]


def json_response(connection: ServerConnection, status: HTTPStatus, body: bytes) -> Response:
    """An HTTP response with a JSON body, from websockets' process_request (which only builds
    text/plain ones)."""
    response = connection.respond(status, "")
    response.body = body
    del response.headers["Content-Type"]
    del response.headers["Content-Length"]
    response.headers["Content-Type"] = "application/json"
    response.headers["Content-Length"] = str(len(body))
    return response


def _json_error(connection: ServerConnection, status: HTTPStatus, message: str, code: str) -> Response:
    """An error shaped like the OpenAI API's, so clients report it as they would a real one."""
    error = {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}
    return json_response(connection, status, orjson.dumps(error))


class LocalEngine:
    """A Realtime-API-compatible WebSocket server whose "model" is a `Script`.

    `realtime_factor` paces the audio (4.0: a 5 s line is streamed in 1.25 s; `math.inf`: at once).
    `synthesize(text, sample_rate, voice, speed) -> PCM16` replaces espeak (runs in a thread).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Script | None = None,
        *,
        require_key: str | None = None,
        realtime_factor: float = 4.0,
        chunk_ms: int = 100,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        synthesize: Synthesizer | None = None,
        webrtc: bool = False,
        webrtc_config: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._script = script if script is not None else Script.default()
        self.require_key = require_key
        self.realtime_factor = realtime_factor
        self.chunk_ms = chunk_ms
        self.max_message_bytes = max_message_bytes
        self._synthesize = synthesize or espeak_synthesize
        self._server: Server | None = None
        self._port: int | None = None
        self.connections = 0  # open right now
        self.sessions_started = 0
        self.live_sessions: list[LiveEngineSession] = []
        # WebRTC (webrtc_endpoint.py): SDP offers over HTTP on a port of their own. Candidates are
        # gathered on the engine's own host address unless `webrtc_config` says otherwise.
        self._webrtc: WebRTCEndpoint | None = None
        if webrtc:
            from .webrtc_endpoint import WebRTCEndpoint

            config = webrtc_config
            if config is None:
                config = {} if host in ("0.0.0.0", "::", "") else {"WEBRTC_HOST_ADDRESSES": host}
            self._webrtc = WebRTCEndpoint(self.serve_connection, lambda: self.require_key, config, host)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> LocalEngine:
        if self._server is not None:
            return self
        self._server = await serve(
            self.serve_connection,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            max_size=max(self.max_message_bytes * 8, 1 << 20),  # beyond the soft limit's error event
            compression=None,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        if self._webrtc is not None:
            await self._webrtc.start()
        # DEBUG: embedded in the bridge, an INFO line with this URL is taken for the bridge's address.
        log.debug("local engine listening on %s", self.url)
        return self

    async def stop(self) -> None:
        if self._webrtc is not None:
            await self._webrtc.stop()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> LocalEngine:
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalEngine is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{REALTIME_PATH}"

    @property
    def live_url(self) -> str:
        """The GPT-Live endpoint (`LIVE_URL`)."""
        return f"ws://{self.host}:{self.port}{LIVE_PATH}"

    @property
    def base_url(self) -> str:
        """What `AsyncOpenAI(websocket_base_url=...)` wants (ws://HOST:PORT/v1)."""
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def webrtc_base_url(self) -> str:
        """Where WebRTC offers go (http://HOST:PORT/v1: `/realtime/calls`, `/live/sessions`)."""
        if self._webrtc is None or self._webrtc.port is None:
            raise RuntimeError("LocalEngine was not started with webrtc=True")
        return self._webrtc.base_url

    @property
    def webrtc_url(self) -> str:
        """The GA WebRTC calls endpoint (`REALTIME_WEBRTC_URL`)."""
        return self.webrtc_base_url + "/realtime/calls"

    @property
    def webrtc_live_url(self) -> str:
        """The GPT-Live WebRTC sessions endpoint (`LIVE_WEBRTC_URL`)."""
        return self.webrtc_base_url + "/live/sessions"

    @property
    def script(self) -> Script:
        return self._script

    def set_script(self, script: Script) -> None:
        """Use `script` for sessions that connect from now on (open sessions keep theirs)."""
        self._script = script

    # ------------------------------------------------------------------ handshake

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path not in (REALTIME_PATH, TRANSLATIONS_PATH, LIVE_PATH):
            return _json_error(
                connection,
                HTTPStatus.NOT_FOUND,
                f"Unknown path {path!r}; the realtime endpoint is {REALTIME_PATH}.",
                "not_found",
            )
        if self.require_key is not None:
            authorization = request.headers.get("Authorization", "")
            scheme, _, key = authorization.partition(" ")
            if scheme.lower() != "bearer" or key.strip() != self.require_key:
                # Never echo the key that was offered.
                return _json_error(
                    connection, HTTPStatus.UNAUTHORIZED, "Incorrect API key provided.", "invalid_api_key"
                )
        return None

    # ------------------------------------------------------------------ one connection

    async def serve_connection(self, websocket: EngineSocket) -> None:
        """One model connection, for its whole life. A subclass may wrap it (the call-flow kit does,
        to see connections open and close)."""
        request = websocket.request
        assert request is not None
        if urlsplit(request.path).path.rstrip("/") == LIVE_PATH:
            await self._serve_live(websocket)
            return
        dialect: Dialect = "beta" if "realtime=v1" in request.headers.get("OpenAI-Beta", "") else "ga"
        models = parse_qs(urlsplit(request.path).query).get("model")
        model = models[0] if models else None
        session: EngineSession | TranslationSession
        if urlsplit(request.path).path.rstrip("/") == TRANSLATIONS_PATH:
            session = TranslationSession(
                self._script, model=model, chunk_ms=self.chunk_ms, max_message_bytes=self.max_message_bytes
            )
        else:
            session = EngineSession(
                dialect,
                self._script,
                model=model,
                realtime_factor=self.realtime_factor,
                chunk_ms=self.chunk_ms,
                max_message_bytes=self.max_message_bytes,
            )
        self.connections += 1
        self.sessions_started += 1
        log.debug("local engine session (%s, model=%s) from %s", dialect, model, websocket.remote_address)
        try:
            await _ConnectionRunner(websocket, session, self._synthesize).run()
        finally:
            self.connections -= 1

    async def _serve_live(self, websocket: EngineSocket) -> None:
        session = LiveEngineSession(self._script, chunk_ms=self.chunk_ms, max_message_bytes=self.max_message_bytes)
        self.connections += 1
        self.sessions_started += 1
        self.live_sessions.append(session)
        del self.live_sessions[:-100]  # the newest ones, for tests
        log.debug("local engine Live session from %s", websocket.remote_address)
        try:
            await _ConnectionRunner(websocket, session, self._synthesize).run()
        finally:
            self.connections -= 1


class EngineSocket(Protocol):
    """What serving one connection uses of its WebSocket: a websockets `ServerConnection`, or a
    wrapper of one (the call-flow kit's `RecordingSocket` records the client events)."""

    @property
    def request(self) -> Request | None: ...
    @property
    def remote_address(self) -> Any: ...
    def __aiter__(self) -> AsyncIterator[str | bytes]: ...
    async def send(self, message: str) -> None: ...


class _ConnectionRunner:
    """Pumps one EngineSession: client messages, pacing deadlines and finished speech, in order."""

    def __init__(
        self,
        websocket: EngineSocket,
        session: EngineSession | TranslationSession | LiveEngineSession,
        synthesize: Synthesizer,
    ) -> None:
        self.websocket = websocket
        self.session = session
        self.synthesize = synthesize
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[Any]] = set()

    def now_ms(self) -> float:
        return self.loop.time() * 1000.0

    async def run(self) -> None:
        reader = asyncio.create_task(self._read())
        try:
            await self._send(self.session.start(self.now_ms()))
            while True:
                deadline = self.session.next_deadline_ms()
                timeout = None if deadline is None else max(0.0, (deadline - self.now_ms()) / 1000.0)
                try:
                    kind, payload = await asyncio.wait_for(self.inbox.get(), timeout)
                except TimeoutError:
                    events = self.session.tick(self.now_ms())
                else:
                    if kind == "closed":
                        return
                    if kind == "message":
                        events = self.session.receive_text(payload, self.now_ms())
                    elif kind == "speech":
                        request_id, pcm = payload
                        events = self.session.speech_ready(request_id, pcm, self.now_ms())
                    else:  # speech_failed
                        request_id, message = payload
                        events = self.session.speech_failed(request_id, message, self.now_ms())
                await self._send(events)
                if getattr(self.session, "closed", False):
                    return  # a translation session sent session.closed: the server hangs up
                self._start_speech()
                if getattr(self.session, "finished", False):
                    return  # GPT-Live: session.closed is the last event; the server closes
        except ConnectionClosed:
            return
        finally:
            reader.cancel()
            for task in self.tasks:
                task.cancel()

    async def _read(self) -> None:
        try:
            async for message in self.websocket:
                await self.inbox.put(("message", message))
        except ConnectionClosed:
            pass
        finally:
            await self.inbox.put(("closed", None))

    async def _send(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.websocket.send(orjson.dumps(event).decode())

    def _start_speech(self) -> None:
        for request in self.session.take_speech_requests():
            task = asyncio.create_task(self._speak(request))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _speak(self, request: SpeechRequest) -> None:
        try:
            pcm = await asyncio.to_thread(
                self.synthesize, request.text, request.sample_rate, request.voice, request.speed
            )
        except Exception as exc:  # a bad voice name in a script must not kill the connection
            await self.inbox.put(("speech_failed", (request.id, str(exc))))
        else:
            await self.inbox.put(("speech", (request.id, pcm)))


# ---------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `telephony-bridge engine`."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--script",
        metavar="FILE",
        default=None,
        help="TOML script of what the simulated agent says (default: the Acme receptionist)",
    )
    parser.add_argument(
        "--realtime-factor",
        type=float,
        default=4.0,
        help="deliver audio this many times faster than real time (default 4; 'inf' = at once)",
    )
    parser.add_argument(
        "--webrtc",
        action="store_true",
        help="also take WebRTC offers (/v1/realtime/calls, /v1/live/sessions) over HTTP on a port of their own",
    )
    parser.add_argument(
        "--require-key",
        default=os.environ.get(REQUIRE_KEY_ENV),
        help=f"refuse connections without this bearer key (default: ${REQUIRE_KEY_ENV}, else any key)",
    )


async def run(args: argparse.Namespace) -> int:
    """Run the engine until cancelled. Returns a process exit status."""
    try:
        script = Script.load(args.script) if args.script else Script.default()
    except ScriptError as exc:
        print(f"error: {exc}")
        return 2
    factor = args.realtime_factor
    engine = LocalEngine(
        args.host,
        args.port,
        script,
        require_key=args.require_key,
        realtime_factor=math.inf if factor <= 0 else factor,
        webrtc=getattr(args, "webrtc", False),
    )
    async with engine:
        print(f"local realtime engine on {engine.url} (script: {script.source}, {len(script.turns)} turns)", flush=True)
        print(f"  openai client: AsyncOpenAI(websocket_base_url={engine.base_url!r})", flush=True)
        if getattr(args, "webrtc", False):
            print(f"  WebRTC offers: REALTIME_WEBRTC_URL={engine.webrtc_url}", flush=True)
            print(f"                 LIVE_WEBRTC_URL={engine.webrtc_live_url}", flush=True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="telephony-bridge engine", description="Run the local realtime engine.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
