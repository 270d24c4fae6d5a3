"""One SIP call: its dialog (and, inbound, its INVITE transaction), its RTP stream, its session.

The listener (server/sip_listener.py) admits an INVITE and makes a `SipCall`; a call the bridge
placed (server/sip_outbound.py) becomes one when its 200 OK arrives, already answered. From then
the call's signalling lives here and its media and scenario in the ordinary `CallSession` over the
RTP stream (server/sip_media.py's `RtpStream`, a `MediaTransport`). The two meet in few places:

- routing (the session's binding) runs just before the scenario's CallAlerting: 180 Ringing;
- `call.answer()` reaches `answer()` through the call's control: 200 OK with the SDP answer,
  retransmitted until the ACK (64·T1 without one: BYE);
- the scenario's `hangup()` (or any end of the session) closes the stream: BYE once answered, a
  final error before (404 no route, 603 declined);
- a BYE or CANCEL from the trunk hangs up the stream: the session ends as "caller hung up";
- re-INVITE reconfigures the stream (hold, codec change); INFO dtmf-relay injects a digit; REFER
  and its NOTIFYs carry `transferTo`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Final, Protocol

from telephony_bridge.carriers.base import CallStarted, DialFailed, DialRequest
from telephony_bridge.carriers.sip.dialog import Dialog, OutOfOrder, response_to
from telephony_bridge.carriers.sip.message import SipParseError, SipRequest, SipResponse
from telephony_bridge.carriers.sip.sdp import Negotiated, NoCommonCodec, answer_offer, parse_sdp, read_answer
from telephony_bridge.carriers.sip.transaction import InviteServerTransaction
from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.server.carrier_routes import run_session
from telephony_bridge.server.session import StreamRefused
from telephony_bridge.server.sip_transport import Peer, ServerEntry, Transactions
from telephony_bridge.server.stream_tokens import StreamGrant

__all__ = ["CallPhase", "RtpStreamLike", "SignallingHost", "SipCall"]

log = logging.getLogger("telephony_bridge.sip")

TRANSFER_TIMEOUT_S: Final = 32.0
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE"
DTMF_SIGNALS: Final = frozenset("0123456789*#ABCD")


class RtpStreamLike(Protocol):
    """What the call needs of the media side's `RtpStream` (the contract of server/sip_media.py)."""

    local_port: int
    on_closed: Callable[[], None] | None

    def configure(
        self, remote: tuple[str, int], payload_type: int, telephone_event_pt: int | None, direction: str
    ) -> None: ...

    def begin(self, start: CallStarted) -> None: ...

    def inject_dtmf(self, digit: str) -> None: ...

    def hang_up_by_peer(self) -> None: ...

    async def aclose(self) -> None: ...


class SignallingHost(Protocol):
    """What a call uses of its listener: the transactions, our own address, the route check."""

    @property
    def transactions(self) -> Transactions: ...

    def via(self, peer: Peer) -> str: ...

    def contact(self, peer: Peer) -> str: ...

    def route(self, number: str) -> str | None: ...

    def sdp_address(self, peer: Peer) -> str: ...

    def forget(self, call: SipCall) -> None: ...


class CallPhase(Enum):
    PROCEEDING = "proceeding"  # 100 sent
    RINGING = "ringing"  # 180 sent
    ANSWERED = "answered"  # 200 sent (ACK awaited or received)
    ENDING = "ending"  # BYE sent or received, or a final error sent
    ENDED = "ended"


