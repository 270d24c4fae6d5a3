"""The browser softphone: its page, its signalling exchange, and its calls (a carrier in the seam).

- ``GET /softphone``: the page (server/softphone_page.py): pick a number (or a scenario), call,
  talk through the microphone, hear the agent, a live transcript, a DTMF keypad, hang up.
  ``?number=+15550100&autocall=1`` places the call on load (automated checks).
- ``POST /softphone/offer``: the signalling, one HTTP exchange. The page posts its SDP offer (ICE
  gathered, no trickle) with the number it dials; the bridge admits the call like any carrier's
  (not while draining, not at ``MAX_CALLS``, the number routed through routes.toml), mints the
  single-use stream token that binds this exchange to the media (server/stream_tokens.py), and
  answers with its SDP. The call then runs as an ordinary `CallSession` over the peer connection
  (server/softphone_transport.py).
- ``GET /softphone/events``: the console's live feed of calls in progress (its transcript lines).
- ``GET /softphone/static/{name}``: the page's script.

Access is the console's (server/console_auth.py): CONSOLE_TOKEN or an API_KEYS key, else loopback
only. ICE follows webrtc/peer.py: no STUN/TURN unless ``WEBRTC_ICE_SERVERS``, host candidates on
``WEBRTC_HOST_ADDRESSES`` when set (127.0.0.1 for a browser on the same machine). The page's mDNS
candidates (``*.local``) are dropped from its offer: resolving them would send multicast queries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from telephony_bridge.carriers.webrtc import STREAM_FORMAT, WebRtcCarrier, start_message
from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.server.carrier_routes import run_session
from telephony_bridge.server.console import live_events_response, static_files
from telephony_bridge.server.console_auth import console_refusal
from telephony_bridge.server.session import CallSession
from telephony_bridge.server.softphone_page import softphone_page
from telephony_bridge.server.stream_tokens import StreamGrant

if TYPE_CHECKING:  # aiortc (0.2 s to import) is loaded with the first call, not with every app
    from telephony_bridge.server.softphone_transport import SoftphoneTransport

__all__ = ["SoftphoneCalls", "SoftphoneRefused", "literal_numbers", "softphone_routes"]

log = logging.getLogger("telephony_bridge.softphone")

STATIC: Final = Path(__file__).with_name("softphone_static")
STATIC_FILES: Final = {"softphone.js": "text/javascript"}
MAX_OFFER_BYTES: Final = 64 * 1024  # a browser's audio-and-data offer is 3-6 KiB
SHUTDOWN_WAIT_S: Final = 5.0
CALLER: Final = "softphone"  # the caller id the scenario sees
_NUMBER: Final = re.compile(r"\+?[0-9*#]{1,32}")
_MDNS_CANDIDATE: Final = re.compile(r"^a=candidate:[^\r\n]* [^ \r\n]+\.local [^\r\n]*\r?\n", re.MULTILINE)


class SoftphoneRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def literal_numbers(router: Any) -> list[tuple[str, str]]:
    """(number, scenario) for each route whose pattern is one number (what the page offers to dial)."""
    numbers: list[tuple[str, str]] = []
    for route in getattr(router, "routes", ()):
        number = re.sub(r"\\(.)", r"\1", route.pattern.pattern)
        if _NUMBER.fullmatch(number) and route.matches(number):
            numbers.append((number, route.scenario))
    return numbers


class SoftphoneCalls:
    """The softphone's calls in progress: admitted by `offer`, each run as a `CallSession`."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.carrier = WebRtcCarrier(runtime.settings.carrier_config())
        self.transports: dict[str, SoftphoneTransport] = {}  # by call id, while the call runs
        self._tasks: set[asyncio.Task[Any]] = set()

    def _route(self, number: str, scenario: str) -> tuple[str, str]:
        runtime = self.runtime
        if (number or not scenario) and not _NUMBER.fullmatch(number):
            raise SoftphoneRefused(400, "the number is digits with an optional leading +")
        if scenario:
            # The page's user is an operator (console access): they may call a scenario directly.
            if scenario not in runtime.scenarios:
                raise SoftphoneRefused(404, "no such scenario")
            return number, scenario
        routed = runtime.scenario_for(number)
        if routed is None:
            runtime.metrics.calls_rejected += 1
            raise SoftphoneRefused(404, f"number {number} matches no route")
        return number, routed

    async def offer(self, sdp: str, number: str, scenario: str = "") -> tuple[str, str]:
        """Admit a call and answer its offer: (the answer's SDP, the call id); or SoftphoneRefused."""
        runtime = self.runtime
        if runtime.draining or runtime.at_capacity():
            if not runtime.draining:
                runtime.metrics.calls_over_capacity += 1
            raise SoftphoneRefused(503, "draining for shutdown" if runtime.draining else "at MAX_CALLS")
        number, scenario = self._route(number, scenario)
        from aiortc import RTCSessionDescription

        from telephony_bridge.server.softphone_track import TalkTrack
        from telephony_bridge.server.softphone_transport import SoftphoneTransport
        from telephony_bridge.webrtc.peer import new_peer_connection

        call_id = f"softphone-{uuid.uuid4()}"
        pc = new_peer_connection(self.carrier.config)
        outgoing = TalkTrack(STREAM_FORMAT.rate)
        token = runtime.stream_tokens.issue(
            StreamGrant(call_id=call_id, scenario=scenario, caller=CALLER, number=number)
        )
        transport = SoftphoneTransport(
            pc, start_message(call_id, token, number, CALLER), outgoing, call_id, runtime.metrics
        )
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=_MDNS_CANDIDATE.sub("", sdp), type="offer"))
            if not any(t.kind == "audio" for t in pc.getTransceivers()):
                raise SoftphoneRefused(400, "the offer has no audio")
            pc.addTrack(outgoing)
            await pc.setLocalDescription(await pc.createAnswer())
        except SoftphoneRefused:
            await transport.aclose()
            raise
        except Exception as exc:  # aiortc raises ValueError and others for an SDP it cannot use
            await transport.aclose()
            log.warning("softphone offer for %s refused: %s: %s", number or scenario, type(exc).__name__, exc)
            raise SoftphoneRefused(400, "the SDP offer is not usable") from None
        runtime.streams_opened += 1
        session = CallSession(transport, runtime, runtime.streams_opened, self.carrier)
        runtime.sessions.add(session)
        runtime.metrics.active_calls = len(runtime.sessions)
        self.transports[call_id] = transport
        task = asyncio.get_running_loop().create_task(
            self._run(session, transport, call_id), name=f"softphone {call_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return pc.localDescription.sdp, call_id

    async def _run(self, session: CallSession, transport: SoftphoneTransport, call_id: str) -> None:
        runtime = self.runtime
        try:
            await run_session(runtime, session)  # counted since the offer was taken (MAX_CALLS)
        finally:
            await transport.aclose()
            self.transports.pop(call_id, None)
            log.info(
                "call %s: the page played %.0f ms of the %.0f ms of agent audio sent (jitter buffer %.0f ms)",
                call_id,
                transport.page_played_ms,
                transport.sent_ms,
                transport.page_delay_ms,
            )

    async def stop(self) -> None:
        """Calls in progress end (the drain has had its chance) and are awaited."""
        if not self._tasks:
            return
        for session in list(self.runtime.sessions):
            if isinstance(session, CallSession) and session.carrier is self.carrier:
                session.end(CallEnd.SHUTDOWN)
        await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_WAIT_S)


