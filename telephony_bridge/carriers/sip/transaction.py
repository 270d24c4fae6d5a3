"""SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state), as pure state machines.

Each transaction takes inputs — a message from the peer, a response from the bridge, a timer that
fired — and returns actions: messages to send, timers to start (name and delay: the asyncio layer
runs them and feeds them back), responses to hand to the bridge, and the end. Nothing here reads a
clock or a socket. Over a reliable transport (TCP) the retransmission timers are never started.

Retransmissions are absorbed here: a request whose (branch, method) matches a live server
transaction gets the last response again and never reaches the bridge twice (`TransactionTable`).
The 2xx to an INVITE is retransmitted by the server transaction too (T1 doubling up to T2) until
the ACK — a separate transaction, matched by the dialog layer, which calls `acknowledged()`; with
no ACK after 64·T1 it reports `TimedOut` and the bridge ends the call with a BYE.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from telephony_bridge.carriers.sip.fields import parse_cseq, parse_via
from telephony_bridge.carriers.sip.message import Headers, SipParseError, SipRequest, SipResponse

__all__ = [
    "T1",
    "T2",
    "T4",
    "Action",
    "Deliver",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "Send",
    "StartTimer",
    "Terminated",
    "TimedOut",
    "Timer",
    "TransactionKey",
    "TxState",
    "ack_for",
    "cancel_for",
    "server_key",
]

T1: Final = 0.5  # RTT estimate
T2: Final = 4.0  # cap on non-INVITE and 2xx retransmission intervals
T4: Final = 5.0  # how long a message may stay in the network
MAGIC_COOKIE: Final = "z9hG4bK"


class Timer(Enum):
    A = "A"  # INVITE client: retransmit the request
    B = "B"  # INVITE client: give up
    D = "D"  # INVITE client: absorb final-response retransmissions
    E = "E"  # non-INVITE client: retransmit
    F = "F"  # non-INVITE client: give up
    G = "G"  # INVITE server: retransmit the final response (2xx too: RFC 3261 §13.3.1.4)
    H = "H"  # INVITE server: give up waiting for the ACK
    I = "I"  # noqa: E741  INVITE server: absorb ACK retransmissions
    J = "J"  # non-INVITE server: absorb request retransmissions
    K = "K"  # non-INVITE client: absorb response retransmissions
    M = "M"  # INVITE client (RFC 6026): absorb 2xx retransmissions


class TxState(Enum):
    TRYING = "trying"
    CALLING = "calling"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Send:
    message: SipRequest | SipResponse


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer: Timer
    delay_s: float


@dataclass(frozen=True, slots=True)
class Deliver:
    """A response for the bridge (client transactions)."""

    response: SipResponse


@dataclass(frozen=True, slots=True)
class TimedOut:
    """No answer (client: treat as 408) or no ACK for a 2xx (server: end the call)."""


@dataclass(frozen=True, slots=True)
class Terminated:
    """Drop the transaction and its timers."""


Action = Send | StartTimer | Deliver | TimedOut | Terminated
TransactionKey = tuple[str, str, str]  # branch, sent-by, method (ACK counted as INVITE)


def server_key(request: SipRequest) -> TransactionKey:
    """The transaction a request belongs to (RFC 3261 §17.2.3); SipParseError on a bad Via.
    A branch without the magic cookie (RFC 2543 peers) is combined with Call-ID and CSeq number."""
    via = parse_via(request.headers.values("Via")[0]) if request.headers.values("Via") else None
    if via is None:
        raise SipParseError("no Via")
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if not branch.startswith(MAGIC_COOKIE):
        cseq = parse_cseq(request.headers.get("CSeq") or "")
        branch = f"{branch}|{request.headers.get('Call-ID')}|{cseq.number}"
    return branch, f"{via.host}:{via.port or ''}", method


class _Transaction:
    def __init__(self, reliable: bool) -> None:
        self.reliable = reliable
        self.state = TxState.TRYING
        self._interval = T1

    def _retransmit_timer(self, timer: Timer, cap: float | None) -> list[Action]:
        if self.reliable:
            return []
        delay = self._interval
        self._interval = delay * 2 if cap is None else min(delay * 2, cap)
        return [StartTimer(timer, delay)]

    def _end(self) -> list[Action]:
        self.state = TxState.TERMINATED
        return [Terminated()]


class InviteServerTransaction(_Transaction):
    def __init__(self, request: SipRequest, reliable: bool) -> None:
        super().__init__(reliable)
        self.request = request
        self.state = TxState.PROCEEDING
        self.last_response: SipResponse | None = None

    def respond(self, response: SipResponse) -> list[Action]:
        if self.state is not TxState.PROCEEDING:
            return []  # a final response went already
        self.last_response = response
        actions: list[Action] = [Send(response)]
        if response.status < 200:
            return actions
        self.state = TxState.ACCEPTED if response.status < 300 else TxState.COMPLETED
        self._interval = T1
        actions += self._retransmit_timer(Timer.G, T2)
        actions.append(StartTimer(Timer.H, 64 * T1))
        return actions

    def on_request(self, request: SipRequest) -> list[Action]:
        """A retransmitted INVITE, or the ACK of a non-2xx final response."""
        if request.method == "ACK":
            if self.state is TxState.COMPLETED:
                self.state = TxState.CONFIRMED
                return self._end() if self.reliable else [StartTimer(Timer.I, T4)]
            return []
        if self.last_response is not None and self.state in (TxState.PROCEEDING, TxState.ACCEPTED, TxState.COMPLETED):
            return [Send(self.last_response)]
        return []

    def acknowledged(self) -> list[Action]:
        """The ACK of our 2xx arrived (matched by its dialog): stop retransmitting."""
        if self.state is TxState.ACCEPTED:
            return self._end()
        return []

    def on_timer(self, timer: Timer) -> list[Action]:
        if timer is Timer.G and self.state in (TxState.ACCEPTED, TxState.COMPLETED) and self.last_response:
            return [Send(self.last_response), *self._retransmit_timer(Timer.G, T2)]
        if timer is Timer.H and self.state in (TxState.ACCEPTED, TxState.COMPLETED):
            timed_out: list[Action] = [TimedOut()] if self.state is TxState.ACCEPTED else []
            return timed_out + self._end()
        if timer is Timer.I and self.state is TxState.CONFIRMED:
            return self._end()
        return []


class NonInviteServerTransaction(_Transaction):
    def __init__(self, request: SipRequest, reliable: bool) -> None:
        super().__init__(reliable)
        self.request = request
        self.last_response: SipResponse | None = None

    def respond(self, response: SipResponse) -> list[Action]:
        if self.state in (TxState.COMPLETED, TxState.TERMINATED):
            return []
        self.last_response = response
        if response.status < 200:
            self.state = TxState.PROCEEDING
            return [Send(response)]
        self.state = TxState.COMPLETED
        if self.reliable:
            return [Send(response), *self._end()]
        return [Send(response), StartTimer(Timer.J, 64 * T1)]

    def on_request(self, request: SipRequest) -> list[Action]:
        if self.last_response is not None and self.state in (TxState.PROCEEDING, TxState.COMPLETED):
            return [Send(self.last_response)]
        return []

    def on_timer(self, timer: Timer) -> list[Action]:
        if timer is Timer.J and self.state is TxState.COMPLETED:
            return self._end()
        return []


def ack_for(request: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): inside the INVITE's transaction."""
    headers = Headers()
    headers.add("Via", request.headers.values("Via")[0])
    for route in request.headers.values("Route"):
        headers.add("Route", route)
    for name in ("From", "Call-ID"):
        headers.add(name, request.headers.get(name) or "")
    headers.add("To", response.headers.get("To") or request.headers.get("To") or "")
    headers.add("CSeq", f"{parse_cseq(request.headers.get('CSeq') or '').number} ACK")
    headers.add("Max-Forwards", "70")
    return SipRequest("ACK", request.uri, headers)


