"""Twilio as a carrier in the seam: its codec, answer endpoint, signatures and REST control.

The pieces live beside this module (`twilio` the media-stream codec, `twilio_webhook` TwiML and
signatures, `twilio_rest` the REST API); this one puts them behind `carriers.base`.

Configuration (the environment): ``TWILIO_AUTH_TOKEN`` checks ``X-Twilio-Signature`` on the
webhook, the outbound answer and status callbacks and the stream upgrade; with
``TWILIO_ACCOUNT_SID`` it enables REST hang-up, transfer and dial (``Calls.create``).
``TWILIO_API_BASE_URL`` points REST calls at a stand-in (tests).
"""

from __future__ import annotations

from collections.abc import Mapping

from telephony_bridge.audio.formats import ULAW_8K
from telephony_bridge.carriers.base import (
    STREAM_TOKEN_PARAMETER,
    AnswerRefused,
    AnswerRequest,
    CallStarted,
    CallStatus,
    CallStatusUpdate,
    Capabilities,
    Carrier,
    DialFailed,
    DialRequest,
    DtmfReceived,
    HttpAnswer,
    HttpRequest,
    MarkEchoed,
    StreamEnded,
)
from telephony_bridge.carriers.errors import CarrierProtocolError
from telephony_bridge.carriers.twilio import (
    DtmfReceived as TwilioDtmf,
)
from telephony_bridge.carriers.twilio import (
    MarkReceived,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    TwilioStreamParser,
    TwilioStreamSerializer,
    is_sid,
)
from telephony_bridge.carriers.twilio_rest import TwilioRest, TwilioRestError
from telephony_bridge.carriers.twilio_webhook import (
    connect_stream_twiml,
    dial_twiml,
    reject_twiml,
    signature_is_valid,
)

__all__ = ["TwilioCallControl", "TwilioCarrier", "TwilioCodec", "answered_by"]

# Twilio's CallStatus of a status callback → the seam's. "in-progress" is what "answered" reports.
_STATUSES = {
    "queued": CallStatus.QUEUED,
    "initiated": CallStatus.QUEUED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.ANSWERED,
    "answered": CallStatus.ANSWERED,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELED,
}


def answered_by(value: str | None) -> str | None:
    """Twilio's AnsweredBy (human, machine_start, machine_end_beep, …, fax, unknown) → human,
    machine, fax or unknown; None when detection did not run."""
    if not value:
        return None
    if value.startswith("machine"):
        return "machine"
    return value if value in ("human", "fax") else "unknown"