def softphone_routes(runtime: Any) -> list[Route]:
    settings = runtime.settings
    calls = runtime.softphone = SoftphoneCalls(runtime)

    async def page(request: Request) -> Response:
        refused = console_refusal(request, settings, cookie_path="/softphone")
        if refused is not None:
            return refused
        query = request.query_params
        html = softphone_page(
            literal_numbers(runtime.router),
            sorted(runtime.scenarios),
            number=query.get("number", ""),
            autocall=query.get("autocall") == "1",
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    async def offer(request: Request) -> Response:
        refused = console_refusal(request, settings, cookie_path="/softphone")
        if refused is not None:
            return refused
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            # Only JSON: a cross-site form or text/plain POST (no CORS preflight) cannot place a call.
            return PlainTextResponse("the offer is application/json", status_code=415)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_OFFER_BYTES:
                return PlainTextResponse("offer too large", status_code=413)
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return PlainTextResponse("the offer is JSON: {sdp, type, number}", status_code=400)
        if not isinstance(message, dict) or message.get("type") != "offer" or not isinstance(message.get("sdp"), str):
            return PlainTextResponse("the offer is JSON: {sdp, type: 'offer', number}", status_code=400)
        number, scenario = message.get("number", ""), message.get("scenario", "")
        if not isinstance(number, str) or not isinstance(scenario, str):
            return PlainTextResponse("number and scenario are strings", status_code=400)
        try:
            sdp, call_id = await calls.offer(message["sdp"], number.strip(), scenario.strip())
        except SoftphoneRefused as refused_call:
            log.warning("softphone call to %s refused: %s", number or scenario or "?", refused_call.reason)
            return PlainTextResponse(refused_call.reason, status_code=refused_call.status)
        return JSONResponse({"type": "answer", "sdp": sdp, "call_id": call_id}, headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        refused = console_refusal(request, settings, cookie_path="/softphone")
        if refused is not None:
            return refused
        return live_events_response(runtime, request)

    static = static_files(STATIC, STATIC_FILES)

    return [
        Route("/softphone", page, methods=["GET"]),
        Route("/softphone/offer", offer, methods=["POST"]),
        Route("/softphone/events", events, methods=["GET"]),
        Route("/softphone/static/{name}", static, methods=["GET"]),
    ]
