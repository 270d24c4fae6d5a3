"""SIP dialogs (RFC 3261 §12), sans-I/O: who the call is with, and the requests inside it.

A dialog is identified by Call-ID, our tag and the peer's tag. It keeps the peer's target (its
Contact), the route set (the Record-Route of the dialog-creating message, reversed for a UAC), our
CSeq counter (each request we send numbers one more) and the peer's last CSeq (a request numbered
lower is out of order: 500). `DialogTable` finds the dialog of an in-dialog request; a request for
no dialog gets 481 from the listener.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from telephony_bridge.carriers.sip.fields import NameAddr, parse_cseq, parse_name_addr
from telephony_bridge.carriers.sip.message import Headers, SipParseError, SipRequest, SipResponse

__all__ = [
    "Dialog",
    "DialogId",
    "DialogState",
    "DialogTable",
    "OutOfOrder",
    "new_branch",
    "new_tag",
    "response_to",
]


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class OutOfOrder(Exception):
    """An in-dialog request with a CSeq lower than the last one (RFC 3261 §12.2.2: 500)."""


DialogId = tuple[str, str, str]  # Call-ID, local tag, remote tag


def response_to(request: SipRequest, status: int, reason: str, to_tag: str | None = None) -> SipResponse:
    """A response carrying the request's Via, From, To (with our tag when given), Call-ID and CSeq
    (RFC 3261 §8.2.6.2). The headers are copied as received, so a 400 can answer a request whose
    CSeq the bridge could not read."""
    headers = Headers()
    for via in request.headers.lines("Via"):
        headers.add("Via", via)
    headers.add("From", request.headers.get("From") or "")
    to = request.headers.get("To") or ""
    if to_tag and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    headers.add("To", to)
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", request.headers.get("CSeq") or "")
    return SipResponse(status, reason, headers)


@dataclass(slots=True)
class Dialog:
    call_id: str
    local: NameAddr  # our From (UAC) or To (UAS), with our tag
    remote: NameAddr  # the peer's, with its tag
    remote_target: str  # the peer's Contact URI: where in-dialog requests go
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None
    contact: str = ""  # ours, for requests we send
    state: DialogState = DialogState.EARLY

    @property
    def id(self) -> DialogId:
        return self.call_id, self.local.tag or "", self.remote.tag or ""

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str, contact: str) -> Dialog:
        """The dialog an INVITE we answer creates (its route set: the INVITE's Record-Route, in order)."""
        cseq = parse_cseq(invite.headers.get("CSeq") or "")
        return cls(
            call_id=invite.headers.get("Call-ID") or "",
            local=parse_name_addr(invite.headers.get("To") or "").with_tag(local_tag),
            remote=parse_name_addr(invite.headers.get("From") or ""),
            remote_target=_contact_uri(invite),
            route_set=list(invite.headers.values("Record-Route")),
            local_cseq=secrets.randbelow(2**20) + 1,
            remote_cseq=cseq.number,
            contact=contact,
        )

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse, contact: str) -> Dialog:
        """The dialog a 2xx (or 1xx with a tag) to our INVITE creates (route set reversed)."""
        return cls(
            call_id=invite.headers.get("Call-ID") or "",
            local=parse_name_addr(invite.headers.get("From") or ""),
            remote=parse_name_addr(response.headers.get("To") or ""),
            remote_target=_contact_uri(response),
            route_set=list(reversed(response.headers.values("Record-Route"))),
            local_cseq=parse_cseq(invite.headers.get("CSeq") or "").number,
            contact=contact,
        )

    def accept(self, request: SipRequest) -> None:
        """An in-dialog request from the peer: checks and records its CSeq (OutOfOrder when lower).
        ACK and CANCEL reuse the INVITE's number and are not checked."""
        if request.method in ("ACK", "CANCEL"):
            return
        number = parse_cseq(request.headers.get("CSeq") or "").number
        if self.remote_cseq is not None and number <= self.remote_cseq:
            raise OutOfOrder(f"CSeq {number} after {self.remote_cseq}")
        self.remote_cseq = number
        contact = request.headers.values("Contact")
        if request.method == "INVITE" and contact:  # a re-INVITE may move the target
            self.remote_target = str(parse_name_addr(contact[0]).uri)

    def request(self, method: str, via: str, *, body: bytes = b"", content_type: str | None = None) -> SipRequest:
        """A new in-dialog request (not ACK): next CSeq, the route set, to the peer's target."""
        self.local_cseq += 1
        return self._build(method, via, self.local_cseq, body, content_type)

    def ack(self, via: str, cseq: int) -> SipRequest:
        """The ACK of a 2xx to our INVITE numbered `cseq` (its own transaction, RFC 3261 §13.2.2.4)."""
        return self._build("ACK", via, cseq, b"", None)

    def _build(self, method: str, via: str, cseq: int, body: bytes, content_type: str | None) -> SipRequest:
        headers = Headers()
        headers.add("Via", via)
        for route in self.route_set:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local))
        headers.add("To", str(self.remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if self.contact:
            headers.add("Contact", self.contact)
        if content_type:
            headers.add("Content-Type", content_type)
        return SipRequest(method, self.remote_target, headers, body)


def _contact_uri(message: SipRequest | SipResponse) -> str:
    contacts = message.headers.values("Contact")
    if not contacts:
        raise SipParseError("no Contact")
    return str(parse_name_addr(contacts[0]).uri)


class DialogTable:
    """The dialogs in progress, by id. `find` is how an in-dialog request reaches its call."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def add(self, dialog: Dialog) -> None:
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.id, None)

    def find(self, message: SipRequest) -> Dialog | None:
        """The dialog of a request from the peer: To tag is ours, From tag is theirs."""
        try:
            local = parse_name_addr(message.headers.get("To") or "").tag
            remote = parse_name_addr(message.headers.get("From") or "").tag
        except SipParseError:
            return None
        if not local:
            return None
        return self._dialogs.get((message.headers.get("Call-ID") or "", local, remote or ""))
