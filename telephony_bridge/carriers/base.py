"""The carrier seam: what every way a call reaches the bridge is, to the rest of the bridge.

A carrier (Twilio, Telnyx, Vonage, … a SIP trunk, AudioSocket, a browser) is:

- a **codec**, sans-I/O, one per media stream: text or bytes in, carrier-neutral events out
  (`parse`); audio, marks and clears in, text or bytes out;
- an **answer endpoint**: the request the carrier makes when a call arrives (a webhook), read into
  an `AnswerRequest` and checked, and the document that answers it with a media stream;
- **authentication** of that request and of the stream's upgrade, failing closed when the
  carrier's secret is configured;
- **call control** where the carrier has an API (hang-up, transfer, dial: placing an outbound
  call whose answer comes back to the bridge's outbound answer endpoint and whose progress comes
  to its status endpoint, both checked like the answer request);
- a **capability record**: audio formats, whether it echoes marks and can clear queued audio,
  DTMF, control, and how much audio the far end buffers (for carriers without marks, what was
  heard is known by clock);
- a **simulator profile** in `testing/`.

Nothing above `carriers/` names a carrier: the server drives any `Carrier` in the registry
(`carriers/registry.py`), and adding one is new files plus one registry line.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Final, NamedTuple, Protocol

from telephony_bridge.audio.formats import AudioFormat

__all__ = [
    "STREAM_TOKEN_PARAMETER",
    "AnswerRefused",
    "AnswerRequest",
    "AudioReceived",
    "CallControl",
    "CallStarted",
    "CallStatus",
    "CallStatusUpdate",
    "Capabilities",
    "Carrier",
    "CarrierCodec",
    "CarrierEvent",
    "DialFailed",
    "DialRequest",
    "DtmfReceived",
    "HttpAnswer",
    "HttpRequest",
    "ListenerCarrier",
    "MarkEchoed",
    "StreamEnded",
]


# The bridge binds each stream to the answer that opened it with a token (server/stream_tokens.py);
# carriers whose stream has custom parameters carry it back in this one, the others in the stream
# URL's query under the same name.
STREAM_TOKEN_PARAMETER: Final = "bridge_token"


# --- carrier-neutral events -----------------------------------------------------------------------


class AudioReceived(NamedTuple):
    """A caller frame in the stream's audio format. A NamedTuple: one is built per 20 ms frame.

    A codec may return its own NamedTuple type with at least these two fields (and name it in
    `CarrierCodec.audio_event`), so the hot path never copies a frame into a second object."""

    payload: bytes
    timestamp_ms: int | None = None  # the carrier's media clock, when it has one (gap filling)


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The stream's first meaningful message: which call it carries and in what format."""

    call_id: str
    stream_id: str
    audio_format: AudioFormat
    # Parameters the answer document gave the stream (the bridge's token among them). Read-only.
    custom_parameters: Mapping[str, str] = field(default_factory=dict, hash=False)
    caller: str = ""  # for carriers whose stream itself says (AudioSocket, SIP); else the answer's
    number: str = ""
    token: str | None = None  # the bridge's stream token, when the stream's start carried it


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str


