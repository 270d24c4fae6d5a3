"""The SIP listeners: a trunk's INVITEs admitted, routed and run as calls by the usual session.

`serve --sip udp:HOST:PORT` (repeatable, `tcp:` too; or ``SIP_LISTEN``, comma-separated) opens the
sockets in the app's lifespan (server/app.py), as AudioSocket's listeners are: the calls share the
app's `BridgeRuntime` — `MAX_CALLS`, draining, metrics, routes, the embedded engine — and stop with it.

An INVITE outside a dialog, in this order (each refusal counted and logged, nothing kept of it):
- malformed (unparseable, or mandatory headers missing): 400 where a response can be routed;
- more INVITEs from its source address than the flood limit: 503 with Retry-After;
- its source not in ``SIP_ALLOW``: a digest challenge (401) when ``SIP_USERS`` is set, else 403;
- draining or at `MAX_CALLS`: 503; no route for the number: 404; no RTP port left: 503;
  an offer without PCMU/PCMA: 488.
Then 100 Trying, and an `SipCall` (server/sip_call.py) runs the call over the media side's
`RtpStream`. Requests inside a dialog go to their call; for no dialog, 481. OPTIONS: 200.
Retransmitted requests are absorbed by their transaction (carriers/sip/transaction.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from telephony_bridge.audio.formats import ALAW_8K, ULAW_8K
from telephony_bridge.carriers.base import CallStarted
from telephony_bridge.carriers.sip.carrier import (
    ALLOW_ENV,
    PUBLIC_ADDRESS_ENV,
    USERS_ENV,
    SipCarrier,
    SipListenerSpec,
)
from telephony_bridge.carriers.sip.dialog import Dialog, DialogTable, new_branch, new_tag, response_to
from telephony_bridge.carriers.sip.digest import AuthOutcome, DigestAuthenticator
from telephony_bridge.carriers.sip.fields import parse_name_addr, parse_uri, parse_via
from telephony_bridge.carriers.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    missing_headers,
)
from telephony_bridge.carriers.sip.sdp import PCMA, Negotiated, NoCommonCodec, answer_offer, build_offer, parse_sdp
from telephony_bridge.carriers.sip.transaction import client_key, server_key
from telephony_bridge.server.runtime import BridgeRuntime
from telephony_bridge.server.session import CallSession
from telephony_bridge.server.settings import Settings
from telephony_bridge.server.sip_call import ALLOW, RtpStreamLike, SipCall, x_headers
from telephony_bridge.server.sip_media import RtpPortPool
from telephony_bridge.server.sip_transport import Peer, ServerEntry, SipSockets, Transactions

__all__ = ["SipMedia", "SipServer"]

log = logging.getLogger("telephony_bridge.sip")

REALM: Final = "telephony-bridge"
# INVITE flood guard per source address: a token bucket of SIP_INVITE_RATE a second, holding
# FLOOD_BURST_S seconds' worth. Refused INVITEs cost one small 503 each; the table is bounded.
FLOOD_BURST_S: Final = 3.0
FLOOD_SOURCES: Final = 10_000
SHUTDOWN_WAIT_S: Final = 5.0
# Server transactions live up to 32 s after their last response (UDP retransmission absorption):
# a cap keeps a flood from many sources from growing them without bound.
MAX_TRANSACTIONS: Final = 50_000
# The option tags a peer may Require of us (RFC 4028 session timers); anything else, 100rel
# included, gets 420 Bad Extension, so the peer can retry without it.
SUPPORTED_OPTIONS: Final = frozenset({"timer"})
BAD_MESSAGES_LOGGED: Final = 20


class SipMedia(Protocol):
    """The media side: an RTP stream per call from the port pool (server/sip_media.py)."""

    def open(self, call_id: str) -> RtpStreamLike | None: ...


def default_media(settings: Settings, runtime: BridgeRuntime) -> SipMedia:
    """The RTP side for `serve`: server/sip_media.py's port pool over ``RTP_PORTS``, bound where the
    first SIP listener is (all interfaces when it is)."""
    host = settings.sip_listeners[0].host
    return RtpPortPool.from_config(settings.carrier_config(), host, runtime.metrics)


class SipServer:
    def __init__(
        self,
        runtime: BridgeRuntime,
        listeners: Sequence[SipListenerSpec],
        config: Mapping[str, str],
        media: SipMedia,
    ) -> None:
        self.runtime = runtime
        self.listeners = tuple(listeners)
        self.config = config
        self.media = media
        self.udp_endpoint: Any = None  # the first UDP listener's socket: calls the bridge places leave from it
        self.carrier = SipCarrier(config)
        self.auth = DigestAuthenticator(REALM, self.carrier.users, algorithms=self.carrier.digest_algorithms)
        self.public_address = config.get(PUBLIC_ADDRESS_ENV, "").strip() or None
        self.sockets = SipSockets(self._deliver, self._bad_message)
        self._transactions: Transactions | None = None
        self.dialogs = DialogTable()
        self.calls: dict[str, SipCall] = {}  # by dialog-less key: the INVITE's Call-ID
        self._tasks: set[asyncio.Task[None]] = set()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.bound: list[tuple[SipListenerSpec, int]] = []
        self._addresses: dict[str, tuple[str, int]] = {}  # transport → our (host, port) for Via/Contact
        self.bad_messages = 0
        self.rate_limited = 0

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._transactions = Transactions()
        if not self.carrier.secured:
            log.warning("neither %s nor %s is set: the SIP listener refuses every INVITE (403)", ALLOW_ENV, USERS_ENV)
        for spec in self.listeners:
            try:
                if spec.transport == "udp":
                    port, endpoint = await self.sockets.start_udp(spec.host, spec.port)
                    if self.udp_endpoint is None:
                        self.udp_endpoint = endpoint
                else:
                    port = await self.sockets.start_tcp(spec.host, spec.port)
            except OSError as exc:
                await self.stop()
                raise OSError(exc.errno, f"cannot listen for SIP on {spec}: {exc.strerror or exc}") from exc
            self.bound.append((spec, port))
            self._addresses.setdefault(spec.transport.upper(), (self.public_address or spec.host, port))
            log.info("SIP listening on %s (port %d)", spec, port)

    async def stop(self) -> None:
        """No new calls; calls in progress end (BYE) and are awaited; then the sockets close."""
        for call in list(self.calls.values()):
            call.shutdown()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_WAIT_S)
        for task in list(self._tasks):  # calls still ringing out (callSIP), a call that would not end
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sockets.stop()
        if self._transactions is not None:
            self._transactions.close()

    # --- what calls use (SignallingHost) -----------------------------------------------------
    @property
    def transactions(self) -> Transactions:
        if self._transactions is None:
            raise RuntimeError("the SIP server is not started")
        return self._transactions

    def via(self, peer: Peer) -> str:
        port = self._addresses.get(peer.transport, ("127.0.0.1", 5060))[1]
        return f"SIP/2.0/{peer.transport} {_bracketed(self.sdp_address(peer))}:{port};branch={new_branch()};rport"

    def contact(self, peer: Peer) -> str:
        port = self._addresses.get(peer.transport, ("127.0.0.1", 5060))[1]
        transport = ";transport=tcp" if peer.transport == "TCP" else ""
        return f"<sip:bridge@{_bracketed(self.sdp_address(peer))}:{port}{transport}>"

    def route(self, number: str) -> str | None:
        return self.runtime.scenario_for(number)

    def adopt(self, call: SipCall) -> None:
        """A call the bridge placed, answered: its dialog's requests come here from now on."""
        self.calls[call.dialog.call_id] = call
        self.dialogs.add(call.dialog)

    def place_call(self, outbound: Any, target: str, callerid: str, headers: Mapping[str, str]) -> Any:
        """`VoxEngine.callSIP`: the call's UAC (server/sip_outbound.py), started; it is the Call's control."""
        from telephony_bridge.server.sip_outbound import OutboundSipCall

        uac = OutboundSipCall(self, outbound, target, callerid, headers)
        self.spawn(uac.run())
        return uac

    def forget(self, call: SipCall) -> None:
        self.dialogs.remove(call.dialog)
        if self.calls.get(call.dialog.call_id) is call:
            del self.calls[call.dialog.call_id]

    # --- input -------------------------------------------------------------------------------
    def _bad_message(self, error: SipParseError, peer: Peer, data: bytes) -> None:
        self.runtime.metrics.frames_rejected += 1
        self.bad_messages += 1
        if self.bad_messages <= BAD_MESSAGES_LOGGED or self.bad_messages % 100 == 0:
            log.warning("SIP: unusable message from %s:%d ignored: %s", *peer.address, error.reason)

    def _deliver(self, message: SipRequest | SipResponse, peer: Peer) -> None:
        try:
            if isinstance(message, SipResponse):
                self._response(message)
            else:
                self._request(message, peer)
        except SipParseError as exc:
            self._bad_message(exc, peer, b"")
        except Exception:  # a bug for one message must never take the listener down
            log.exception("SIP: failed handling a message from %s:%d", *peer.address)

    def _response(self, response: SipResponse) -> None:
        entry = self.transactions.client.get(client_key(response))
        if entry is not None:
            self.transactions.run(entry, entry.transaction.on_response(response))

    def _request(self, request: SipRequest, peer: Peer) -> None:
        transactions = self.transactions
        if request.method == "ACK":
            self._ack(request, peer)
            return
        missing = missing_headers(request)
        if missing:
            self._stateless(request, peer, 400, f"Missing or bad {', '.join(missing)}")
            return
        key = server_key(request)
        existing = transactions.server.get(key)
        if existing is not None:  # a retransmission: the last response again
            transactions.run(existing, existing.transaction.on_request(request))
            return
        in_dialog = bool(_tag(request.headers.get("To")))
        cancels_an_invite = request.method == "CANCEL" and (key[0], key[1], "INVITE") in transactions.server
        if not in_dialog and not cancels_an_invite and not self._admit_new(request, peer):
            return
        entry = transactions.add_server(key, request, peer)
        unsupported = [tag for tag in request.headers.values("Require") if tag.strip().lower() not in SUPPORTED_OPTIONS]
        if unsupported and request.method not in ("CANCEL", "ACK"):  # RFC 3261 §8.2.2.3
            self._reply(entry, 420, "Bad Extension", unsupported=", ".join(tag.strip() for tag in unsupported)[:200])
            return
        if request.method == "CANCEL":
            self._cancel(request, entry, key)
            return
        if in_dialog:
            dialog = self.dialogs.find(request)
            call = self.calls.get(dialog.call_id) if dialog is not None else None
            if call is None or call.dialog is not dialog:
                self._reply(entry, 481, "Call/Transaction Does Not Exist")
            else:
                call.on_request(request, entry)
            return
        if request.method == "INVITE":
            self._invite(request, entry)
        elif request.method == "OPTIONS":
            self._reply(entry, 200, "OK", allow=True)
        elif request.method in ("BYE", "INFO", "NOTIFY", "REFER", "UPDATE", "PRACK"):
            self._reply(entry, 481, "Call/Transaction Does Not Exist")
        else:
            self._reply(entry, 405, "Method Not Allowed", allow=True)

    def _ack(self, request: SipRequest, peer: Peer) -> None:
        try:
            existing = self.transactions.server.get(server_key(request))
        except SipParseError:
            return
        if existing is not None:  # the ACK of a non-2xx final response
            self.transactions.run(existing, existing.transaction.on_request(request))
            return
        dialog = self.dialogs.find(request)
        call = self.calls.get(dialog.call_id) if dialog is not None else None
        if call is not None:
            call.on_ack(request)

    def _cancel(self, request: SipRequest, entry: ServerEntry, key: tuple[str, str, str]) -> None:
        invite = self.transactions.server.get((key[0], key[1], "INVITE"))
        call = self.calls.get(request.headers.get("Call-ID") or "")
        if invite is None or call is None or call.invite_entry is not invite:
            self._reply(entry, 481, "Call/Transaction Does Not Exist")
            return
        self._reply(entry, 200, "OK")
        call.on_cancel()

    # --- a new call --------------------------------------------------------------------------
    def _invite(self, request: SipRequest, entry: ServerEntry) -> None:
        runtime, peer = self.runtime, entry.peer
        host = peer.address[0]
        if not self.carrier.allows(host) and not self._authenticated(request, entry):
            return
        if runtime.draining or runtime.at_capacity():
            if not runtime.draining:
                runtime.metrics.calls_over_capacity += 1
            self._reply(entry, 503, "Service Unavailable", retry_after=5)
            return
        try:
            uri = parse_uri(request.uri)
            to = parse_name_addr(request.headers.get("To") or "")
            sender = parse_name_addr(request.headers.get("From") or "")
        except SipParseError as exc:
            self._reply(entry, 400, "Bad Request")
            self._bad_message(exc, peer, b"")
            return
        number = uri.user or to.uri.user
        caller = sender.uri.user
        call_id = request.headers.get("Call-ID") or ""
        if runtime.scenario_for(number) is None:
            runtime.metrics.calls_rejected += 1
            log.warning("SIP INVITE from %s for %s refused: no route", host, number or "(none)")
            self._reply(entry, 404, "Not Found")
            return
        if call_id in self.calls:
            self._reply(entry, 482, "Loop Detected")  # the same Call-ID forked back to us
            return
        self._reply(entry, 100, "Trying")
        stream = self.media.open(call_id)
        if stream is None:  # counted by the pool (rtp_ports_exhausted)
            log.warning("SIP INVITE from %s refused: no RTP port left (RTP_PORTS)", host)
            self._reply(entry, 503, "Service Unavailable", retry_after=5)
            return
        contact = self.contact(peer)
        try:
            negotiated: Negotiated | None = None
            if request.body:
                negotiated, sdp = answer_offer(
                    parse_sdp(request.body), self.sdp_address(peer), stream.local_port, int(time.time())
                )
            else:  # an offerless INVITE: our offer goes in the 200, the answer comes in the ACK
                sdp = build_offer(self.sdp_address(peer), stream.local_port, int(time.time()))
            dialog = Dialog.as_uas(request, new_tag(), contact)
        except (NoCommonCodec, SipParseError) as exc:
            bad_sdp = isinstance(exc, SipParseError)
            self._reply(entry, 400 if bad_sdp else 488, "Bad SDP" if bad_sdp else "Not Acceptable Here")
            self.spawn(stream.aclose())
            return
        start = CallStarted(
            call_id=call_id,
            stream_id=call_id,
            # Offerless: PCMU until the ACK says (the stream transcodes for the session if it is PCMA).
            audio_format=ALAW_8K if negotiated is not None and negotiated.payload_type == PCMA else ULAW_8K,
            custom_parameters=x_headers(request),
            caller=caller,
            number=number,
        )
        call = SipCall(self, request, entry, dialog, stream, negotiated, sdp, start)
        self.calls[call_id] = call
        self.dialogs.add(dialog)
        stream.begin(start)
        runtime.streams_opened += 1
        carrier = SipCarrier(self.config, control=call)
        session = CallSession(stream, runtime, runtime.streams_opened, carrier, binding=call.binding)  # type: ignore[arg-type]
        self.spawn(call.run(runtime, session))

    def _authenticated(self, request: SipRequest, entry: ServerEntry) -> bool:
        host = entry.peer.address[0]
        if not self.auth.configured:
            self.runtime.metrics.streams_forbidden += 1
            log.warning("SIP INVITE from %s refused: not in %s", host, ALLOW_ENV)
            self._reply(entry, 403, "Forbidden")
            return False
        result = self.auth.check("INVITE", request.headers.get("Authorization"), time.monotonic())
        if result.outcome is AuthOutcome.OK:
            return True
        if result.outcome is AuthOutcome.DENIED:
            self.runtime.metrics.streams_forbidden += 1
            log.warning("SIP INVITE from %s refused: %s (user %.40r)", host, result.reason, result.user)
            self._reply(entry, 403, "Forbidden")
            return False
        response = response_to(request, 401, "Unauthorized", to_tag=new_tag())
        for challenge in self.auth.challenge(time.monotonic(), stale=result.outcome is AuthOutcome.STALE):
            response.headers.add("WWW-Authenticate", challenge)
        self.transactions.respond(entry, response)
        return False

    # --- helpers -----------------------------------------------------------------------------
    def _admit_new(self, request: SipRequest, peer: Peer) -> bool:
        """A request outside any dialog may open a transaction (kept up to 32 s over UDP): not
        beyond the source's rate (SIP_INVITE_RATE) nor MAX_TRANSACTIONS. Refused statelessly: a
        flood costs one small 503 each and no state."""
        over_rate = not self._take_token(peer.address[0])
        if over_rate or len(self.transactions.server) >= MAX_TRANSACTIONS:
            self.runtime.metrics.calls_over_capacity += 1
            if over_rate:
                self.rate_limited += 1
            if self.rate_limited <= BAD_MESSAGES_LOGGED or self.rate_limited % 1000 == 0:
                log.warning("SIP %s from %s refused: too many requests", request.method[:16], peer.address[0])
            response = response_to(request, 503, "Service Unavailable", to_tag=new_tag())
            response.headers.add("Retry-After", "5")
            try:
                destination = parse_via(request.headers.values("Via")[0]).response_address(peer.address)
            except (SipParseError, IndexError):
                destination = peer.address
            peer.send(response, peer.address if peer.reliable else destination)
            return False
        return True

    def _take_token(self, host: str) -> bool:
        now = time.monotonic()
        rate = self.carrier.invite_rate
        burst = rate * FLOOD_BURST_S
        tokens, at = self._buckets.pop(host, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        allowed = tokens >= 1.0
        self._buckets[host] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > FLOOD_SOURCES:
            self._buckets.popitem(last=False)
        return allowed

    def sdp_address(self, peer: Peer) -> str:
        """Our address for the peer (SDP, Via, Contact): SIP_PUBLIC_ADDRESS, else the listener's
        address, else (on a wildcard listener) the local address the system routes to the peer from."""
        host = self._addresses.get(peer.transport, ("127.0.0.1", 0))[0]
        if host not in ("0.0.0.0", "::", ""):
            return host
        family = socket.AF_INET6 if ":" in peer.address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(peer.address)  # no packet: only picks the route
                return str(probe.getsockname()[0])
            except OSError:
                return "127.0.0.1"

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply(
        self,
        entry: ServerEntry,
        status: int,
        reason: str,
        *,
        allow: bool = False,
        retry_after: int | None = None,
        unsupported: str | None = None,
    ) -> None:
        request = entry.transaction.request
        response = response_to(request, status, reason, to_tag=new_tag() if status > 100 else None)
        if allow:
            response.headers.add("Allow", ALLOW)
            response.headers.add("Accept", "application/sdp")
        if retry_after is not None:
            response.headers.add("Retry-After", str(retry_after))
        if unsupported:
            response.headers.add("Unsupported", unsupported)
        self.transactions.respond(entry, response)

    def _stateless(self, request: SipRequest, peer: Peer, status: int, reason: str) -> None:
        """A response outside any transaction (the request could not be keyed): back to the sender."""
        self.runtime.metrics.frames_rejected += 1
        log.warning("SIP %s from %s:%d refused: %s", request.method[:16], *peer.address, reason)
        if request.headers.get("Via"):
            peer.send(response_to(request, status, reason[:100]))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _tag(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parse_name_addr(value).tag
    except SipParseError:
        return None
