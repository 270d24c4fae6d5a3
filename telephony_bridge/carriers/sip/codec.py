"""A SIP call's media as the session sees it: the messages of its `RtpStream`, sans-I/O.

The RTP transport (server/sip_media.py) does the RTP: it receives, reorders, latches, paces and
echoes. Between it and the session it passes WebSocket-shaped messages, and this codec reads and
writes them, so the ordinary `CallSession` drives a SIP call unchanged:

| direction | message | meaning |
|---|---|---|
| stream → session | bytes | 20 ms of caller audio, G.711 in the call's format (the start's) |
| stream → session | ``start {json}`` | the call (see `start_message`), the first message |
| stream → session | ``dtmf 5`` | a key press (RFC 4733 or SIP INFO) |
| stream → session | ``mark NAME`` | the audio written before mark NAME has played at the far end |
| session → stream | bytes | model audio in the call's format, any length (the stream frames it) |
| session → stream | ``mark NAME`` / ``clear`` / ``dtmf 123#`` | as the names say |

Audio crosses as the payload itself in both directions: the hot path copies nothing.

Why marks on a carrier with no marks: the bridge paces RTP itself, on the stream's 20 ms clock.
It is the stream, not the session's `Playout`, that knows when each frame left (the queue in front
of it included) and how long the far end holds it (`heard_lead_ms`: RTT/2 from RTCP plus a jitter
allowance). So the stream plays the part of Twilio's media server: it queues what the Playout
writes, paces it out, echoes each mark once its audio has played by that estimate (sent +
heard_lead_ms), and on `clear` drops its queue (barge-in stops within one packet). The Playout
runs in marks mode and does not pace a second time (capabilities below).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from telephony_bridge.audio.formats import ALAW_8K, ULAW_8K, AudioFormat, Encoding
from telephony_bridge.carriers.base import AudioReceived, CallStarted, Capabilities, DtmfReceived, MarkEchoed
from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt
from telephony_bridge.carriers.sip.dtmf import DIGITS

__all__ = [
    "CLEAR",
    "PAYLOAD_TYPES",
    "SIP_CAPABILITIES",
    "SipCodec",
    "audio_format_for",
    "parse_start",
    "sip_capabilities",
    "start_message",
]

# Static RTP payload types of G.711 (RFC 3551) and the formats they carry.
PAYLOAD_TYPES: Final[Mapping[int, AudioFormat]] = {0: ULAW_8K, 8: ALAW_8K}
CLEAR: Final = "clear"
MARK_PREFIX: Final = "mark "
DTMF_PREFIX: Final = "dtmf "
START_PREFIX: Final = "start "
_MAX_MARK_NAME: Final = 64

FIRST_FRAME_WAIT_MS: Final = 10.0  # audio written into an empty queue waits for the next tick: half a frame on average


def sip_capabilities(jitter_allowance_ms: float = 40.0) -> Capabilities:
    """A SIP call's capabilities (the carrier's, with the configured SIP_JITTER_ALLOWANCE_MS)."""
    return Capabilities(
        audio_formats=(ULAW_8K, ALAW_8K),
        marks=True,  # echoed by the RTP stream by its clock (see the module docstring)
        clear=True,  # the stream drops its queue
        dtmf_in=True,
        dtmf_out=True,  # RFC 4733 events
        # Marks time everything but the start of an answer after a quiet spell: the Playout counts
        # that from when it wrote the audio plus this (voxengine/playout.py). The stream's own lead
        # (RTT/2 + the allowance) is known only per call; this holds the allowance and the wait
        # for the next tick, so the first piece of an answer is off by at most RTT/2 ± half a frame.
        playout_lead_ms=jitter_allowance_ms + FIRST_FRAME_WAIT_MS,
    )


SIP_CAPABILITIES: Final = sip_capabilities()


def audio_format_for(payload_type: int) -> AudioFormat:
    """The G.711 format of a static payload type (0 PCMU, 8 PCMA); ValueError for any other."""
    audio_format = PAYLOAD_TYPES.get(payload_type)
    if audio_format is None:
        raise ValueError(f"RTP payload type {payload_type} is not G.711 (0 PCMU or 8 PCMA)")
    return audio_format


def start_message(start: CallStarted) -> str:
    """The stream's first message to the session: the CallStarted, as text."""
    encoding = start.audio_format.encoding
    if encoding not in (Encoding.ULAW, Encoding.ALAW):
        raise ValueError(f"a SIP call carries G.711, not {start.audio_format}")
    return START_PREFIX + json.dumps(
        {
            "call_id": start.call_id,
            "stream_id": start.stream_id,
            "encoding": encoding.value,
            "custom_parameters": dict(start.custom_parameters),
            "caller": start.caller,
            "number": start.number,
        }
    )


def parse_start(text: str) -> CallStarted:
    try:
        fields = json.loads(text)
        audio_format = {Encoding.ULAW.value: ULAW_8K, Encoding.ALAW.value: ALAW_8K}[fields["encoding"]]
        parameters = fields.get("custom_parameters") or {}
        return CallStarted(
            call_id=str(fields["call_id"]),
            stream_id=str(fields["stream_id"]),
            audio_format=audio_format,
            custom_parameters={str(k): str(v) for k, v in parameters.items()},
            caller=str(fields.get("caller", "")),
            number=str(fields.get("number", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CarrierProtocolError(f"sip: unreadable start message {excerpt(text)}: {exc}") from None


class SipCodec:
    """One SIP call's media messages (see the module docstring for the table)."""

    audio_event = AudioReceived

    __slots__ = ("_start",)

    def __init__(self) -> None:
        self._start: CallStarted | None = None

    @property
    def started(self) -> bool:
        return self._start is not None

    def parse(self, message: str | bytes) -> Any:
        if type(message) is bytes:
            if self._start is None:
                raise CarrierProtocolError(f"sip: {len(message)} bytes of audio before the start")
            if not message:
                raise CarrierProtocolError("sip: an empty audio frame")
            return AudioReceived(message)
        if not isinstance(message, str):
            raise CarrierProtocolError(f"sip: a message is bytes or text, not {type(message).__name__}")
        if message.startswith(DTMF_PREFIX):
            digit = message[len(DTMF_PREFIX) :]
            if len(digit) != 1 or digit.upper() not in DIGITS:
                raise CarrierProtocolError(f"sip: {excerpt(digit)} is not a DTMF digit")
            return DtmfReceived(digit.upper())
        if message.startswith(MARK_PREFIX):
            return MarkEchoed(message[len(MARK_PREFIX) :])
        if message.startswith(START_PREFIX):
            if self._start is not None:
                raise CarrierProtocolError("sip: a second start message")
            self._start = parse_start(message[len(START_PREFIX) :])
            return self._start
        raise CarrierProtocolError(f"sip: unknown message {excerpt(message)}")

    def audio(self, payload: bytes) -> bytes:
        return payload  # the stream frames, packetizes and paces it

    def mark(self, name: str) -> str:
        if len(name) > _MAX_MARK_NAME:
            raise ValueError(f"sip: a mark name of {len(name)} characters")
        return MARK_PREFIX + name

    def clear(self) -> str:
        return CLEAR

    def dtmf(self, digits: str) -> str:
        """Digits to send as RFC 4733 events (0-9, *, #, A-D; the Call checked them)."""
        if not digits or any(d not in DIGITS for d in digits.upper()):
            raise ValueError(f"sip: {digits!r:.40} are not DTMF digits")
        return DTMF_PREFIX + digits.upper()
