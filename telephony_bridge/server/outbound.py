"""Outbound calls: `VoxEngine.callPSTN` placing a call through the carrier, and its stream finding
the `Call` that waits for it.

A scenario's `callPSTN(number, callerid, {amd})` returns a `Call` at once, as Voximplant's does. The
call is placed through the carrier's control API (`CallControl.dial`) with two URLs of the bridge,
each naming the call by a random key of this registry: the **outbound answer** (the carrier requests
it when the callee answers, after answering-machine detection where asked) and the **status
callback** (initiated, ringing, answered, completed). Both are authenticated like the answer
endpoint (the carrier's signature, failing closed when its secret is configured).

The outbound answer is where the stream gets bound, exactly as an inbound one: a single-use stream
token (server/stream_tokens.py) over the carrier's call id, which also names this registry's key.
The stream that presents it does not start the scenario: it *joins* the session that placed the
call (`OutboundCall.attach`), whose `Call` then gets the stream's media link and fires `Connected`
(with `amd`, the detection's result). The call's media link is a `PendingLink` until then.

How it ends: the stream's end fires `Disconnected {reason, duration}` (the stream session's
teardown); a call that never connected ends with `Failed {code, reason}` — the carrier refused to
place it (its code and reason), or the status callback said busy (486), no answer (480), canceled
(487) or failed (the SIP code reported, else 500); a call without any answer within the ring
timeout and a grace ends `Failed 408`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from telephony_bridge.audio.formats import ULAW_8K, AudioFormat
from telephony_bridge.carriers.base import (
    CallControl,
    CallStatus,
    CallStatusUpdate,
    Capabilities,
    Carrier,
    DialFailed,
    DialRequest,
)
from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.voxengine.call import Call
from telephony_bridge.voxengine.events import CallState

if TYPE_CHECKING:
    from telephony_bridge.server.runtime import BridgeRuntime
    from telephony_bridge.voxengine.playout import CarrierLink

__all__ = ["OUTBOUND_ANSWER_PATH", "STATUS_PATH", "Dialer", "OutboundCall", "PendingLink"]

log = logging.getLogger("telephony_bridge.call")

OUTBOUND_ANSWER_PATH: Final = "/outbound-answer"
STATUS_PATH: Final = "/call-status"
CALL_KEY_PARAMETER: Final = "call"  # the query parameter of both URLs naming the outbound call
RING_TIMEOUT_S: Final = 60  # how long the carrier lets the callee's phone ring
ANSWER_GRACE_S: Final = 30.0  # beyond the ring timeout, for the carrier to report or the stream to arrive
SID_WAIT_S: Final = 10.0  # a hang-up before the carrier returned the call's id waits this long for it
# E.164 (what a PSTN call takes): a plus and up to 15 digits. Anything else is the scenario's bug.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# Failed codes for a call the carrier reports as never connected (SIP-like, as Voximplant's).
_FAILED = {
    CallStatus.BUSY: (486, "busy"),
    CallStatus.NO_ANSWER: (480, "no answer"),
    CallStatus.CANCELED: (487, "canceled"),
    CallStatus.FAILED: (500, "call failed"),
    CallStatus.COMPLETED: (480, "ended before its media stream started"),
}


class ScenarioHost(Protocol):
    """The session that places calls (server/scenario_sessions.py), as the dialer sees it."""

    label: str
    scenario_name: str
    session_id: str
    vox: Any
    tasks: Any  # TaskOwner

    def now_ms(self) -> float: ...
    def call_placed(self, outbound: OutboundCall) -> None: ...
    def call_finished(self, outbound: OutboundCall) -> None: ...


class StreamHost(Protocol):
    """The media stream's session (server/session.py) once an outbound call's stream joined."""

    def end(self, kind: CallEnd, detail: str | None = None, code: int | None = None) -> None: ...
    def hangup_requested(self, kind: CallEnd) -> None: ...


class PendingLink:
    """An outbound call's side of the carrier before its stream exists: the format and capabilities
    are the carrier's, sends go nowhere until the stream's link is bound (nothing plays to a phone
    that has not answered), then straight to it."""

    __slots__ = ("audio_format", "capabilities", "target")

    def __init__(self, capabilities: Capabilities, audio_format: AudioFormat) -> None:
        self.capabilities = capabilities
        self.audio_format = audio_format
        self.target: CarrierLink | None = None

    async def send_media(self, audio: bytes) -> None:
        if self.target is not None:
            await self.target.send_media(audio)

    async def send_mark(self, name: str) -> None:
        if self.target is not None:
            await self.target.send_mark(name)

    async def send_clear(self) -> None:
        if self.target is not None:
            await self.target.send_clear()

    async def send_digits(self, digits: str) -> None:
        """DTMF out (where the carrier can: `capabilities.dtmf_out`), once the stream is bound."""
        send = getattr(self.target, "send_digits", None)
        if send is not None:
            await send(digits)


class _OutboundControl:
    """The Call's control API: the carrier's, with the carrier's call id once it is known."""

    def __init__(self, outbound: OutboundCall, control: CallControl) -> None:
        self._outbound = outbound
        self._control = control

    async def hangup(self, call_id: str) -> None:
        sid = await self._outbound.carrier_sid(SID_WAIT_S)
        if sid is not None:
            await self._control.hangup(sid)

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        sid = await self._outbound.carrier_sid(SID_WAIT_S)
        if sid is None:
            raise RuntimeError("the call has not been placed")
        await self._control.transfer(sid, to, caller_id)

    async def dial(self, request: DialRequest) -> str:
        raise NotImplementedError("a call does not dial")