class SipCall:
    """The call's signalling, and its `CallControl` (answer, hangup, transfer) for the scenario."""

    def __init__(
        self,
        host: SignallingHost,
        invite: SipRequest,
        entry: ServerEntry | None,  # the INVITE's server transaction; None for a call we placed
        dialog: Dialog,
        stream: RtpStreamLike,
        negotiated: Negotiated | None,  # None: an offerless INVITE, negotiated by the ACK
        answer_sdp: bytes,  # ours: the answer, or the offer of an offerless INVITE
        start: CallStarted,
        peer: Peer | None = None,  # where the dialog's requests go, for a call we placed
    ) -> None:
        self.host = host
        self.invite = invite
        self.invite_entry = entry
        if entry is not None:
            peer = entry.peer
        if peer is None:
            raise ValueError("a SIP call needs its INVITE's transaction or the peer it placed the call to")
        self.peer: Peer = peer
        self.dialog = dialog
        self.stream = stream
        self.negotiated = negotiated
        self.answer_sdp = answer_sdp
        self.start = start
        self.call_id = start.call_id
        self.phase = CallPhase.PROCEEDING if entry is not None else CallPhase.ANSWERED
        self.reject_status = (603, "Decline")  # the final answer if the session ends unanswered
        self._acked = entry is None  # a call we placed: we sent the ACK
        self._bye_pending = False
        self._reinvite_entry: ServerEntry | None = None  # a re-INVITE answered 200, its ACK awaited
        self.session: Any = None
        self._transfer: asyncio.Future[tuple[int, str]] | None = None
        self._sdp_version = 1
        stream.on_closed = self.session_closed
        if negotiated is not None:
            self._configure(negotiated)

    # --- the session's side ---------------------------------------------------------------------
    def binding(self, start: CallStarted) -> StreamGrant:
        """The session's binding: routed by the admitted INVITE's number; then 180 Ringing, as the
        scenario's CallAlerting runs right after."""
        scenario = self.host.route(start.number)
        if scenario is None:
            self.reject_status = (404, "Not Found")
            raise StreamRefused(f"number {start.number or '(none)'} matches no route")
        if self.phase is CallPhase.PROCEEDING:
            self.phase = CallPhase.RINGING
            self._respond_invite(180, "Ringing")
        return StreamGrant(call_id=start.call_id, scenario=scenario, caller=start.caller, number=start.number)

    def answer(self, call_id: str = "") -> None:
        """call.answer(): 200 OK with the SDP answer (retransmitted until the ACK)."""
        if self.phase not in (CallPhase.PROCEEDING, CallPhase.RINGING) or self.invite_entry is None:
            return
        self.phase = CallPhase.ANSWERED
        self.invite_entry.on_timeout = self._no_ack
        self._respond_invite(200, "OK", self.answer_sdp, _session_timer(self.invite))

    async def hangup(self, call_id: str = "") -> None:
        self.session_closed()

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        """Blind transfer: REFER, then the NOTIFYs' sipfrag until a final status (RFC 3515)."""
        if self.phase is not CallPhase.ANSWERED:
            raise RuntimeError("the call is not connected")
        target = to if to.startswith(("sip:", "sips:", "tel:")) else f"sip:{to}@{self.peer.address[0]}"
        loop = asyncio.get_running_loop()
        self._transfer = loop.create_future()
        refer = self.dialog.request("REFER", self.host.via(self.peer))
        refer.headers.add("Refer-To", f"<{target}>")
        refer.headers.add("Referred-By", self.host.contact(self.peer))
        accepted: asyncio.Future[int] = loop.create_future()

        def on_response(response: SipResponse) -> None:
            if response.status >= 200 and not accepted.done():
                accepted.set_result(response.status)

        def on_timeout() -> None:
            if not accepted.done():
                accepted.set_result(408)

        self.host.transactions.start_client(refer, self.peer, self.peer.address, on_response, on_timeout)
        try:
            async with asyncio.timeout(TRANSFER_TIMEOUT_S):
                status = await accepted
                if status >= 300:
                    raise RuntimeError(f"REFER refused: {status}")
                final, reason = await self._transfer
        except TimeoutError:
            raise RuntimeError("no final NOTIFY for the transfer") from None
        finally:
            self._transfer = None
        if not 200 <= final < 300:
            raise RuntimeError(f"transfer failed: {final} {reason}")

    async def dial(self, request: DialRequest) -> str:
        raise DialFailed(501, "an inbound call's control does not dial (VoxEngine.callSIP does)")

    def session_closed(self) -> None:
        """The session closed the stream (hang-up, routing refusal, any end): finish the signalling."""
        if self.phase in (CallPhase.PROCEEDING, CallPhase.RINGING):
            status, reason = self.reject_status
            self.phase = CallPhase.ENDING
            self._respond_invite(status, reason)
        elif self.phase is CallPhase.ANSWERED:
            self.phase = CallPhase.ENDING
            if self._acked:
                self._send_bye()
            else:  # RFC 3261 §15: no BYE before the ACK of our 200 (or its transaction's timeout)
                self._bye_pending = True

    def _send_bye(self) -> None:
        bye = self.dialog.request("BYE", self.host.via(self.peer))
        self.host.transactions.start_client(bye, self.peer, self.peer.address, lambda response: None, lambda: None)

    async def run(self, runtime: Any, session: Any) -> None:
        """Run the session with the runtime's bookkeeping (as every listener does), then release."""
        self.session = session
        try:
            await run_session(runtime, session)
        finally:
            self.session_closed()  # idempotent: a session that ended without closing the stream
            self.phase = CallPhase.ENDED
            self.stream.on_closed = None
            await self.stream.aclose()
            self.session = None
            if not self._bye_pending:  # else the dialog stays until the ACK (or its timeout) lets the BYE go
                self._release()

    def _release(self) -> None:
        """Out of the listener's tables, and no callback of this call left anywhere (cycles)."""
        if self.invite_entry is not None:
            self.invite_entry.on_timeout = None
        self.host.forget(self)

    # --- requests from the trunk --------------------------------------------------------------
    def on_ack(self, ack: SipRequest | None = None) -> None:
        if self.negotiated is None and self.phase is CallPhase.ANSWERED:
            self._answer_in_ack(ack)
        # The ACK of a re-INVITE's 200 (its CSeq) ends that transaction's retransmissions; else the first INVITE's.
        reinvite, self._reinvite_entry = self._reinvite_entry, None
        entry = self.invite_entry
        if reinvite is not None and ack is not None and _cseq_number(ack) == _cseq_number(reinvite.transaction.request):
            entry = reinvite
        if entry is not None and isinstance(entry.transaction, InviteServerTransaction):
            self.host.transactions.run(entry, entry.transaction.acknowledged())
        self._confirmed()

    def shutdown(self) -> None:
        """The server is stopping: end the call now, a held-back BYE included."""
        if self.session is not None:
            self.session.end(CallEnd.SHUTDOWN)
        else:
            self._confirmed()

    def _confirmed(self) -> None:
        """The 200 was ACKed (or its retransmissions timed out): a BYE held back may go now."""
        if self._acked:
            return
        self._acked = True
        if self._bye_pending:
            self._bye_pending = False
            self._send_bye()
            if self.phase is CallPhase.ENDED:
                self._release()

    def on_cancel(self) -> bool:
        """CANCEL before the final response: 487 to the INVITE, the call ends. False: too late."""
        if self.phase not in (CallPhase.PROCEEDING, CallPhase.RINGING):
            return False
        self.phase = CallPhase.ENDING
        self._respond_invite(487, "Request Terminated")
        self.stream.hang_up_by_peer()
        return True

    def on_request(self, request: SipRequest, entry: ServerEntry) -> None:
        """An in-dialog request other than ACK and CANCEL."""
        try:
            self.dialog.accept(request)
        except OutOfOrder:
            self._respond(entry, request, 500, "Server Internal Error")
            return
        method = request.method
        if method == "BYE":
            self._respond(entry, request, 200, "OK")
            if self.phase is not CallPhase.ENDED:
                self.phase = CallPhase.ENDING
            self.stream.hang_up_by_peer()
        elif method in ("INVITE", "UPDATE"):
            # UPDATE (RFC 3311): the same offer/answer without the three-way handshake; trunks
            # refresh session timers (RFC 4028) with it or with a re-INVITE.
            self._reinvite(request, entry)
        elif method == "INFO":
            self._info(request, entry)
        elif method == "NOTIFY":
            self._notify(request, entry)
        elif method == "OPTIONS":
            self._respond(entry, request, 200, "OK", allow=True)
        else:
            self._respond(entry, request, 405, "Method Not Allowed", allow=True)

    def _answer_in_ack(self, ack: SipRequest | None) -> None:
        """The SDP answer of an offerless INVITE, in the ACK of our 200 (RFC 3264 §5): no usable
        answer ends the call (BYE), as there is no media to run."""
        try:
            if ack is None or not ack.body:
                raise NoCommonCodec("no SDP answer in the ACK")
            self.negotiated = read_answer(parse_sdp(ack.body))
        except (SipParseError, NoCommonCodec) as exc:
            log.warning("call %s: the ACK's SDP answer is unusable (%s); hanging up", self.call_id, exc)
            self.session_closed()
            self.stream.hang_up_by_peer()
            return
        self._configure(self.negotiated)

    def _reinvite(self, request: SipRequest, entry: ServerEntry) -> None:
        """A re-INVITE or an UPDATE: a new offer (hold, resume, codec), or none (a refresh)."""
        is_invite = request.method == "INVITE"
        if not request.body:
            if is_invite:  # a refresh: our current answer, as the offer of this 200 (RFC 3264 §8)
                self._reinvite_entry = entry
                self._respond(entry, request, 200, "OK", self.answer_sdp)
            else:
                self._respond(entry, request, 200, "OK")
            return
        try:
            self._sdp_version += 1
            negotiated, sdp = answer_offer(
                parse_sdp(request.body), self._sdp_address(), self.stream.local_port, self._session_id()
            )
        except NoCommonCodec:
            self._respond(entry, request, 488, "Not Acceptable Here")
            return
        except SipParseError as exc:
            log.warning("call %s: %s with bad SDP: %s", self.call_id, request.method, exc.reason)
            self._respond(entry, request, 400, "Bad SDP")
            return
        self.negotiated, self.answer_sdp = negotiated, sdp
        self._configure(negotiated)
        if is_invite:
            self._reinvite_entry = entry  # its 200 is retransmitted until the ACK comes
        self._respond(entry, request, 200, "OK", sdp)

    def _info(self, request: SipRequest, entry: ServerEntry) -> None:
        content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type == "application/dtmf-relay":
            digit = _dtmf_relay_signal(request.body)
            if digit is None:
                self._respond(entry, request, 400, "Bad dtmf-relay body")
                return
            self.stream.inject_dtmf(digit)
        self._respond(entry, request, 200, "OK")

    def _notify(self, request: SipRequest, entry: ServerEntry) -> None:
        self._respond(entry, request, 200, "OK")
        if not (request.headers.get("Event") or "").lower().startswith("refer"):
            return
        line = request.body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isascii() and parts[1].isdigit():
            status = int(parts[1])
            if status >= 200 and self._transfer is not None and not self._transfer.done():
                self._transfer.set_result((status, parts[2] if len(parts) > 2 else ""))

    # --- helpers --------------------------------------------------------------------------------
    def _no_ack(self) -> None:
        log.warning("call %s: no ACK for the 200 OK within 32 s; hanging up", self.call_id)
        self._confirmed()  # the transaction is over: a held-back BYE goes now
        self.session_closed()
        self.stream.hang_up_by_peer()

    def _configure(self, negotiated: Negotiated) -> None:
        self.stream.configure(
            remote=(negotiated.remote_host, negotiated.remote_port),
            payload_type=negotiated.payload_type,
            telephone_event_pt=negotiated.telephone_event_pt,
            direction=negotiated.direction.value,
        )

    def _sdp_address(self) -> str:
        return self.host.sdp_address(self.peer)

    def _session_id(self) -> int:
        return int(time.time()) + self._sdp_version

    def _respond_invite(
        self, status: int, reason: str, body: bytes = b"", extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        if self.invite_entry is not None:
            self._respond(self.invite_entry, self.invite, status, reason, body, extra=extra)

    def _respond(
        self,
        entry: ServerEntry,
        request: SipRequest,
        status: int,
        reason: str,
        body: bytes = b"",
        allow: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        response = response_to(request, status, reason, to_tag=self.dialog.local.tag if status > 100 else None)
        for name, value in extra:
            response.headers.add(name, value)
        if 100 < status < 300 and request.method in ("INVITE", "UPDATE"):  # target refresh requests
            response.headers.add("Contact", self.host.contact(self.peer))
        if allow:
            response.headers.add("Allow", ALLOW)
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        self.host.transactions.respond(entry, response)


def _session_timer(invite: SipRequest) -> tuple[tuple[str, str], ...]:
    """RFC 4028 in the 200: when the trunk asked for a session timer (and supports them), it stays
    the refresher (`refresher=uac`); the bridge answers its refreshes but never sends one."""
    expires = (invite.headers.get("Session-Expires") or "").split(";", 1)[0].strip()
    supported = {item.strip().lower() for item in invite.headers.values("Supported")}
    if "timer" not in supported or not (expires.isascii() and expires.isdigit()) or len(expires) > 7:
        return ()
    return (("Session-Expires", f"{int(expires)};refresher=uac"), ("Require", "timer"))


def _cseq_number(request: SipRequest) -> str:
    return (request.headers.get("CSeq") or "").split(" ", 1)[0]


def _dtmf_relay_signal(body: bytes) -> str | None:
    """`Signal=5\\r\\nDuration=160` → "5" (RFC-less but universal: Cisco's dtmf-relay)."""
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            value = value.strip().upper()
            return value if len(value) == 1 and value in DTMF_SIGNALS else None
    return None


def x_headers(request: SipRequest) -> Mapping[str, str]:
    """The INVITE's `X-*` headers: the call's custom data (names as sent, first value of each)."""
    data: dict[str, str] = {}
    for name, value in request.headers:
        if name.lower().startswith("x-") and name not in data and len(data) < 50:
            data[name] = value[:1024]
    return data
