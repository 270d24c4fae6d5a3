"""Twilio's side of a call, as data: the voice webhook's form, the media-stream messages Twilio sends,
and what Twilio reads in a TwiML answer. Pure functions, no I/O.

The phone simulator, the test peers and the load generator all build their messages here, so what
"a Twilio message" looks like is written once. Written independently of the bridge's own codec
(telephony_bridge.carriers.twilio) on purpose: a bug there must show up against these, not be
shared by both.

Messages come out as compact JSON text, keys in the order event, sequenceNumber, streamSid, body.
"""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

WEBHOOK_PATH = "/incoming-call"
API_VERSION = "2010-04-01"
MULAW_8K = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
HTTP_USER_AGENT = "TwilioProxy/1.1"
WS_USER_AGENT = "Twilio.TmeWs/1.0"


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two letters ("CA", "MZ", "AC") and 32 hex digits."""
    return prefix + os.urandom(16).hex()


# -- the voice webhook -----------------------------------------------------------------------------


def webhook_form(*, account_sid: str, call_sid: str, from_: str, to: str, status: str = "ringing") -> dict[str, str]:
    """The form Twilio POSTs to the voice webhook of an inbound call (the fields the bridge reads)."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid,
        "CallStatus": status,
        "Called": to,
        "Caller": from_,
        "Direction": "inbound",
        "From": from_,
        "To": to,
    }


@dataclass(slots=True)
class TwimlAnswer:
    """What Twilio does with a webhook's answer: connect a stream (with these parameters), or not."""

    stream_url: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    note: str = ""


def read_twiml(text: str) -> TwimlAnswer:
    """What Twilio would do with the answer: the first of Connect/Reject/Hangup/Dial decides.
    Raises ET.ParseError or ValueError on TwiML Twilio would not accept."""
    root = ET.fromstring(text)
    if root.tag != "Response":
        raise ValueError(f"root element is <{root.tag}>, not <Response>")
    skipped: list[str] = []
    for verb in root:
        if verb.tag == "Connect":
            stream = verb.find("Stream")
            if stream is None:
                return TwimlAnswer(note="<Connect> without <Stream>")
            url = stream.get("url")
            if not url:
                raise ValueError("<Stream> has no url attribute")
            params = {}
            for p in stream.findall("Parameter"):
                name, value = p.get("name"), p.get("value")
                if name is None or value is None:
                    raise ValueError("<Parameter> needs a name and a value")
                params[name] = value
            note = f"connect stream {url}" + (f" (after {', '.join(skipped)})" if skipped else "")
            return TwimlAnswer(stream_url=url, parameters=params, note=note)
        if verb.tag in ("Reject", "Hangup", "Dial", "Redirect", "Start"):
            return TwimlAnswer(note=f"<{verb.tag}>" + (f" after {', '.join(skipped)}" if skipped else ""))
        skipped.append(f"<{verb.tag}>")  # Say, Play, Pause...: they would play, then TwiML goes on
    return TwimlAnswer(note="no <Connect><Stream>" + (f" ({', '.join(skipped)})" if skipped else ""))


# -- media-stream messages (Twilio -> bridge) ------------------------------------------------------


def _dumps(message: dict) -> str:
    return orjson.dumps(message).decode()


def connected() -> str:
    """The first message of every stream (it carries no sequence number)."""
    return _dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start(
    *,
    seq: int | str,
    stream_sid: str,
    account_sid: str,
    call_sid: str,
    custom_parameters: Mapping[str, str],
    tracks: tuple[str, ...] = ("inbound",),
) -> str:
    """`start`: the stream's metadata and the TwiML's <Parameter>s (the bridge's token among them)."""
    return _dumps(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "start": {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": list(tracks),
                "mediaFormat": MULAW_8K,
                "customParameters": dict(custom_parameters),
            },
        }
    )


def media(
    *,
    seq: int | str,
    stream_sid: str,
    chunk: int | str,
    timestamp_ms: int | str,
    payload: bytes | str,
    track: str = "inbound",
) -> str:
    """One frame of caller audio; `payload` is μ-law bytes or already base64 text."""
    if not isinstance(payload, str):
        payload = base64.b64encode(payload).decode("ascii")
    return _dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "media": {"track": track, "chunk": str(chunk), "timestamp": str(timestamp_ms), "payload": payload},
        }
    )


def mark(*, seq: int | str, stream_sid: str, name: str) -> str:
    """A mark echoed back once the audio sent before it has played (or been cleared)."""
    return _dumps({"event": "mark", "sequenceNumber": str(seq), "streamSid": stream_sid, "mark": {"name": name}})


def dtmf(*, seq: int | str, stream_sid: str, digit: str) -> str:
    return _dumps(
        {
            "event": "dtmf",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def stop(*, seq: int | str, stream_sid: str, account_sid: str, call_sid: str) -> str:
    """The caller hung up (Twilio closes the WebSocket after it)."""
    return _dumps(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "stop": {"accountSid": account_sid, "callSid": call_sid},
        }
    )