class OutboundCall:
    """One call a scenario placed: its `Call`, its carrier id once known, its stream once joined."""

    call: Call  # set by the dialer right after (the Call's hooks are this object's methods)

    def __init__(self, key: str, host: ScenarioHost, runtime: BridgeRuntime, link: PendingLink, amd: bool) -> None:
        self.key = key
        self.host = host
        self.runtime = runtime
        self.link = link
        self.amd = amd
        self.call_sid: str | None = None
        self.stream: StreamHost | None = None
        self.answered_by: str | None = None
        self.finished = False
        self._sid_known = asyncio.Event()

    def __repr__(self) -> str:
        return f"<OutboundCall {self.call_sid or self.key[:6]} {self.call.state()}>"

    async def carrier_sid(self, timeout_s: float) -> str | None:
        if self.call_sid is None and not self.finished:
            try:
                await asyncio.wait_for(self._sid_known.wait(), timeout_s)
            except TimeoutError:
                pass
        return self.call_sid

    # --- placing it -------------------------------------------------------------------------
    async def dial(self, control: CallControl, request: DialRequest) -> None:
        try:
            sid = await control.dial(request)
        except DialFailed as exc:
            log.info("%s: call to %s refused by the carrier: %s", self.host.label, request.to, exc)
            self.fail(exc.code, exc.reason, carrierCode=exc.carrier_code)
            return
        except Exception as exc:  # a bug or an unexpected answer: still a Failed, never a silent call
            log.exception("%s: placing the call to %s failed", self.host.label, request.to)
            self.fail(500, f"{type(exc).__name__}: {exc}")
            return
        if self.call_sid is None:
            self._assign(sid)
        elif self.call_sid != sid:  # the answer request came first and named another call: not ours
            log.warning("%s: carrier placed %s but %s answered for it; ending", self.host.label, sid, self.call_sid)
            self.fail(500, "carrier call id mismatch")
            return
        self._sid_known.set()
        if self.finished:  # hung up (or the session ended) while the carrier was placing it
            await control.hangup(sid)
            return
        await asyncio.sleep(request.ring_timeout_s + ANSWER_GRACE_S)
        if not self.finished and self.stream is None:
            self.fail(408, "no answer reported by the carrier")
            await control.hangup(sid)

    def _assign(self, sid: str) -> None:
        self.call_sid = sid
        self.call.carrier_assigned(sid)
        self._sid_known.set()

    # --- the carrier's requests -------------------------------------------------------------
    def answered(self, call_sid: str, answered_by: str | None) -> bool:
        """The outbound answer request for this call: whether it is this call's (then its stream may come)."""
        if self.finished or self.stream is not None:
            return False
        if self.call_sid is None:
            self._assign(call_sid)  # the carrier answered before its Calls.create reply reached us
        elif self.call_sid != call_sid:
            return False
        self.answered_by = answered_by
        return True

    def status(self, update: CallStatusUpdate) -> bool:
        """A status callback; False when it is not this call's."""
        if self.call_sid is not None and update.call_id != self.call_sid:
            return False
        if self.finished:
            return True
        if update.status is CallStatus.RINGING:
            self.call.ringing()
        elif update.status.final:
            if self.stream is not None:
                # The stream's own stop normally comes first; if not, this call is over anyway.
                self.stream.end(CallEnd.CALLER_HUNG_UP, "callee hung up")
            else:
                code, reason = _FAILED[update.status]
                self.fail(update.sip_code or code, reason)
        return True

    def attach(self, stream: StreamHost, link: CarrierLink) -> None:
        """The call's stream has started: bind its link and tell the scenario."""
        self.stream = stream
        self.link.target = link
        self.call.connected(amd=self.answered_by if self.amd else None)

    # --- ending -----------------------------------------------------------------------------
    def fail(self, code: int, reason: str, **fields: Any) -> None:
        if self.finished:
            return
        self.call.failed(code, reason, **fields)
        self._finish()

    def stream_ended(self) -> None:
        """The stream session has torn down (Disconnected has fired)."""
        self._finish()

    def hangup_requested(self, kind: CallEnd) -> None:
        """`call.hangup()` (the Call has started the carrier's hang-up where it can)."""
        if self.stream is not None:
            self.stream.hangup_requested(kind)
        elif not self.finished:
            self.call.terminated(kind.text, 0.0)
            self._finish()

    def end(self, kind: CallEnd, detail: str | None = None) -> None:
        """The session is ending: end this call however far it got."""
        if self.stream is not None:
            self.stream.end(kind, detail)
        elif not self.finished:
            if self.call.state() != CallState.TERMINATED.value and self.call_sid is not None:
                self.call.hangup()
            self.call.terminated(detail or kind.text, 0.0)
            self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._sid_known.set()
        self.runtime.outbound_calls.pop(self.key, None)
        self.host.call_finished(self)