class MarkEchoed(NamedTuple):
    """The carrier played (or cleared) everything sent before the mark of this name. A NamedTuple,
    as AudioReceived: one comes back per model delta played."""

    name: str


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The carrier ended the stream (the caller hung up, or the call moved elsewhere)."""

    reason: str = "caller hung up"


CarrierEvent = AudioReceived | CallStarted | DtmfReceived | MarkEchoed | StreamEnded


class AudioFrame(Protocol):
    """What the hot path reads of a caller frame: `AudioReceived`'s fields, which a codec's own
    frame type has too (read-only: frames are NamedTuples)."""

    @property
    def payload(self) -> bytes: ...

    @property
    def timestamp_ms(self) -> int | None: ...


class CarrierCodec(Protocol):
    """One media stream's protocol, sans-I/O. `parse` raises `CarrierProtocolError` for a
    message the bridge cannot use and leaves its state as it was (the caller logs, counts, goes
    on); it returns None for a message that carries nothing for the bridge (a keep-alive)."""

    @property
    def audio_event(self) -> type[AudioFrame]:
        """The NamedTuple type `parse` returns for audio (AudioReceived or its own); a class
        attribute in codecs. Read-only here, so a codec may name its own frame type."""
        ...

    @property
    def started(self) -> bool: ...

    def parse(self, message: str | bytes) -> Any: ...

    def audio(self, payload: bytes) -> str | bytes: ...

    def mark(self, name: str) -> str | bytes: ...

    def clear(self) -> str | bytes: ...


# --- capabilities and control ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    audio_formats: tuple[AudioFormat, ...]  # what the stream can carry; the first is the default
    marks: bool  # echoes a mark once the audio before it has played
    clear: bool  # can drop audio queued at the far end
    dtmf_in: bool = True
    dtmf_out: bool = False  # can send DTMF to the caller: the codec then has `dtmf(digits) -> str | bytes`
    hangup: bool = False  # through a control API
    transfer: bool = False
    dial: bool = False  # can place outbound calls (CallControl.dial, read_call_status)
    # Without marks, what the caller heard is known by clock: audio sent minus what the far end
    # buffers before playing. The bound on a truncation's error is this lead's uncertainty.
    playout_lead_ms: float = 0.0

    def __post_init__(self) -> None:
        if not self.audio_formats:
            raise ValueError("a carrier carries at least one audio format")


class CallControl(Protocol):
    """Out-of-band control of a call through the carrier's API."""

    async def hangup(self, call_id: str) -> None: ...

    async def transfer(self, call_id: str, to: str, caller_id: str | None) -> None: ...

    async def dial(self, request: DialRequest) -> str:
        """Place an outbound call; the carrier's id of the call, or DialFailed."""
        ...


@dataclass(frozen=True, slots=True)
class DialRequest:
    """An outbound call to place. When the callee answers, the carrier requests `answer_url` (like
    an answer request: it gets the same kind of answer document) and reports progress to
    `status_url`; both URLs are the bridge's, built from PUBLIC_URL."""

    to: str
    caller_id: str
    answer_url: str
    status_url: str
    machine_detection: bool = False  # answering-machine detection, where the carrier offers it
    ring_timeout_s: int = 60


class DialFailed(Exception):
    """The carrier refused to place the call. `code` is SIP-like where the carrier says (a refused
    request: the carrier API's HTTP status); `reason` never holds a secret."""

    def __init__(self, code: int, reason: str, carrier_code: int | None = None) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.carrier_code = carrier_code  # the carrier's own error number, when it gave one


class CallStatus(Enum):
    """An outbound call's progress as the carrier reports it (carrier-neutral)."""

    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"  # ended after it was answered
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self in (
            CallStatus.COMPLETED,
            CallStatus.BUSY,
            CallStatus.NO_ANSWER,
            CallStatus.FAILED,
            CallStatus.CANCELED,
        )


@dataclass(frozen=True, slots=True)
class CallStatusUpdate:
    """One status callback of an outbound call."""

    call_id: str
    status: CallStatus
    duration_s: float | None = None
    sip_code: int | None = None  # the far end's final SIP response, when the carrier reports it
    answered_by: str | None = None


# --- the answer endpoint, as data -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the server read of a carrier's answer request (bounded and decoded by the server)."""

    method: str
    url: str  # as the carrier requested it, rebuilt from PUBLIC_URL (never from proxy headers)
    headers: Mapping[str, str]  # lower-case names
    form: Mapping[str, str] = field(default_factory=dict)  # a urlencoded body, or the query of a GET
    form_lists: Mapping[str, list[str]] = field(default_factory=dict)  # every value of each field
    client_host: str | None = None
    # The raw body, for carriers that sign it as sent (Telnyx; Vonage's payload_hash). A JSON body's
    # top-level scalar fields are in `form` too.
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """A call the carrier asks the bridge to answer."""

    call_id: str
    caller: str
    number: str  # the dialed number, routed to a scenario
    # Outbound calls: who answered, when answering-machine detection ran ("human", "machine",
    # "fax", "unknown"; None without detection).
    answered_by: str | None = None


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    body: str
    media_type: str
    status: int = 200