def _number(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


class _FormFields(dict[str, str]):
    """Last value per field, with every value for the signature (RequestValidator reads getall)."""

    def __init__(self, lists: Mapping[str, list[str]]) -> None:
        super().__init__({name: values[-1] for name, values in lists.items() if values})
        self._lists = lists

    def getall(self, name: str) -> list[str]:
        return list(self._lists.get(name, ()))


class TwilioCodec:
    """Twilio's media-stream protocol behind the seam's codec interface."""

    audio_event = MediaReceived  # the parser's own frame type: the hot path is never re-wrapped

    __slots__ = ("_parser", "_serializer")

    def __init__(self, parser: TwilioStreamParser | None = None) -> None:
        self._parser = parser or TwilioStreamParser()
        self._serializer: TwilioStreamSerializer | None = None

    @property
    def started(self) -> bool:
        return self._parser.started

    def parse(self, message: str | bytes) -> object:
        if type(message) is not str:
            # Twilio sends JSON text frames only; a binary frame is a broken or hostile peer.
            raise CarrierProtocolError(f"twilio: binary frame of {len(message)} bytes; Twilio sends JSON text frames")
        event = self._parser.parse(message)
        if type(event) is MediaReceived:  # 50 a second
            return event
        if isinstance(event, MarkReceived):
            return MarkEchoed(event.name)
        if isinstance(event, TwilioDtmf):
            return DtmfReceived(event.digit)
        if isinstance(event, StreamStarted):
            self._serializer = TwilioStreamSerializer(event.stream_sid)
            # Twilio drops a stream URL's query string: the token comes back as a <Parameter>.
            parameters = dict(event.custom_parameters)
            token = parameters.pop(STREAM_TOKEN_PARAMETER, None)
            return CallStarted(
                call_id=event.call_sid,
                stream_id=event.stream_sid,
                audio_format=ULAW_8K,
                custom_parameters=parameters,
                token=token,
            )
        if isinstance(event, StreamStopped):
            return StreamEnded("caller hung up")
        assert isinstance(event, StreamConnected)
        return None

    def _started(self) -> TwilioStreamSerializer:
        if self._serializer is None:
            raise RuntimeError("nothing can be sent before the stream's start")
        return self._serializer

    def audio(self, payload: bytes) -> str:
        return self._started().media(payload)

    def mark(self, name: str) -> str:
        return self._started().mark(name)

    def clear(self) -> str:
        return self._started().clear()


class TwilioCallControl:
    """Hang-up and transfer through Twilio's REST API."""

    def __init__(self, rest: TwilioRest) -> None:
        self._rest = rest

    async def hangup(self, call_id: str) -> None:
        await self._rest.hangup(call_id)

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None:
        await self._rest.update_twiml(call_id, dial_twiml(to, caller_id))

    async def dial(self, request: DialRequest) -> str:
        try:
            return await self._rest.create_call(
                to=request.to,
                from_=request.caller_id,
                url=request.answer_url,
                status_callback=request.status_url,
                # Synchronous detection: Twilio requests the answer URL once it knows, with AnsweredBy.
                machine_detection="Enable" if request.machine_detection else None,
                timeout_s=request.ring_timeout_s,
            )
        except TwilioRestError as exc:
            # No HTTP answer at all: the carrier is unreachable, as a SIP 503 would say.
            raise DialFailed(exc.status or 503, exc.message, exc.code) from None


class TwilioCarrier(Carrier):
    name = "twilio"
    prefixes = ("", "/twilio")  # /incoming-call predates the other carriers and stays
    signature_header = "X-Twilio-Signature"
    secret_names = ("TWILIO_AUTH_TOKEN",)
    sdk_modules = ("twilio.rest",)  # the REST client (call control); the webhook pieces are light
    capabilities = Capabilities(
        audio_formats=(ULAW_8K,),
        marks=True,
        clear=True,
        dtmf_in=True,
        dtmf_out=False,
        hangup=True,
        transfer=True,
        dial=True,
    )

    def new_codec(self) -> TwilioCodec:
        return TwilioCodec()

    def _check_signature(self, request: HttpRequest) -> None:
        token = self.secret
        if token is not None:
            fields = _FormFields(request.form_lists)
            if not signature_is_valid(token, request.url, fields, request.headers.get("x-twilio-signature")):
                raise AnswerRefused(403, "forbidden", forbidden=True)

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        self._check_signature(request)
        call_sid, number = request.form.get("CallSid"), request.form.get("To")
        if not call_sid or not number:
            raise AnswerRefused(400, "a Twilio voice webhook needs CallSid and To")
        if not is_sid(call_sid, "CA"):
            raise AnswerRefused(400, "CallSid is not a Twilio call id (CA + 32 hex digits)")
        return AnswerRequest(
            call_id=call_sid,
            caller=request.form.get("From", ""),
            number=number,
            answered_by=answered_by(request.form.get("AnsweredBy")),
        )

    def read_call_status(self, request: HttpRequest) -> CallStatusUpdate:
        self._check_signature(request)
        call_sid, status = request.form.get("CallSid"), _STATUSES.get(request.form.get("CallStatus", ""))
        if not call_sid or not is_sid(call_sid, "CA"):
            raise AnswerRefused(400, "a Twilio status callback needs a CallSid (CA + 32 hex digits)")
        if status is None:
            raise AnswerRefused(400, "unknown CallStatus")
        duration = _number(request.form.get("CallDuration"))
        return CallStatusUpdate(
            call_id=call_sid,
            status=status,
            duration_s=None if duration is None else float(duration),
            sip_code=_number(request.form.get("SipResponseCode")),
            answered_by=answered_by(request.form.get("AnsweredBy")),
        )

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        return HttpAnswer(connect_stream_twiml(stream_url, {STREAM_TOKEN_PARAMETER: token}), "text/xml")

    def reject_document(self) -> HttpAnswer:
        return HttpAnswer(reject_twiml(), "text/xml")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        # Over the URL as requested (Twilio signs what it connects to; our TwiML gives it no query).
        token = self.secret
        return token is not None and signature_is_valid(token, url, {}, headers.get("x-twilio-signature"))

    def call_control(self) -> TwilioCallControl | None:
        sid, token = self.config.get("TWILIO_ACCOUNT_SID"), self.secret
        if not (sid and token):
            return None
        return TwilioCallControl(TwilioRest(sid, token, base_url=self.config.get("TWILIO_API_BASE_URL") or None))
