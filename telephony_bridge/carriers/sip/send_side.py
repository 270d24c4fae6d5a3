"""What one RTP stream sends at each 20 ms tick, and when each mark has played: sans-I/O.

The stream's clock (server/rtp_stream.py) calls `tick(now, ticks, lead)` when ticks are due and
sends the packets it returns (one per tick; after a stall, the missed ticks' audio too, bounded);
everything else here is state. Per tick, in this order:

1. on hold (direction without send, or no address) nothing is sent: the queue waits, the
   timestamp moves on, and the next audio starts a talk spurt;
2. a digit being sent takes the tick (RFC 4733 event packets, then a pause of silence);
3. otherwise the next 160 bytes of queued audio go (a short last piece padded with silence:
   the end of a talk spurt), or comfort silence when nothing is queued;
4. except in the middle of a talk spurt: a tick that finds less than a frame queued is held, up
   to `max_held_ticks` (as many ticks as the far end's jitter allowance spans: 2 for its default
   40 ms), not filled with silence, because the model's next audio is more likely late than over.
   When a whole frame is queued again (`serve_held`, from the stream's write) it goes at once in
   the held ticks' slots, late by less than the allowance, which the far end's jitter buffer
   absorbs; filled with silence, every late delta would have pushed the rest of the answer
   a whole tick later, for good (a model streaming in real time, GPT-Live's continuous output,
   lost a tick each time the loop was slow). Still nothing when the bound is reached: the spurt
   is over, a short last piece goes padded, and otherwise the held ticks are a gap the timestamp
   covers (silence suppression) before comfort silence resumes.

Marks: a mark placed after some audio has played at the far end once its last byte has left in
a packet and the far end's lead has passed (`lead_s`: RTT/2 + its jitter buffer): ``sent +
lead``, the queue in front of it counted, and never before the frame ahead of it has played (a
frame of a catch-up burst or a late one plays after the one before it). `due_echoes(now)` hands
out those whose time has come, in order; `clear` drops the queue and hands back the marks that
were waiting (flushed).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from telephony_bridge.audio.formats import Encoding
from telephony_bridge.carriers.sip.dtmf import DIGITS, EventTick, digit_train
from telephony_bridge.carriers.sip.rtp import RtpSender
from telephony_bridge.carriers.sip.sending import OutboundAudio

__all__ = ["FRAME_BYTES", "MAX_CATCH_UP_TICKS", "MAX_HELD_TICKS", "SAMPLES_PER_FRAME", "SILENCE", "SendSide"]

SAMPLES_PER_FRAME: Final = 160  # 20 ms at 8 kHz
# A stall of the loop up to this many ticks past the due one is made up at once (80 ms of audio in
# one burst at most); a jitter buffer's depth is of that order.
MAX_CATCH_UP_TICKS: Final = 3
# Ticks mid-spurt that may wait for late audio, by default: their packets then leave less than
# 40 ms late, the far end's jitter allowance unless SIP_JITTER_ALLOWANCE_MS says otherwise (the
# stream sets `max_held_ticks` from it).
MAX_HELD_TICKS: Final = 2
FRAME_BYTES: Final = 160  # of G.711
SILENCE: Final[Mapping[Encoding, bytes]] = {Encoding.ULAW: b"\xff" * FRAME_BYTES, Encoding.ALAW: b"\xd5" * FRAME_BYTES}
_PAYLOAD_ENCODINGS: Final = {0: Encoding.ULAW, 8: Encoding.ALAW}


class SendSide:
    __slots__ = (
        "_digits",
        "_echoes",
        "_event_timestamp",
        "_events",
        "_far_end_busy_until",
        "_held",
        "_queue",
        "event_payload_type",
        "max_held_ticks",
        "payload_type",
        "sender",
        "sending",
        "to_wire",
    )

    def __init__(self, max_queued_bytes: int, sender: RtpSender | None = None) -> None:
        self.sender = sender or RtpSender()
        self.payload_type = 0
        self.event_payload_type: int | None = None
        self.sending = False  # the direction allows it and there is somewhere to send
        self.to_wire: Callable[[bytes], bytes] | None = None  # transcoding, after a codec change
        self._queue = OutboundAudio(max_queued_bytes)
        self._digits: deque[str] = deque()
        self._events: deque[EventTick] = deque()
        self._event_timestamp = 0
        self._far_end_busy_until = 0.0  # when the far end will have played all the audio sent (s)
        self._held = 0  # due ticks mid-spurt that found nothing queued, waiting for late audio (step 4)
        self.max_held_ticks = MAX_HELD_TICKS
        self._echoes: deque[tuple[float, str]] = deque()  # (when it has played, mark), in order

    # --- what the session writes ------------------------------------------------------------------
    def write(self, audio: bytes) -> bool:
        """Queue model audio; False when the queue is full (nothing queued)."""
        return self._queue.append(audio)

    def mark(self, name: str, now_s: float) -> None:
        if self._queue.queued_bytes:
            self._queue.mark(name)
        else:  # all its audio has left: it has played once the far end has played what was sent
            self._echo_at(max(now_s, self._far_end_busy_until), name)

    def clear(self) -> list[str]:
        """Barge-in: drop the queued audio; the marks that were waiting or due (to echo at once)."""
        flushed = [name for _, name in self._echoes] + self._queue.clear()
        self._echoes.clear()
        self._drop_held()
        self.sender.talk_spurt_ended()  # what the agent says next starts a new spurt
        return flushed

    def digits(self, digits: str) -> None:
        """Queue DTMF to send (ValueError for anything but 0-9, *, #, A-D, or without telephone-event)."""
        if self.event_payload_type is None:
            raise ValueError("the far end did not negotiate telephone-event")
        if not digits or any(d not in DIGITS for d in digits):
            raise ValueError(f"{digits[:20]!r} are not DTMF digits")
        self._drop_held()  # the digits start at the next tick, not in a slot already past
        self._digits.extend(digits)

    # --- the clock ------------------------------------------------------------------------------
    def tick(self, now_s: float, ticks: int, lead_s: float) -> list[bytes]:
        """The packets for the ticks due at `now_s`, in order: one when on time. After a stall
        (`ticks` > 1) the missed ticks' audio goes too, back to back, up to MAX_CATCH_UP_TICKS of
        it: a jitter buffer takes a short burst, whereas audio served one packet per late tick
        would play later and later under load, a missed tick's worth each time. The oldest ticks
        of a longer stall, and missed ticks with nothing queued, are a gap the timestamp covers.
        Ticks held mid-spurt (step 4 above) count as missed ones, oldest first."""
        sender = self.sender
        packets: list[bytes] = []
        due = self._held + ticks
        self._held = 0
        gap = max(0, due - 1 - MAX_CATCH_UP_TICKS)
        if gap:
            sender.advance(SAMPLES_PER_FRAME * gap)
            if not self._has_something_to_send():
                sender.talk_spurt_ended()  # a stall past the bound, and nothing queued: the spurt is over
        for still_due in range(due - gap - 1, -1, -1):  # ticks due after this one
            if not self.sending:
                sender.talk_spurt_ended()
            elif self._frame_ready():
                # Back to back; the play cursor (_next) has each play after the one before it.
                packets.append(self._next(now_s, lead_s))
            elif sender.in_talk_spurt and still_due < self.max_held_ticks:
                self._held = still_due + 1  # this tick and the rest wait for the model's late audio
                return packets
            elif self._has_something_to_send():  # held as long as it may be: the spurt's last piece
                packets.append(self._next(now_s, lead_s))
            else:
                sender.talk_spurt_ended()  # nothing came: the spurt is over
                if still_due == 0:
                    packets.append(self._next(now_s, lead_s))  # comfort silence
            sender.advance(SAMPLES_PER_FRAME)
        return packets

    @property
    def held_ticks(self) -> int:
        """Ticks held mid-spurt for late audio (`serve_held` sends them when it comes)."""
        return self._held

    def serve_held(self, now_s: float, lead_s: float) -> list[bytes]:
        """The held ticks' packets, now that audio is queued again: back to back, in their own
        slots (their timestamps), so the talk spurt goes on without a gap."""
        packets: list[bytes] = []
        while self._held and self.sending and self._frame_ready():
            packets.append(self._next(now_s, lead_s))
            self.sender.advance(SAMPLES_PER_FRAME)
            self._held -= 1
        return packets

    def _has_something_to_send(self) -> bool:
        return self._queue.queued_bytes > 0 or bool(self._events) or bool(self._digits)

    def _frame_ready(self) -> bool:
        """A whole frame of audio queued, or a digit's packets to send."""
        return self._queue.queued_bytes >= FRAME_BYTES or bool(self._events) or bool(self._digits)

    def due_echoes(self, now_s: float) -> list[str]:
        echoes, due = self._echoes, []
        while echoes and echoes[0][0] <= now_s:
            due.append(echoes.popleft()[1])
        return due

    @property
    def next_echo_s(self) -> float | None:
        return self._echoes[0][0] if self._echoes else None

    def stop(self) -> None:
        self._held = 0
        self._queue.clear()
        self._echoes.clear()
        self._digits.clear()
        self._events.clear()

    # --- internals ------------------------------------------------------------------------------
    def _drop_held(self) -> None:
        """The held ticks will get no audio (barge-in): a gap the timestamp covers."""
        if self._held:
            self.sender.advance(SAMPLES_PER_FRAME * self._held)
            self._held = 0

    def _next(self, now_s: float, lead_s: float) -> bytes:
        sender = self.sender
        if self.event_payload_type is None:  # renegotiated without telephone-event: nothing to send them with
            self._digits.clear()
            self._events.clear()
        if not self._events and self._digits:
            self._events.extend(digit_train(self._digits.popleft()))
        if self._events:
            assert self.event_payload_type is not None
            event = self._events.popleft()
            if event.payload is None:  # the pause after a digit
                return sender.audio(self.payload_type, self._silence(), voiced=False)
            if event.first:
                self._event_timestamp = sender.timestamp
            packet = sender.packet(self.event_payload_type, event.payload, self._event_timestamp, event.first)
            sender.talk_spurt_ended()
            return packet
        frame, marks = self._queue.take(FRAME_BYTES)
        if frame is None:
            payload, voiced = self._silence(), False
        else:
            payload, voiced = frame, True
            if len(frame) < FRAME_BYTES:  # the end of a talk spurt: a whole frame, padded with silence
                payload = frame + self._silence()[len(frame) :]
            if self.to_wire is not None:
                payload = self.to_wire(payload)
        # The far end plays each frame after the one before it, never earlier than `lead` after it
        # left: one play cursor that only moves forward, whatever order late and catch-up packets
        # leave in.
        starts = max(now_s + lead_s, self._far_end_busy_until)
        if frame is not None:
            self._far_end_busy_until = starts + len(frame) / 8000
        for name, offset in marks:
            played_at = starts + offset / 8000 if frame is not None else self._far_end_busy_until
            self._echo_at(max(now_s, played_at), name)
        return sender.audio(self.payload_type, payload, voiced)

    def _echo_at(self, due_s: float, name: str) -> None:
        if self._echoes and self._echoes[-1][0] > due_s:
            due_s = self._echoes[-1][0]  # FIFO: a mark never plays before the one ahead of it
        self._echoes.append((due_s, name))

    def _silence(self) -> bytes:
        return SILENCE[_PAYLOAD_ENCODINGS.get(self.payload_type, Encoding.ULAW)]