class AnswerRefused(Exception):
    """The answer request is unusable (bad fields) or not the carrier's (bad signature)."""

    def __init__(self, status: int, reason: str, *, forbidden: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.forbidden = forbidden  # an authentication failure: counted and logged as such


class Carrier:
    """A carrier's answer endpoint, authentication, control and codec factory.

    Subclasses set the class attributes and implement the methods; one instance per server, made
    from the configuration (`config`: the environment, whose names each carrier documents).
    """

    name: ClassVar[str]
    # URL prefixes this carrier answers on: "/{prefix}/incoming-call" and "/{prefix}/media-stream".
    prefixes: ClassVar[tuple[str, ...]]
    answer_methods: ClassVar[tuple[str, ...]] = ("POST",)
    # The bodies its requests come with: a urlencoded form, or JSON (Vonage) read into `form`.
    body_types: ClassVar[tuple[str, ...]] = ("application/x-www-form-urlencoded",)
    capabilities: ClassVar[Capabilities]
    signature_header: ClassVar[str] = "signature"  # named in refusals and logs
    secret_names: ClassVar[tuple[str, ...]] = ()  # the configuration that secures it, for the start-up warning
    # The carrier's SDK modules, imported where they are used. They weigh tens of MB and a few
    # hundred ms each, so a bridge pays only for the carriers it is given: a configured (`secured`)
    # carrier loads them here, at start-up, so that no caller waits on an import on the event loop;
    # an unconfigured one serves loopback peers only and loads them on first use.
    sdk_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, str]) -> None:
        self.config = config
        if self.sdk_modules and self.secured:
            for module in self.sdk_modules:
                importlib.import_module(module)

    @property
    def secret(self) -> str | None:
        """The carrier's signing secret: the first of `secret_names`, when configured."""
        return (self.config.get(self.secret_names[0]) or None) if self.secret_names else None

    @property
    def secured(self) -> bool:
        """Whether the carrier's secret is configured (then every request must prove itself;
        without it the server serves loopback clients only). A carrier secured another way (an
        allow-list of addresses) says so itself."""
        return self.secret is not None

    def new_codec(self) -> CarrierCodec:
        raise NotImplementedError

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        """The call to answer, or AnswerRefused. Checks the request's signature when secured."""
        raise NotImplementedError

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        """Answer with a bidirectional media stream to `stream_url`, handing `token` back to the
        bridge in the stream's start (a custom parameter or the URL, as the carrier allows)."""
        raise NotImplementedError

    def reject_document(self) -> HttpAnswer:
        """Refuse the call (no route): before it is answered, so nobody is charged."""
        raise NotImplementedError

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        """Whether a secured carrier signed this stream upgrade (`url` as it was requested)."""
        raise NotImplementedError

    def call_control(self) -> CallControl | None:
        """Hang-up and transfer (and dial, with `capabilities.dial`) through the carrier's API, when configured."""
        return None

    def read_call_status(self, request: HttpRequest) -> CallStatusUpdate:
        """An outbound call's status callback, or AnswerRefused. Checks the signature when secured."""
        raise NotImplementedError


class ListenerCarrier(Carrier):
    """A carrier whose calls come to a listener of the bridge's own (AudioSocket's TCP, SIP, the
    softphone's signalling) rather than as a webhook: no answer endpoint, no media WebSocket. The
    listener admits and binds each call itself."""

    prefixes: ClassVar[tuple[str, ...]] = ()
    how_calls_come: ClassVar[str] = "its own listener"  # for the refusal below

    def read_answer(self, request: HttpRequest) -> AnswerRequest:
        raise NotImplementedError(f"{self.name} has no answer webhook: calls come through {self.how_calls_come}")

    def answer_document(self, stream_url: str, token: str) -> HttpAnswer:
        raise NotImplementedError(f"{self.name} has no answer webhook: calls come through {self.how_calls_come}")

    def reject_document(self) -> HttpAnswer:
        raise NotImplementedError(f"{self.name} has no answer webhook: calls come through {self.how_calls_come}")

    def stream_allowed(self, url: str, headers: Mapping[str, str]) -> bool:
        return False  # no media WebSocket to upgrade
