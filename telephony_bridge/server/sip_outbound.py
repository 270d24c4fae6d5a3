"""Calls the bridge places over SIP: `VoxEngine.callSIP("sip:+15550100@trunk:5060", {...})`.

The scenario gets its `Call` at once (server/outbound.py's `OutboundCall`, the same as
`callPSTN`'s); this module is that call's UAC:

- an RTP stream from the pool, our SDP offer (PCMU, PCMA, telephone-event), and the INVITE from
  the first UDP listener's socket, with the scenario's `callerid` in From and its `headers` (X-*);
- 401/407: answered once with digest credentials from ``SIP_OUTBOUND``
  (``sip:USER:PASSWORD@HOST[:PORT]``; its host is also where a callSIP URI without one goes);
- 180/183: `Ringing`; a final error: `Failed {code, reason}`; no final answer within the ring
  timeout: CANCEL and `Failed 408`;
- 200 OK: ACK, the stream configured from the answer, and a `SipCall` (server/sip_call.py) for the
  dialog; the stream's session joins the waiting `Call` (`Connected`), as an outbound stream of the
  HTTP carriers does. BYE either way ends it (`Disconnected`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.carriers.base import CallStarted, DialFailed, DialRequest
from telephony_bridge.carriers.sip.carrier import OUTBOUND_ENV, SipCarrier, parse_outbound
from telephony_bridge.carriers.sip.dialog import Dialog, new_tag
from telephony_bridge.carriers.sip.digest import authorization_for
from telephony_bridge.carriers.sip.fields import SipUri, parse_uri
from telephony_bridge.carriers.sip.message import Headers, SipParseError, SipRequest, SipResponse
from telephony_bridge.carriers.sip.sdp import NoCommonCodec, build_offer, parse_sdp, read_answer
from telephony_bridge.carriers.sip.transaction import cancel_for
from telephony_bridge.server.session import CallSession
from telephony_bridge.server.sip_call import SipCall
from telephony_bridge.server.sip_transport import Peer
from telephony_bridge.server.stream_tokens import StreamGrant

if TYPE_CHECKING:
    from telephony_bridge.server.outbound import OutboundCall
    from telephony_bridge.server.sip_listener import SipServer

__all__ = ["OutboundSipCall", "outbound_credentials"]

log = logging.getLogger("telephony_bridge.sip")

RING_TIMEOUT_S: Final = 60.0
MAX_CUSTOM_HEADERS: Final = 20


def outbound_credentials(config: Mapping[str, str]) -> tuple[SipUri, str] | None:
    """``SIP_OUTBOUND`` read (checked at start-up): the trunk with its user, and the password."""
    return parse_outbound(config.get(OUTBOUND_ENV, ""))


class OutboundSipCall:
    """One call the bridge places; the `Call`'s control (hang-up, transfer) until and after the answer."""

    def __init__(
        self,
        server: SipServer,
        outbound: OutboundCall,
        target: str,
        callerid: str,
        headers: Mapping[str, str],
    ) -> None:
        self.server = server
        self.outbound: OutboundCall | None = outbound
        self.target = target
        self.callerid = callerid
        self.headers = {name: str(value) for name, value in list(headers.items())[:MAX_CUSTOM_HEADERS]}
        self.call: SipCall | None = None
        self.invite: SipRequest | None = None
        self.peer: Peer | None = None
        self.stream: Any = None
        self.call_id = f"{new_tag()}{new_tag()}@bridge"
        self._answered = asyncio.Event()
        self._final: asyncio.Future[int] | None = None
        self._authenticated = False
        self._cancelled = False

    # --- CallControl (the Call's) ----------------------------------------------------------
    async def hangup(self, call_id: str = "") -> None:
        if self.call is not None:
            self.call.session_closed()  # BYE (after the call: nothing, it has ended)
        elif self.invite is not None and not self._cancelled and self.peer is not None:
            self._cancel()

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        if self.call is None:
            raise RuntimeError("the call has not been answered")
        await self.call.transfer(call_id, to, caller_id)

    async def dial(self, request: DialRequest) -> str:
        raise DialFailed(501, "a call does not dial")

    # --- placing it -------------------------------------------------------------------------
    async def run(self) -> None:
        """Place the call; returns when it is answered (the session runs on) or has failed."""
        outbound = self.outbound
        assert outbound is not None
        server = self.server
        try:
            uri = self._request_uri()
        except (SipParseError, ValueError) as exc:
            outbound.fail(400, f"bad SIP URI: {exc}")
            return
        endpoint = server.udp_endpoint
        if endpoint is None:
            outbound.fail(503, "no UDP SIP listener to place calls from (serve --sip udp:HOST:PORT)")
            return
        try:
            address = await _resolve(uri.host, uri.port or 5060)
        except OSError as exc:
            outbound.fail(404, f"cannot resolve {uri.host}: {exc.strerror or exc}")
            return
        self.peer = Peer("UDP", address, endpoint)
        self.stream = server.media.open(self.call_id)
        if self.stream is None:
            outbound.fail(503, "no RTP port left (RTP_PORTS)")
            return
        outbound.answered(self.call_id, None)  # the Call is named after the SIP Call-ID from now on
        offer = build_offer(server.sdp_address(self.peer), self.stream.local_port, int(time.time()))
        self.invite = self._build_invite(str(uri), offer, cseq=1)
        self._final = asyncio.get_running_loop().create_future()
        self._send_invite()
        try:
            async with asyncio.timeout(RING_TIMEOUT_S):
                status = await asyncio.shield(self._final)
        except TimeoutError:
            self._cancel()
            self._fail(408, "no answer")
            await self._release_stream()
            return
        if status >= 300 and self.call is None:
            await self._release_stream()

    def _request_uri(self) -> SipUri:
        credentials = outbound_credentials(self.server.config)
        target = self.target
        if not target.startswith(("sip:", "sips:")):  # a bare number: to the SIP_OUTBOUND trunk
            if credentials is None:
                raise ValueError(f"{target!r} names no host and {OUTBOUND_ENV} is not set")
            trunk = credentials[0]
            port = f":{trunk.port}" if trunk.port else ""
            target = f"sip:{target}@{trunk.host}{port}"
        return parse_uri(target)

    def _build_invite(self, uri: str, offer: bytes, cseq: int) -> SipRequest:
        server, peer = self.server, self.peer
        assert peer is not None
        host = server.sdp_address(peer)
        headers = Headers()
        headers.add("Via", server.via(peer))
        headers.add("Max-Forwards", "70")
        tag = self.invite.headers.get("From") if self.invite is not None else None
        headers.add("From", tag or f"<sip:{self.callerid or 'bridge'}@{host}>;tag={new_tag()}")
        headers.add("To", f"<{uri}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} INVITE")
        headers.add("Contact", server.contact(peer))
        for name, value in self.headers.items():
            if name.lower().startswith("x-") and name.isascii() and "\n" not in value and "\r" not in value:
                headers.add(name, value)
        headers.add("Content-Type", "application/sdp")
        return SipRequest("INVITE", uri, headers, offer)

    def _send_invite(self) -> None:
        assert self.invite is not None
        assert self.peer is not None
        self.server.transactions.start_client(
            self.invite, self.peer, self.peer.address, self._on_response, lambda: self._fail(408, "no response")
        )

    def _on_response(self, response: SipResponse) -> None:
        outbound = self.outbound
        if response.status < 200:
            if response.status in (180, 183) and outbound is not None:
                outbound.call.ringing()
            return
        if response.status < 300:
            self._on_answer(response)
            return
        if response.status in (401, 407) and not self._authenticated and self._authenticate(response):
            return
        self._fail(response.status, response.reason or "refused")

    def _authenticate(self, response: SipResponse) -> bool:
        """Send the INVITE again with credentials answering the challenge; False without any."""
        credentials = outbound_credentials(self.server.config)
        if credentials is None or self.invite is None:
            return False
        trunk, password = credentials
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        for challenge in response.headers.lines(header):
            value = authorization_for(challenge, "INVITE", self.invite.uri, trunk.user, password)
            if value is not None:
                self._authenticated = True
                invite = self._build_invite(self.invite.uri, self.invite.body, cseq=2)
                invite.headers.add("Authorization" if response.status == 401 else "Proxy-Authorization", value)
                self.invite = invite
                self._send_invite()
                return True
        return False

    def _on_answer(self, response: SipResponse) -> None:
        server, invite, peer = self.server, self.invite, self.peer
        assert invite is not None
        assert peer is not None
        if self.call is not None:  # a retransmitted 200: our ACK was lost
            peer.send(self.call.dialog.ack(server.via(peer), _cseq(invite)))
            return
        try:
            dialog = Dialog.as_uac(invite, response, server.contact(peer))
        except SipParseError as exc:  # no usable Contact: nowhere to send the ACK or a BYE
            log.warning("call %s: unusable 200 OK: %s", self.call_id, exc.reason)
            self._fail(502, "the answer has no usable Contact")
            return
        peer.send(dialog.ack(server.via(peer), _cseq(invite)))
        try:
            negotiated = read_answer(parse_sdp(response.body))
        except (SipParseError, NoCommonCodec) as exc:
            log.warning("call %s: the 200 OK's SDP is unusable (%s); hanging up", self.call_id, exc)
            self._bye(dialog)
            self._fail(488, "the answer's media is unusable")  # run() releases the stream
            return
        outbound = self.outbound
        if outbound is None or outbound.finished:  # hung up while it rang: answered too late
            self._bye(dialog)
            server.spawn(self._release_stream())
            return
        start = CallStarted(
            call_id=self.call_id,
            stream_id=self.call_id,
            audio_format=ULAW_8K,  # the Call's (PendingLink's) format: the stream transcodes PCMA
            caller=self.callerid,
            number=dialog.remote.uri.user,
        )
        call = SipCall(server, invite, None, dialog, self.stream, negotiated, invite.body, start, peer=peer)
        self.call = call
        server.adopt(call)
        self.stream.begin(start)
        grant = StreamGrant(
            call_id=self.call_id,
            scenario=outbound.host.scenario_name,
            caller=self.callerid,
            number=start.number,
            outbound=outbound.key,
        )
        runtime = server.runtime
        runtime.streams_opened += 1
        session = CallSession(
            self.stream, runtime, runtime.streams_opened, SipCarrier(server.config, control=self), lambda _: grant
        )
        server.spawn(self._run_call(call, runtime, session))
        if self._final is not None and not self._final.done():
            self._final.set_result(response.status)

    async def _run_call(self, call: SipCall, runtime: Any, session: CallSession) -> None:
        try:
            await call.run(runtime, session)
        finally:
            # The Call keeps this object as its control: drop what it holds of the finished call,
            # so the Call, its OutboundCall and this are freed by reference counting.
            self.outbound = None
            self.call = self.stream = None

    def _bye(self, dialog: Dialog) -> None:
        assert self.peer is not None
        bye = dialog.request("BYE", self.server.via(self.peer))
        self.server.transactions.start_client(bye, self.peer, self.peer.address, lambda r: None, lambda: None)

    def _cancel(self) -> None:
        if self.invite is None or self.peer is None or self._cancelled:
            return
        self._cancelled = True
        cancel = cancel_for(self.invite)
        self.server.transactions.start_client(cancel, self.peer, self.peer.address, lambda r: None, lambda: None)

    def _fail(self, status: int, reason: str) -> None:
        if self.outbound is not None and self.call is None:
            self.outbound.fail(status, reason)
        if self._final is not None and not self._final.done():
            self._final.set_result(status)

    async def _release_stream(self) -> None:
        if self.stream is not None and self.call is None:
            await self.stream.aclose()


def _cseq(invite: SipRequest) -> int:
    return int((invite.headers.get("CSeq") or "1").split()[0])


async def _resolve(host: str, port: int) -> tuple[str, int]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=2)  # SOCK_DGRAM
    address = infos[0][4]
    return str(address[0]), int(address[1])
