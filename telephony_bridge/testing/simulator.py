"""Phone simulator: behaves like a carrier toward the bridge, so call flows run without a phone.

Any carrier with a simulator profile (`testing/profiles/`, `PROFILES`: Twilio by default); the
profile builds and reads every message, the simulator runs the call. It is an independent peer: a
profile speaks the carrier's wire format itself (never through the bridge's codec) so that bugs in
the bridge's codec show up here. One call, with Twilio's words (other carriers: their own answer
request, document and stream messages, the same steps):

1. POST the voice webhook form to ``base_url + "/incoming-call"`` (signed with X-Twilio-Signature when
   an auth token is given) and read the TwiML answer.
2. ``<Reject/>`` or no ``<Connect><Stream>``: the call ends there, ``rejected=True``.
3. Otherwise open the stream's WebSocket (signed over the TwiML's ``wss://`` URL), send ``connected``
   and ``start``, then the caller's audio as 20 ms μ-law frames paced in real time, silence after it,
   DTMF at the given times, and finally ``stop``.
4. Meanwhile play the bridge's audio through :class:`SimulatedPlayout` (Twilio's buffer), echo marks
   when their audio has played, flush on ``clear``, and record what the caller heard.

Local testing: the TwiML's stream URL is the bridge's *public* URL. When its host differs from
``base_url``'s host the simulator connects to ``base_url``'s host and port with the TwiML's path
(``ws://`` when ``base_url`` is ``http://``, ``wss://`` for ``https://``); ``stream_url_override``
replaces the URL altogether. The signature is always computed over the TwiML's URL, as Twilio does.

Times in the result are ms since the stream started (the ``start`` message); events before it (the
webhook, the WebSocket handshake) have negative times.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from telephony_bridge.audio import files as recording
from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.testing.carrier_profile import CarrierProfile
from telephony_bridge.testing.profiles import PROFILES
from telephony_bridge.testing.simulator_caller import FRAME_BYTES, FRAME_MS, ULAW_SILENCE_FRAME
from telephony_bridge.testing.simulator_result import (
    CallResult,
    MarkEcho,
    TimelineEvent,
)
from telephony_bridge.testing.simulator_stream import (
    BURST_GAP_MS,
    SPEECH_GAP_MS,
    TWILIO_WS_USER_AGENT,
    EventCallback,
    SimulatedCall,
    new_sid,
)
from telephony_bridge.testing.simulator_webhook import (
    PARAMETER_LIMIT,
    TWILIO_HTTP_USER_AGENT,
    WEBHOOK_PATH,
    connect_url_for,
)

__all__ = [
    "BURST_GAP_MS",
    "DEFAULT_TAIL_S",
    "DTMF_DIGITS",
    "FRAME_BYTES",
    "FRAME_MS",
    "PARAMETER_LIMIT",
    "SILENCE_HANGUP_CAP_S",
    "SPEECH_GAP_MS",
    "TWILIO_HTTP_USER_AGENT",
    "TWILIO_WS_USER_AGENT",
    "ULAW_SILENCE_FRAME",
    "WEBHOOK_PATH",
    "CallResult",
    "EventCallback",
    "MarkEcho",
    "TimelineEvent",
    "connect_url_for",
    "make_profile",
    "place_call",
]

DEFAULT_TAIL_S = 2.0  # silence sent after the caller's audio when no duration is given
SILENCE_HANGUP_CAP_S = 60.0  # longest call after the caller's audio when waiting for silence
DTMF_DIGITS = frozenset("0123456789*#")


def make_profile(
    carrier: str, base_url: str, *, secret: str | None = None, account_id: str | None = None
) -> CarrierProfile:
    """The simulator profile of `carrier` (a name in PROFILES) for one call; ValueError for another name."""
    try:
        profile_type = PROFILES[carrier]
    except KeyError:
        raise ValueError(
            f"no simulator profile for carrier {carrier!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
    return profile_type(base_url=base_url.rstrip("/"), secret=secret, account_id=account_id)  # type: ignore[call-arg]


async def place_call(
    base_url: str,
    *,
    to: str = "+15550100",
    from_: str = "+15550199",
    caller_audio: bytes | str | os.PathLike[str] = b"",
    digits: Sequence[tuple[float, str]] = (),
    duration_s: float | None = None,
    hangup_after_silence_s: float | None = None,
    auth_token: str | None = None,
    account_sid: str | None = None,
    call_sid: str | None = None,
    stream_url_override: str | None = None,
    on_event: EventCallback | None = None,
    connect_timeout_s: float = 10.0,
    carrier: str = "twilio",
    profile: CarrierProfile | None = None,
) -> CallResult:
    """Place one simulated inbound call to the bridge at ``base_url`` and return what happened.

    ``caller_audio``: PCM16 LE 8 kHz mono bytes, or the path of a PCM WAV file (any rate and channel
    count; converted). ``digits``: (seconds since the stream start, digit) pairs. ``duration_s``: how
    long the stream lasts, from its start, unless the bridge closes it first; default: the audio's
    length + 2 s, or with ``hangup_after_silence_s`` the audio's length + 60 s at most, hanging up
    once the caller's audio is over and nothing has played to the caller for that long.
    ``on_event`` receives each :class:`TimelineEvent` as it happens (a coroutine function is run as a
    task). Problems of the bridge are reported in the result (``error``, ``protocol_errors``), not
    raised; bad arguments raise ``ValueError``. ``carrier`` picks the simulator profile (PROFILES);
    ``auth_token`` is its signing secret, ``account_sid`` its account id; or pass a ready ``profile``.
    """
    if profile is None:
        profile = make_profile(carrier, base_url, secret=auth_token, account_id=account_sid)
    if isinstance(caller_audio, (bytes, bytearray, memoryview)):
        pcm16 = bytes(caller_audio)
    else:
        try:
            pcm16 = await asyncio.to_thread(recording.read_wav_as_pcm16_8k_mono, caller_audio)
        except Exception as e:  # wave, pydub and OS errors alike: the file is unusable
            raise ValueError(f"cannot read caller audio {os.fspath(caller_audio)!r}: {e}") from e
    if len(pcm16) % 2:
        raise ValueError("caller_audio must be PCM16: an even number of bytes")
    schedule = sorted((float(t), str(d)) for t, d in digits)
    for t, d in schedule:
        if d not in DTMF_DIGITS or len(d) != 1 or t < 0:
            raise ValueError(f"bad DTMF entry ({t}, {d!r}): want (seconds >= 0, one of 0-9 * #)")
    audio_s = len(pcm16) / 2 / 8000
    if duration_s is None:
        duration_s = audio_s + (SILENCE_HANGUP_CAP_S if hangup_after_silence_s is not None else DEFAULT_TAIL_S)
    if duration_s < 0:
        raise ValueError("duration_s must be >= 0")
    call = SimulatedCall(
        base_url=base_url.rstrip("/"),
        to=to,
        from_=from_,
        caller_ulaw=ulaw_encode(pcm16),
        digits=schedule,
        duration_ms=duration_s * 1000,
        hangup_after_silence_ms=None if hangup_after_silence_s is None else hangup_after_silence_s * 1000,
        profile=profile,
        call_sid=call_sid or _new_call_id(profile),
        stream_url_override=stream_url_override,
        on_event=on_event,
        connect_timeout_s=connect_timeout_s,
    )
    return await call.run()


def _new_call_id(profile: CarrierProfile) -> str:
    new_call_id = getattr(profile, "new_call_id", None)
    return str(new_call_id()) if new_call_id is not None else new_sid("CA")
