"""The local engine's WebRTC signalling: an SDP offer in, an SDP answer out, then the session runs
over the peer connection (webrtc_socket.py) with the same runner as a WebSocket connection.

Two endpoints, as OpenAI has them (shared/reference/gpt-live.md; the `openai` SDK's
`realtime.calls.create` and `live.create`):

- `POST /v1/realtime/calls`: the offer as the body (`Content-Type: application/sdp`, model in
  `?model=`) or multipart form data with an `sdp` field and an optional `session` field (JSON, the
  session's configuration, applied as the session's first `session.update`). Answer: `201`,
  `Content-Type: application/sdp`, the answer as the body, `Location: /v1/realtime/calls/{id}`.
- `POST /v1/live/sessions`: JSON `{"session": {...}, "transport": {"type": "webrtc", "sdp": ...}}`.
  Answer: `201`, JSON `{"session": {"id"}, "transport": {"type": "webrtc", "sdp"}}`. The session
  config is the session's `session.start` (WebRTC has none on the data channel).

HTTP on its own port: the engine's WebSocket server (websockets) takes GET upgrades only. Errors
are shaped like the API's (`{"error": {...}}`); a bad offer is a 400 and never reaches aiortc's
internals' exceptions to the client. Each peer connection lives as long as its session: the
runner ending (the data channel closed, the session closed) closes it; so does `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson
import uvicorn
from aiortc import MediaStreamTrack, RTCDataChannel, RTCSessionDescription
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.datastructures import Headers
from websockets.http11 import Request as WebSocketRequest

from ..webrtc.audio_frames import OutgoingAudioTrack
from ..webrtc.peer import PeerConnection, new_peer_connection, selected_addresses
from .webrtc_socket import TRACK_RATE, DataChannelSocket

__all__ = ["CALLS_PATH", "LIVE_SESSIONS_PATH", "WebRTCEndpoint"]

log = logging.getLogger(__name__)

CALLS_PATH = "/v1/realtime/calls"
LIVE_SESSIONS_PATH = "/v1/live/sessions"
MAX_OFFER_BYTES = 64 * 1024  # an SDP offer is a few KB; a session config a few more
DATA_CHANNEL_WAIT_S = 30.0  # the offerer opens the data channel once ICE and DTLS are up


def _error(status: int, message: str, code: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}
    return Response(orjson.dumps(body), status, media_type="application/json")


class _BadRequest(Exception):
    def __init__(self, message: str, code: str = "invalid_value", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class WebRTCEndpoint:
    """Serve WebRTC sessions for an engine: `serve(socket)` runs one session (the engine's
    `serve_connection`), `require_key()` says which bearer key is required, if any."""

    def __init__(
        self,
        serve: Callable[[Any], Awaitable[None]],
        require_key: Callable[[], str | None],
        config: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._serve = serve
        self._require_key = require_key
        self._config = dict(config)
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[Any] | None = None
        self._calls: dict[str, tuple[PeerConnection, asyncio.Task[Any]]] = {}
        self.app = Starlette(
            routes=[
                Route(CALLS_PATH, self._realtime_call, methods=["POST"]),
                Route(LIVE_SESSIONS_PATH, self._live_session, methods=["POST"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        # Stopping never waits on a client that keeps posting offers (a reconnecting bridge).
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = server = uvicorn.Server(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="engine webrtc http")
        while not server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        # Each call's task closes its own peer connection on the way out (shielded: an aiortc
        # close() cancelled half-way leaves every later close() waiting forever).
        call_tasks = [call_task for _pc, call_task in self._calls.values()]
        for call_task in call_tasks:
            call_task.cancel()
        await asyncio.gather(*call_tasks, return_exceptions=True)
        self._calls.clear()
        server, task = self._server, self._task
        self._server, self._task = None, None
        if server is not None and task is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- signalling ------------------------------------------------------------------------
    def _unauthorized(self, request: Request) -> Response | None:
        key = self._require_key()
        if key is None:
            return None
        scheme, _, offered = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or offered.strip() != key:
            return _error(401, "Incorrect API key provided.", "invalid_api_key")  # never echo the key
        return None

    async def _realtime_call(self, request: Request) -> Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        try:
            offer, session = await _realtime_offer(request)
            # The session's query as the WebSocket endpoint would see it (`model`, and anything
            # else the client put there), the session field's model when the query has none.
            query = request.url.query
            model = (session or {}).get("model")
            if model and "model" not in request.query_params:
                query = "&".join(filter(None, (query, f"model={quote(str(model))}")))
            path = "/v1/realtime" + (f"?{query}" if query else "")
            first = (orjson.dumps({"type": "session.update", "session": session}).decode(),) if session else ()
            call_id = "rtc_" + secrets.token_hex(12)
            answer = await self._answer(call_id, offer, path, request, first, realtime=True)
        except _BadRequest as exc:
            log.info("engine webrtc: refused a realtime call offer: %s", exc)
            return _error(exc.status, str(exc), exc.code)
        return Response(answer, 201, media_type="application/sdp", headers={"Location": f"{CALLS_PATH}/{call_id}"})

    async def _live_session(self, request: Request) -> Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        try:
            body = await _body(request)
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise _BadRequest("The body must be JSON.", "invalid_json") from None
            session, transport = (
                (document.get("session"), document.get("transport")) if isinstance(document, dict) else (None, None)
            )
            if not isinstance(session, dict):
                raise _BadRequest("Missing required parameter: 'session'.", "missing_required_parameter")
            if (
                not isinstance(transport, dict)
                or transport.get("type") != "webrtc"
                or not isinstance(transport.get("sdp"), str)
            ):
                raise _BadRequest('\'transport\' must be {"type": "webrtc", "sdp": ...}.', "invalid_value")
            session_id = "live_" + secrets.token_hex(12)
            first = (orjson.dumps({"type": "session.start", "session": session}).decode(),)
            answer = await self._answer(
                session_id, transport["sdp"], LIVE_SESSIONS_PATH, request, first, realtime=False
            )
        except _BadRequest as exc:
            log.info("engine webrtc: refused a live session offer: %s", exc)
            return _error(exc.status, str(exc), exc.code)
        reply = {"session": {"id": session_id}, "transport": {"type": "webrtc", "sdp": answer}}
        return Response(orjson.dumps(reply), 201, media_type="application/json")

    async def _answer(
        self, call_id: str, offer: str, path: str, request: Request, first: tuple[str, ...], *, realtime: bool
    ) -> str:
        if not offer.startswith("v=0"):
            raise _BadRequest("The SDP offer is not an SDP document.", "invalid_offer")
        pc = new_peer_connection(self._config)
        outgoing = OutgoingAudioTrack(TRACK_RATE)
        loop = asyncio.get_running_loop()
        channel_ready: asyncio.Future[DataChannelSocket] = loop.create_future()
        tracks: list[MediaStreamTrack] = []
        headers = Headers([(name, value) for name, value in request.headers.items() if name.lower() == "authorization"])
        ws_request = WebSocketRequest(path, headers)

        @pc.on("datachannel")
        def _on_channel(channel: RTCDataChannel) -> None:
            # The socket listens at once: the client sends its first events (session.update) the
            # moment the channel opens, and a message with no listener yet is lost.
            if not channel_ready.done():
                addresses = selected_addresses(pc)
                channel_ready.set_result(
                    DataChannelSocket(
                        request=ws_request,
                        remote_address=addresses[1] if addresses else None,
                        channel=channel,
                        outgoing=outgoing,
                        first_messages=first,
                        realtime=realtime,
                    )
                )

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                tracks.append(track)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            if not any(t.kind == "audio" for t in pc.getTransceivers()):
                raise _BadRequest("The offer has no audio section.", "invalid_offer")
            pc.addTrack(outgoing)
            await pc.setLocalDescription(await pc.createAnswer())
        except _BadRequest:
            await pc.close()
            raise
        except Exception as exc:  # aiortc rejects a malformed offer with assorted exceptions
            await pc.close()
            raise _BadRequest(f"The SDP offer could not be used ({type(exc).__name__}).", "invalid_offer") from None
        task = asyncio.create_task(
            self._run(call_id, pc, outgoing, channel_ready, tracks),
            name=f"engine webrtc {call_id}",
        )
        self._calls[call_id] = (pc, task)
        return pc.localDescription.sdp

    async def _run(
        self,
        call_id: str,
        pc: PeerConnection,
        outgoing: OutgoingAudioTrack,
        channel_ready: asyncio.Future[DataChannelSocket],
        tracks: list[MediaStreamTrack],
    ) -> None:
        socket_: DataChannelSocket | None = None
        try:
            socket_ = await asyncio.wait_for(channel_ready, DATA_CHANNEL_WAIT_S)
            channel = socket_.channel
            if channel.readyState != "open":
                opened = asyncio.Event()
                channel.on("open", opened.set)
                await asyncio.wait_for(opened.wait(), DATA_CHANNEL_WAIT_S)
            for track in tracks:
                socket_.receive_track(track)

            @pc.on("connectionstatechange")
            async def _on_state() -> None:
                if pc.connectionState in ("failed", "closed") and socket_ is not None:
                    await socket_.aclose()

            await self._serve(socket_)
        except TimeoutError:
            log.info("engine webrtc %s: the data channel never opened; closing", call_id)
        except Exception:
            log.exception("engine webrtc %s: the session failed", call_id)
        finally:
            if socket_ is not None:
                await socket_.aclose()
            outgoing.stop()
            await asyncio.shield(pc.close())
            self._calls.pop(call_id, None)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_OFFER_BYTES):
        raise _BadRequest("The request body is too large.", "request_too_large", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OFFER_BYTES:
            raise _BadRequest("The request body is too large.", "request_too_large", 413)
    return body


async def _realtime_offer(request: Request) -> tuple[str, dict[str, Any] | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/sdp":
        return (await _body(request)).decode("utf-8", "replace"), None
    if content_type != "multipart/form-data":
        raise _BadRequest("Send the offer as application/sdp or multipart/form-data.", "unsupported_media_type", 415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_OFFER_BYTES):
        raise _BadRequest("The request body is too large.", "request_too_large", 413)
    try:
        form = await request.form(max_files=2, max_fields=4, max_part_size=MAX_OFFER_BYTES)
    except Exception as exc:  # starlette's MultiPartException, or a malformed body
        raise _BadRequest(f"The form data could not be read ({exc}).", "invalid_value") from None
    sdp, session_text = await _field_text(form.get("sdp")), await _field_text(form.get("session"))
    if sdp is None:
        raise _BadRequest("Missing required parameter: 'sdp'.", "missing_required_parameter")
    session: dict[str, Any] | None = None
    if session_text:
        try:
            session = orjson.loads(session_text)
        except orjson.JSONDecodeError:
            raise _BadRequest("'session' must be a JSON object.", "invalid_json") from None
        if not isinstance(session, dict):
            raise _BadRequest("'session' must be a JSON object.", "invalid_value")
    return sdp, session


async def _field_text(value: UploadFile | str | None) -> str | None:
    """A form field's text, whether the client sent it as a plain field or as a file part."""
    if isinstance(value, UploadFile):
        return (await value.read()).decode("utf-8", "replace")
    return value