def cancel_for(request: SipRequest) -> SipRequest:
    """CANCEL of an INVITE we sent (RFC 3261 §9.1): same branch, URI, Call-ID, From, To, number."""
    headers = Headers()
    headers.add("Via", request.headers.values("Via")[0])
    for route in request.headers.values("Route"):
        headers.add("Route", route)
    for name in ("From", "To", "Call-ID"):
        headers.add(name, request.headers.get(name) or "")
    headers.add("CSeq", f"{parse_cseq(request.headers.get('CSeq') or '').number} CANCEL")
    headers.add("Max-Forwards", "70")
    return SipRequest("CANCEL", request.uri, headers)


class InviteClientTransaction(_Transaction):
    def __init__(self, request: SipRequest, reliable: bool) -> None:
        super().__init__(reliable)
        self.request = request
        self.state = TxState.CALLING
        self._ack: SipRequest | None = None

    def start(self) -> list[Action]:
        return [Send(self.request), *self._retransmit_timer(Timer.A, None), StartTimer(Timer.B, 64 * T1)]

    def on_response(self, response: SipResponse) -> list[Action]:
        status = response.status
        if status < 200:
            if self.state in (TxState.CALLING, TxState.PROCEEDING):
                self.state = TxState.PROCEEDING
                return [Deliver(response)]
            return []
        if status < 300:
            if self.state in (TxState.CALLING, TxState.PROCEEDING):
                self.state = TxState.ACCEPTED
                return [Deliver(response), StartTimer(Timer.M, 64 * T1)]
            if self.state is TxState.ACCEPTED:
                return [Deliver(response)]  # a retransmitted 2xx: the bridge ACKs it again
            return []
        if self.state in (TxState.CALLING, TxState.PROCEEDING):
            self.state = TxState.COMPLETED
            self._ack = ack_for(self.request, response)
            timer: list[Action] = self._end() if self.reliable else [StartTimer(Timer.D, 32.0)]
            return [Send(self._ack), Deliver(response), *timer]
        if self.state is TxState.COMPLETED and self._ack is not None:
            return [Send(self._ack)]
        return []

    def on_timer(self, timer: Timer) -> list[Action]:
        if timer is Timer.A and self.state is TxState.CALLING:
            return [Send(self.request), *self._retransmit_timer(Timer.A, None)]
        if timer is Timer.B and self.state in (TxState.CALLING, TxState.PROCEEDING):
            return [TimedOut(), *self._end()]
        if (timer is Timer.D and self.state is TxState.COMPLETED) or (
            timer is Timer.M and self.state is TxState.ACCEPTED
        ):
            return self._end()
        return []