class Dialer:
    """`VoxEngine.callPSTN` of one session."""

    def __init__(self, runtime: BridgeRuntime, host: ScenarioHost) -> None:
        self._runtime = runtime
        self._host = host

    def call_pstn(self, number: str, callerid: str, parameters: Mapping[str, Any]) -> Call:
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ValueError(f"callPSTN: {number!r} is not an E.164 number (+ and up to 15 digits)")
        if not isinstance(callerid, str) or not _E164.fullmatch(callerid):
            raise ValueError(f"callPSTN: caller id {callerid!r} is not an E.164 number")
        if not isinstance(parameters, Mapping):
            raise TypeError("callPSTN: parameters must be a mapping ({'amd': True})")
        amd = bool(parameters.get("amd"))
        runtime, host = self._runtime, self._host
        carrier, control = _dial_carrier(runtime)
        key = secrets.token_urlsafe(18)
        capabilities = carrier.capabilities if carrier is not None else _NO_CARRIER
        link = PendingLink(capabilities, capabilities.audio_formats[0])
        outbound = OutboundCall(key, host, runtime, link, amd)
        call = outbound.call = Call(
            call_sid=f"outbound-{key[:8]}",
            caller_id=callerid,
            number=number,
            custom_data={},
            link=link,
            tasks=host.tasks,
            control=_OutboundControl(outbound, control) if control is not None else None,
            clock_ms=host.now_ms,
            on_hangup=outbound.hangup_requested,
            preroll_ms=runtime.settings.preroll_ms,
        )
        runtime.outbound_calls[key] = outbound
        host.call_placed(outbound)
        if carrier is None or control is None:
            # After the scenario's current handler has registered its listeners, as a carrier's refusal would come.
            asyncio.get_running_loop().call_soon(
                outbound.fail, 503, "no carrier can place calls (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"
            )
            return call
        prefix = carrier.prefixes[-1]
        base = runtime.settings.base_url
        request = DialRequest(
            to=number,
            caller_id=callerid,
            answer_url=f"{base}{prefix}{OUTBOUND_ANSWER_PATH}?{CALL_KEY_PARAMETER}={key}",
            status_url=f"{base}{prefix}{STATUS_PATH}?{CALL_KEY_PARAMETER}={key}",
            machine_detection=amd,
            ring_timeout_s=RING_TIMEOUT_S,
        )
        log.info(
            "%s: calling %s from %s%s",
            host.label,
            number,
            callerid,
            " (with answering-machine detection)" if amd else "",
        )
        host.tasks.spawn(outbound.dial(control, request), name=f"dial {number}")
        return call

    def call_sip(self, uri: str, parameters: Mapping[str, Any]) -> Call:
        """`VoxEngine.callSIP(uri, {callerid, headers})`: placed by the SIP listener (server/sip_outbound.py)."""
        if not isinstance(uri, str) or not (uri.startswith(("sip:", "sips:")) or _E164.fullmatch(uri)):
            raise ValueError(f"callSIP: {uri!r} is not a sip: URI (or an E.164 number for SIP_OUTBOUND's trunk)")
        if not isinstance(parameters, Mapping):
            raise TypeError("callSIP: parameters must be a mapping ({'callerid': ..., 'headers': {...}})")
        callerid = str(parameters.get("callerid") or parameters.get("callerId") or "")
        headers = parameters.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise TypeError("callSIP: headers must be a mapping of X-* names to values")
        runtime, host = self._runtime, self._host
        sip = runtime.sip
        capabilities = sip.carrier.capabilities if sip is not None else _NO_CARRIER
        key = secrets.token_urlsafe(18)
        link = PendingLink(capabilities, ULAW_8K)
        outbound = OutboundCall(key, host, runtime, link, amd=False)
        runtime.outbound_calls[key] = outbound
        if sip is None:
            outbound.call = self._call(outbound, link, callerid, uri, None)
            host.call_placed(outbound)
            asyncio.get_running_loop().call_soon(outbound.fail, 503, "no SIP listener to place calls from (--sip)")
            return outbound.call
        # The UAC is the Call's control, and it needs the Call: made first, the Call right after,
        # before the loop runs either (nothing is sent until the UAC's task starts).
        uac = sip.place_call(outbound, uri, callerid, headers)
        outbound.call = self._call(outbound, link, callerid, uri, uac)
        host.call_placed(outbound)
        log.info("%s: calling %s over SIP", host.label, uri)
        return outbound.call

    def _call(self, outbound: OutboundCall, link: PendingLink, callerid: str, number: str, control: Any) -> Call:
        host = self._host
        return Call(
            call_sid=f"outbound-{outbound.key[:8]}",
            caller_id=callerid,
            number=number,
            custom_data={},
            link=link,
            tasks=host.tasks,
            control=control,
            clock_ms=host.now_ms,
            on_hangup=outbound.hangup_requested,
            preroll_ms=self._runtime.settings.preroll_ms,
        )


_NO_CARRIER = Capabilities(audio_formats=(ULAW_8K,), marks=False, clear=False)  # a call that cannot be placed


def _dial_carrier(runtime: BridgeRuntime) -> tuple[Carrier | None, CallControl | None]:
    """The first carrier that can dial and has its credentials."""
    for carrier in runtime.carriers:
        if carrier.capabilities.dial:
            control = carrier.call_control()
            if control is not None:
                return carrier, control
    return None, None
