"""Playout: the one owner of audio on its way to one call's phone, and of what the caller heard.

Every model answer and every prompt of a call goes through its `Playout`: converted once from
the source's format to the carrier's (`audio/convert.py`), written to the carrier link, and
entered in the call's `PlaybackLedger` (what was sent, what was heard). Barge-in goes through it
too: it stops at once, drops what is queued, and tells the carrier to clear what it buffers.

Two ways to know what was heard, behind the one interface, chosen by the carrier's capabilities:

- **marks** (Twilio, and every carrier that echoes marks): audio is written as it comes, each
  segment followed by a mark; the carrier's echo confirms the segment played. Exact.
- **clock** (carriers without mark echo): the bridge paces the audio itself, 20 ms frames on the
  event loop's clock, and confirms each segment when it has played by that clock: a segment
  written at `t` plays at `t + lead`, where `lead` is what the far end buffers
  (`Capabilities.playout_lead_ms`). So heard = sent − lead, and a truncation is off by at most
  the error in the declared lead plus the loop's lag. Little is ever queued at the carrier (one
  frame, plus its buffer), so a carrier that cannot clear still stops within its lead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from telephony_bridge.audio.convert import Converter, converter
from telephony_bridge.audio.formats import AudioFormat
from telephony_bridge.carriers.base import Capabilities
from telephony_bridge.realtime.playback import Interruption, MarkOutcome, PlaybackLedger
from telephony_bridge.tasks import TaskOwner

log = logging.getLogger("telephony_bridge.call")

FRAME_MS = 20


class CarrierLink(Protocol):
    """The carrier side of one call: a media stream the bridge writes to (server/session.py)."""

    capabilities: Capabilities
    audio_format: AudioFormat  # what the stream carries, both ways

    async def send_media(self, audio: bytes) -> None: ...
    async def send_mark(self, name: str) -> None: ...
    async def send_clear(self) -> None: ...


def _ignore_mark(name: str, at_ms: float) -> None:
    pass


class PlayoutTap(Protocol):
    """Told of everything the Playout writes and clears (a call recording): appends only."""

    def wrote(self, at_ms: float, audio: bytes) -> None: ...  # audio can play from at_ms
    def cleared(self, at_ms: float) -> None: ...


class Confirmation(Enum):
    MARKS = "marks"  # the carrier echoes marks
    CLOCK = "clock"  # the bridge paces and confirms by its clock


class Playout:
    def __init__(
        self,
        link: CarrierLink,
        tasks: TaskOwner,
        clock_ms: Callable[[], float],
        on_mark: Callable[[str, float], None],
        lead_ms: float | None = None,
    ) -> None:
        self.ledger = PlaybackLedger()
        self._link = link
        self._tasks = tasks
        self._clock_ms = clock_ms
        self._on_mark = on_mark  # (name, when it played): a confirmed mark, as if the carrier had echoed it
        capabilities = link.capabilities
        self.confirmation = Confirmation.MARKS if capabilities.marks else Confirmation.CLOCK
        self.lead_ms = capabilities.playout_lead_ms if lead_ms is None else lead_ms
        self._can_clear = capabilities.clear
        self._converter: Converter | None = None
        self._clearing: asyncio.Task[Any] | None = None  # the carrier clear of the last interrupt
        # Clock mode: audio waiting to be paced out, as [audio, mark, send_at_ms, confirm_at_ms].
        self._frame_bytes = link.audio_format.bytes_per_ms * FRAME_MS
        self._queue: deque[list[Any]] = deque()
        self._confirmations: deque[tuple[float, str]] = deque()
        self._play_end_ms = 0.0  # when everything queued will have played, by the clock
        self._pacer: asyncio.Task[Any] | None = None
        self._wake = asyncio.Event()
        self.tap: PlayoutTap | None = None  # a recording of the call, while one runs

    @property
    def carrier_format(self) -> AudioFormat:
        return self._link.audio_format

    # --- model audio --------------------------------------------------------------------------
    def source_format(self, audio_format: AudioFormat) -> None:
        """The format the model's audio arrives in (set when a client starts sending media)."""
        if self._converter is None or self._converter.src != audio_format:
            self._converter = converter(audio_format, self._link.audio_format)

    async def play(
        self, response_id: str, item_id: str, content_index: int, audio: bytes, duration_ms: float
    ) -> bool | None:
        """One model delta. None when dropped (its answer was interrupted: pitfall 6); otherwise
        whether it started an episode (`WebSocketMediaStarted`)."""
        ledger = self.ledger
        if not ledger.accepts(response_id):
            return None
        clearing = self._clearing
        if clearing is not None:
            if not clearing.done():
                await clearing  # the new answer's audio must not reach the carrier before the clear
                if not ledger.accepts(response_id):
                    return None
            self._clearing = None
        assert self._converter is not None, "source_format() first"
        ledger.audio_received(response_id, item_id, content_index, duration_ms)
        out = self._converter.process(audio)
        starting = not ledger.episode_active
        if self.confirmation is Confirmation.MARKS:
            # A marks carrier that buffers before playing (SIP: its RTP stream's clock and the far
            # end's jitter buffer; Capabilities.playout_lead_ms, 0 for the others) starts audio
            # written after a quiet spell that long after it is written: what was heard of it is
            # counted from then until its mark echoes (realtime/playback.py, _head_progress).
            starts_ms = self._clock_ms() + self.lead_ms
            mark = ledger.audio_sent(response_id, item_id, content_index, duration_ms, starts_ms)
            if out:  # a tiny first delta can sit entirely in the resampler's look-ahead
                if self.tap is not None:
                    self.tap.wrote(self._clock_ms(), out)
                await self._link.send_media(out)
            await self._link.send_mark(mark)
        else:
            starts_ms = self._schedule_start()
            mark = ledger.audio_sent(response_id, item_id, content_index, duration_ms, starts_ms)
            self._enqueue(out, mark, starts_ms, duration_ms)
        return starting

    async def finish_audio(self, response_id: str) -> None:
        """The answer's audio is complete: push out the resampler's look-ahead tail."""
        if self._converter is None or not self.ledger.accepts(response_id):
            return
        tail = self._converter.flush()
        if tail:
            await self._write(tail)

    # --- prompts ------------------------------------------------------------------------------
    async def play_prompt(self, audio: bytes, audio_format: AudioFormat, mark: str) -> None:
        """A prompt (call.startPlayback): written like model audio, confirmed by `mark`."""
        prompt = converter(audio_format, self._link.audio_format)
        out = prompt.process(audio) + prompt.flush()
        if self.confirmation is Confirmation.MARKS:
            step = self._link.audio_format.bytes_per_ms * 1000  # one second per media message
            for start in range(0, len(out), step):
                if self.tap is not None:
                    self.tap.wrote(self._clock_ms(), out[start : start + step])
                await self._link.send_media(out[start : start + step])
            await self._link.send_mark(mark)
        else:
            self._enqueue(out, mark, self._schedule_start(), self._link.audio_format.duration_ms(len(out)))

    def stop_prompt(self) -> None:
        """Stop a prompt that is not model audio (the ledger has nothing to interrupt)."""
        self._drop_queue()
        if self._can_clear:
            if self.tap is not None:
                self.tap.cleared(self._clock_ms())
            self._clearing = self._tasks.spawn(self._link.send_clear(), name="stop playback")

    # --- carrier echoes and barge-in ------------------------------------------------------------
    def mark_echoed(self, name: str, at_ms: float | None = None) -> MarkOutcome:
        return self.ledger.mark_echoed(name, self._clock_ms() if at_ms is None else at_ms)

    def interrupt(self) -> Interruption | None:
        """Stop playback at once and say what to truncate; None (and nothing done) when nothing
        was playing. Synchronous: see PlayoutChannel.interrupt."""
        now = self._clock_ms()
        if self.confirmation is Confirmation.CLOCK and not self._can_clear:
            # What the carrier already has will play to its end, whatever the bridge does: the
            # caller hears everything written so far, so that is where the truncation goes.
            now = self._queue[0][2] + self.lead_ms if self._queue else max(now, self._play_end_ms)
            while self._confirmations and self._confirmations[0][0] <= now:
                played_at, name = self._confirmations.popleft()
                self._on_mark(name, played_at)
        interruption = self.ledger.interrupt(now)
        if interruption is None:
            return None
        self._drop_queue()
        # pitfall 3: clear even when all audio was already sent — it may still be queued at the carrier.
        if self._can_clear:
            if self.tap is not None:
                self.tap.cleared(self._clock_ms())
            self._clearing = self._tasks.spawn(self._link.send_clear(), name="clear carrier playback")
        if self._converter is not None:
            self._converter.reset()
        return interruption

    def close(self) -> None:
        """The call ended: nothing more is written, and the call's callbacks are let go (a
        reference cycle otherwise: the call holds its playout, which holds the call's methods)."""
        self._drop_queue()
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None
        ended_at_ms = self._clock_ms()
        self._clock_ms = lambda: ended_at_ms
        self._on_mark = _ignore_mark

    # --- writing --------------------------------------------------------------------------------
    async def _write(self, audio: bytes) -> None:
        if self.confirmation is Confirmation.MARKS:
            if self.tap is not None:
                self.tap.wrote(self._clock_ms(), audio)
            await self._link.send_media(audio)
        else:
            self._enqueue(audio, None, self._schedule_start(), self._link.audio_format.duration_ms(len(audio)))

    def _schedule_start(self) -> float:
        """When audio queued now starts playing at the far end: after what is queued, and never
        before it could get there."""
        return max(self._clock_ms() + self.lead_ms, self._play_end_ms)

    def _enqueue(self, audio: bytes, mark: str | None, starts_ms: float, duration_ms: float) -> None:
        self._play_end_ms = starts_ms + duration_ms
        self._queue.append([audio, mark, starts_ms - self.lead_ms, self._play_end_ms])
        if self._pacer is None or self._pacer.done():
            self._pacer = self._tasks.spawn(self._pace(), name="playout pacer")
        self._wake.set()

    def _drop_queue(self) -> None:
        self._queue.clear()
        self._confirmations.clear()
        self._play_end_ms = 0.0

    async def _pace(self) -> None:
        """Clock mode: write each queued frame when it is due, and confirm each mark once its
        audio has played at the far end."""
        frame_bytes, frame_ms = self._frame_bytes, float(FRAME_MS)
        queue, confirmations = self._queue, self._confirmations
        while True:
            now = self._clock_ms()
            while confirmations and confirmations[0][0] <= now:
                played_at, name = confirmations.popleft()
                self._on_mark(name, played_at)
            if queue:
                head = queue[0]
                if head[2] <= now + 1.0:  # due (a millisecond early is on time)
                    audio = head[0]
                    frame, head[0] = audio[:frame_bytes], audio[frame_bytes:]
                    if frame and self.tap is not None:  # it plays at the far end after the lead
                        self.tap.wrote(head[2] + self.lead_ms, frame)
                    head[2] += frame_ms
                    if not head[0]:
                        queue.popleft()
                        if head[1] is not None:
                            confirmations.append((head[3], head[1]))
                    if frame:
                        await self._link.send_media(frame)
                    continue
                wait_ms = head[2] - now
            elif confirmations:
                wait_ms = confirmations[0][0] - now
            else:
                self._wake.clear()
                await self._wake.wait()
                continue
            if confirmations:
                wait_ms = min(wait_ms, confirmations[0][0] - now)
            await asyncio.sleep(max(wait_ms, 0.0) / 1000)