class NonInviteClientTransaction(_Transaction):
    def __init__(self, request: SipRequest, reliable: bool) -> None:
        super().__init__(reliable)
        self.request = request

    def start(self) -> list[Action]:
        return [Send(self.request), *self._retransmit_timer(Timer.E, T2), StartTimer(Timer.F, 64 * T1)]

    def on_response(self, response: SipResponse) -> list[Action]:
        if self.state not in (TxState.TRYING, TxState.PROCEEDING):
            return []
        if response.status < 200:
            self.state = TxState.PROCEEDING
            return [Deliver(response)]
        self.state = TxState.COMPLETED
        if self.reliable:
            return [Deliver(response), *self._end()]
        return [Deliver(response), StartTimer(Timer.K, T4)]

    def on_timer(self, timer: Timer) -> list[Action]:
        if timer is Timer.E and self.state in (TxState.TRYING, TxState.PROCEEDING):
            if self.state is TxState.PROCEEDING:
                self._interval = T2
            return [Send(self.request), *self._retransmit_timer(Timer.E, T2)]
        if timer is Timer.F and self.state in (TxState.TRYING, TxState.PROCEEDING):
            return [TimedOut(), *self._end()]
        if timer is Timer.K and self.state is TxState.COMPLETED:
            return self._end()
        return []


ServerTransaction = InviteServerTransaction | NonInviteServerTransaction
ClientTransaction = InviteClientTransaction | NonInviteClientTransaction


def client_key(message: SipRequest | SipResponse) -> tuple[str, str]:
    """A client transaction's key (RFC 3261 §17.1.3): top Via branch and CSeq method."""
    vias = message.headers.values("Via")
    if not vias:
        raise SipParseError("no Via")
    return parse_via(vias[0]).branch, parse_cseq(message.headers.get("CSeq") or "").method
