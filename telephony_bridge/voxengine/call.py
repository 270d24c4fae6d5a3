"""The VoxEngine `Call`: one phone call as a scenario sees it.

The Call knows nothing of WebSockets: it talks to the carrier through a `CarrierLink` (send media,
marks, clear) and to the carrier's API through an optional `CallControl`. Caller audio arrives in
the carrier's format and goes to every media unit the call sends media to (each is told the
format once); everything played to the caller, model answers and prompts, goes through the call's
one `Playout`, which keeps what the caller heard (one ledger per call: the caller has one ear).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from telephony_bridge.audio.files import read_wav_as_pcm16_8k_mono
from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.carriers.base import CallControl
from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.events import CallEvents, CallState
from telephony_bridge.voxengine.listeners import (
    EventPayload,
    Handler,
    Listeners,
    enum_normalizer,
)
from telephony_bridge.voxengine.playout import CarrierLink, Playout
from telephony_bridge.voxengine.recording import (
    CallRecording,
    RecordingsConfig,
    RecordOptions,
)

log = logging.getLogger("telephony_bridge.call")

DEFAULT_PREROLL_MS = 1000
DIGITS = re.compile(r"[0-9*#A-Dp]+")  # call.sendDigits: keys, and p for a pause
DIGIT_PAUSE_S = 0.5


class MediaUnit(Protocol):
    """Anything a call can send the caller's audio to (a RealtimeAPIClient, a recorder, another
    call): frames in the carrier's format. A unit with `set_caller_format(audio_format)` is told
    that format when media starts flowing to it; one without gets it as it comes."""

    async def accept_caller_audio(self, frame: bytes) -> None: ...


class PlayoutSource(Protocol):
    """What plays model audio into this call (a client's PlayoutChannel); told of echoed marks."""

    def on_mark(self, outcome: Any) -> None: ...
    def interrupt(self, truncate: bool) -> bool: ...
    def detach(self) -> None: ...


@with_snake_case_twins
class Call:
    def __init__(
        self,
        *,
        call_sid: str,
        caller_id: str,
        number: str,
        custom_data: Mapping[str, str],
        link: CarrierLink,
        tasks: TaskOwner,
        control: CallControl | None = None,
        clock_ms: Any = None,
        on_hangup: Any = None,
        preroll_ms: int = DEFAULT_PREROLL_MS,
        recordings: RecordingsConfig | None = None,
    ) -> None:
        self._call_sid = call_sid
        self._caller_id = caller_id
        self._number = number
        self._custom_data = dict(custom_data)
        self.link = link
        self.tasks = tasks
        self._control = control
        self._clock_ms = clock_ms
        self._on_hangup = on_hangup  # the session's way to end the call
        self._state = CallState.ALERTING
        self._connected_pending = False  # answered, Connected not yet fired (see answer())
        self.rest_hangup: Any = None  # the task of a REST hang-up in flight
        self._playback: tuple[str, str] | None = None  # (mark name, url) of the prompt playing
        self._playback_seq = 0
        self._tones = False
        self._targets: list[MediaUnit] = []
        # The carrier streams the caller from the first moment, while the scenario may still be
        # opening its model: the last `preroll_ms` of audio nobody takes is kept (the frames
        # themselves, no copies) and handed to the first unit that does, so the first word is
        # not lost. Nothing is kept once a unit takes the audio.
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._preroll_limit = max(0, int(preroll_ms)) * link.audio_format.bytes_per_ms
        self._playout: PlayoutSource | None = None
        # Everything played to the caller goes through here; marks it confirms by clock (for a
        # carrier without mark echo) come back through mark(), as a carrier's echo would.
        self.playout = Playout(link, tasks, self.now_ms, on_mark=self.mark)
        self.playback = self.playout.ledger
        self.listeners = Listeners(f"call {call_sid}", tasks, enum_normalizer(CallEvents))
        self._recordings = recordings
        self.recording: CallRecording | None = None

    # --- identity -------------------------------------------------------------------------
    def id(self) -> str:
        return self._call_sid

    def callerid(self) -> str:
        return self._caller_id

    def number(self) -> str:
        return self._number

    def customData(self) -> dict[str, str]:
        """The stream's custom parameters (TwiML <Parameter>s) other than the bridge's own."""
        return dict(self._custom_data)

    def state(self) -> str:
        return self._state.value

    def __repr__(self) -> str:
        return f"<Call {self._call_sid} {self._state.value}>"

    # --- events ---------------------------------------------------------------------------
    def addEventListener(self, event: CallEvents | str, handler: Handler) -> None:
        self.listeners.add(event, handler)

    def removeEventListener(self, event: CallEvents | str, handler: Handler | None = None) -> None:
        self.listeners.remove(event, handler)

    def emit(self, event: CallEvents, **fields: Any) -> None:
        if self._connected_pending and event is not CallEvents.Connected:
            self._connected()  # Connected always comes first
        self.listeners.emit(event, EventPayload(call=self, name=event.name, **fields))

    # --- control --------------------------------------------------------------------------
    def answer(self) -> None:
        """Connect the call. On a media stream the carrier has already answered; this starts media
        flow to the scenario's units at once and fires CallEvents.Connected on the next loop turn."""
        if self._state is not CallState.ALERTING:
            return
        self._state = CallState.CONNECTED
        # A carrier whose calls are answered by the bridge itself (SIP: the 200 OK) has `answer` on
        # its control; media-stream carriers answered before the stream began.
        answer = getattr(self._control, "answer", None)
        if answer is not None:
            answer(self._call_sid)
        # On the next loop turn, as VoxEngine does: scenarios add the Connected listener after
        # answer() (Voximplant's own examples do), and would never hear it otherwise (pitfall 23).
        # Any other event of the call before that turn (a DTMF already read) fires it first.
        self._connected_pending = True
        try:
            asyncio.get_running_loop().call_soon(self._connected)
        except RuntimeError:  # no loop (a synchronous unit test): nothing can listen later anyway
            self._connected()

    def _connected(self) -> None:
        if self._connected_pending:
            self._connected_pending = False
            self.emit(CallEvents.Connected)

    def connected(self, **fields: Any) -> None:
        """An outbound call's media has started (the callee answered): Connected, with what the
        carrier knows of the answer (`amd`: the answering-machine detection's result)."""
        if self._state is not CallState.ALERTING:
            return
        self._state = CallState.CONNECTED
        self.emit(CallEvents.Connected, **fields)

    def ringing(self) -> None:
        if self._state is CallState.ALERTING:
            self.emit(CallEvents.Ringing)

    def failed(self, code: int, reason: str, **fields: Any) -> None:
        """An outbound call that never connected (busy, no answer, refused by the carrier): Failed
        instead of Disconnected, and the call is over."""
        if self._state is CallState.TERMINATED:
            return
        self._state = CallState.TERMINATED
        self._targets.clear()
        self._preroll.clear()
        self._preroll_bytes = 0
        self.playout.close()
        self.emit(CallEvents.Failed, code=code, reason=reason, **fields)

    def carrier_assigned(self, call_sid: str) -> None:
        """An outbound call's id once the carrier has placed it (until then a placeholder)."""
        self._call_sid = call_sid

    def hangup(self) -> None:
        """End the call: close the media stream and, with carrier credentials, end the phone call."""
        if self._state is CallState.TERMINATED:
            return
        if self._control is not None and self.rest_hangup is None:
            # The session's teardown waits for this one (bounded): the phone call must really end.
            self.rest_hangup = self.tasks.spawn(self._control.hangup(self._call_sid), name="REST hangup")
        if self._on_hangup is not None:
            self._on_hangup(CallEnd.SCENARIO_HANGUP)

    def handleTones(self, enable: bool = True) -> None:
        self._tones = bool(enable)

    def transferTo(self, parameters: Mapping[str, Any]) -> None:
        """Transfer the caller to a number ({"to": "+1…", "callerId": optional}). The carrier then
        leaves the media stream; TransferComplete or TransferFailed fires."""
        to = parameters.get("to") if isinstance(parameters, Mapping) else None
        if not to:
            raise ValueError('transferTo needs {"to": "<number>"}')
        self.tasks.spawn(self._transfer(str(to), parameters.get("callerId")), name="transfer")

    async def _transfer(self, to: str, caller_id: str | None) -> None:
        if self._control is None:
            self.emit(
                CallEvents.TransferFailed,
                to=to,
                reason="no carrier credentials (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)",
            )
            return
        try:
            await self._control.transfer(self._call_sid, to, caller_id)
        except Exception as exc:  # the REST error carries status and reason, never the token
            log.warning("call %s: transfer to %s failed: %s", self._call_sid, to, exc)
            self.emit(CallEvents.TransferFailed, to=to, reason=str(exc))
            return
        self.emit(CallEvents.TransferComplete, to=to)

    # --- prompts --------------------------------------------------------------------------
    def startPlayback(self, url: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None) -> None:
        """Play a WAV file to the caller (any PCM WAV; converted to 8 kHz μ-law off the hot path).
        PlaybackStarted fires when it is sent, PlaybackFinished when the phone has played it."""
        self.tasks.spawn(self._play_file(url), name="playback")

    async def _play_file(self, url: str | os.PathLike[str]) -> None:
        try:
            pcm = await asyncio.to_thread(read_wav_as_pcm16_8k_mono, url)
        except (OSError, ValueError) as exc:
            log.warning("call %s: cannot play %s: %s", self._call_sid, url, exc)
            self.emit(CallEvents.PlaybackFinished, url=str(url), error=str(exc))
            return
        self._playback_seq += 1
        mark = f"pb{self._playback_seq}"  # never a ledger mark (those are g<generation>.<n>)
        self._playback = (mark, str(url))
        self.emit(CallEvents.PlaybackStarted, url=str(url), duration=len(pcm) / 16000)
        await self.playout.play_prompt(pcm, L16_8K, mark)

    def stopPlayback(self) -> None:
        if self._playback is None:
            return
        _, url = self._playback
        self._playback = None
        # A clear also flushes model audio queued behind the prompt; through the model's channel
        # the ledger learns of it (its echoed marks are then 'flushed', not 'played').
        if self._playout is None or not self._playout.interrupt(True):
            self.playout.stop_prompt()
        self.emit(CallEvents.PlaybackFinished, url=url, stopped=True)

    # --- recording and DTMF out -------------------------------------------------------------
    def record(self, parameters: Mapping[str, Any] | None = None) -> None:
        """Record the call (Voximplant's `call.record`): `{stereo: true}` puts the caller on the left
        and what the caller heard on the right, `{}` mixes both; `lossless: true` makes FLAC (with
        ffmpeg). RecordStarted {url} fires once the file is open; RecordStopped {url, duration}
        after Disconnected (or after stopRecord). A disk error ends the recording, not the call:
        RecordError {error} and RecordStopped {url, duration, error}."""
        options = RecordOptions.parse(parameters)
        if self.recording is not None and self.recording.active:
            log.warning("call %s: already recording (%s); record() ignored", self._call_sid, self.recording.url)
            return
        if self._state is CallState.TERMINATED:
            return
        if self._recordings is None:
            error = "recording is not configured on this bridge"
            log.warning("call %s: %s", self._call_sid, error)
            self.emit(CallEvents.RecordError, error=error)
            return
        recording = CallRecording(
            config=self._recordings,
            options=options,
            audio_format=self.link.audio_format,
            clock_ms=self.now_ms,
            tasks=self.tasks,
            emit=self._emit_named,
            label=f"call {self._call_sid}",
        )
        self.recording = recording
        self.playout.tap = recording
        recording.start()

    def stopRecord(self) -> None:
        """Stop the recording now (RecordStopped fires when the file is complete)."""
        recording = self.recording
        if recording is not None and recording.active:
            if self.playout.tap is recording:
                self.playout.tap = None
            recording.stop()

    def _emit_named(self, name: str, **fields: Any) -> None:
        self.emit(CallEvents[name], **fields)

    def sendDigits(self, digits: str) -> None:
        """Send DTMF to the caller's side (0-9, *, #, A-D; p pauses half a second), where the
        carrier can (`Capabilities.dtmf_out`). Elsewhere (Twilio's media streams cannot) a warning
        is logged and SendDigitsFailed {digits, reason} fires; the call goes on."""
        digits = str(digits)
        if not DIGITS.fullmatch(digits):
            raise ValueError(f"sendDigits takes 0-9, *, #, A-D and p (pause), got {digits!r:.40}")
        send = getattr(self.link, "send_digits", None)
        if not self.link.capabilities.dtmf_out or send is None:
            reason = "this carrier cannot send DTMF on its media stream"
            log.warning("call %s: sendDigits(%r) not sent: %s", self._call_sid, digits, reason)
            self.emit(CallEvents.SendDigitsFailed, digits=digits, reason=reason)
            return
        self.tasks.spawn(self._send_digits(send, digits), name="send digits")

    async def _send_digits(self, send: Any, digits: str) -> None:
        for part in re.split(r"(p)", digits):
            if part == "p":
                await asyncio.sleep(DIGIT_PAUSE_S)
            elif part:
                await send(part)

    # --- media graph ----------------------------------------------------------------------
    def sendMediaTo(self, unit: MediaUnit) -> None:
        if not callable(getattr(unit, "accept_caller_audio", None)):
            raise TypeError(f"{unit!r} cannot receive call audio")
        if unit not in self._targets:
            set_format = getattr(unit, "set_caller_format", None)
            if callable(set_format):
                set_format(self.link.audio_format)
            self._targets.append(unit)

    def stopMediaTo(self, unit: MediaUnit) -> None:
        if unit in self._targets:
            self._targets.remove(unit)

    def attach_playout(self, source: PlayoutSource) -> None:
        """One source plays into a call at a time; a new one replaces (and detaches) the old."""
        if self._playout is not None and self._playout is not source:
            self._playout.detach()
        self._playout = source

    def detach_playout(self, source: PlayoutSource) -> None:
        if self._playout is source:
            self._playout = None

    def now_ms(self) -> float:
        return self._clock_ms()

    # --- inputs from the carrier (called by the session) ------------------------------------
    async def caller_audio(self, ulaw: bytes) -> None:
        recording = self.recording
        if recording is not None and recording.active:
            recording.caller_frame(ulaw)
        if self._state is CallState.CONNECTED and self._targets:
            if self._preroll_bytes:
                await self._hand_over_preroll()
            for unit in self._targets:
                await unit.accept_caller_audio(ulaw)
        elif self._preroll_limit and self._state is not CallState.TERMINATED:
            self._keep_preroll(ulaw)

    def _keep_preroll(self, ulaw: bytes) -> None:
        limit = self._preroll_limit
        if len(ulaw) >= limit:  # one chunk (a filled gap) as long as the whole pre-roll
            self._preroll.clear()
            self._preroll_bytes = 0
            ulaw = ulaw[-limit:]
        self._preroll.append(ulaw)
        self._preroll_bytes += len(ulaw)
        while self._preroll_bytes > limit:
            self._preroll_bytes -= len(self._preroll.popleft())

    async def _hand_over_preroll(self) -> None:
        """The kept audio, oldest first and frame by frame as it came, before the current frame."""
        frames = list(self._preroll)
        self._preroll.clear()
        self._preroll_bytes = 0
        for frame in frames:
            for unit in self._targets:
                await unit.accept_caller_audio(frame)

    def tone(self, digit: str) -> None:
        if self._tones:
            self.emit(CallEvents.ToneReceived, tone=digit)

    def mark(self, name: str, at_ms: float | None = None) -> None:
        """The carrier echoed mark `name` (or the playout confirmed it by clock, `at_ms`)."""
        if self._playback is not None and name == self._playback[0]:
            url = self._playback[1]
            self._playback = None
            self.emit(CallEvents.PlaybackFinished, url=url)
            return
        outcome = self.playout.mark_echoed(name, at_ms)
        if self._playout is not None:
            self._playout.on_mark(outcome)

    def release(self) -> None:
        """After the call (the session's teardown): drop the handlers, which a scenario's closures
        make a cycle through this Call, and the session's callbacks, so that reference counting
        frees the finished call at once. The clock stops at the end of the call."""
        self.listeners.clear()
        self._on_hangup = None
        self.playout.tap = None
        self.recording = None  # it holds this Call's emit: a cycle otherwise
        ended_at_ms = self._clock_ms() if self._clock_ms is not None else 0.0
        self._clock_ms = lambda: ended_at_ms

    def terminated(self, reason: str, duration_s: float) -> None:
        if self._state is CallState.TERMINATED:
            return
        self._state = CallState.TERMINATED
        self._targets.clear()
        self._preroll.clear()
        self._preroll_bytes = 0
        self.playout.close()
        if self._playout is not None:
            self._playout.detach()
            self._playout = None
        self.emit(CallEvents.Disconnected, reason=reason, duration=duration_s)
        if self.recording is not None:  # RecordStopped comes after Disconnected, as in Voximplant
            self.playout.tap = None
            self.recording.stop()
