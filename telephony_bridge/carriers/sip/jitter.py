"""The receive side's small jitter buffer: RTP packets in, in order, duplicates dropped, losses said.

Not a playout buffer: the bridge feeds a model, not a loudspeaker, so a packet that follows the
last one released goes out at once and in-order traffic waits for nothing. Only a gap holds
packets back — until the missing one arrives (a reorder), until `window` packets wait behind it,
or until the oldest has waited `max_wait_ms` (timers are inputs: `poll(now_ms)`). Then the gap is
released as `Lost(packets)`, which the owner conceals with silence, and a straggler arriving later
is dropped as late.

A new SSRC is a new stream (RFC 3550 §8: a restarted sender or another source): what was held of
the old one is released and the window starts again. A sequence jump beyond RFC 3550's
MAX_DROPOUT (or back beyond MAX_MISORDER) is believed only when the next packet follows it (the
sender restarted its sequence); a lone stray packet is dropped. Packets of a payload type the
stream did not negotiate (comfort noise, a codec the peer was not offered) are ignored, but keep
their place in the sequence so they do not read as losses.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Final, NamedTuple

from telephony_bridge.carriers.sip.rtp import RtpPacket, seq_distance

__all__ = ["JitterBuffer", "Lost", "Outcome", "Pushed"]

MAX_DROPOUT: Final = 3000  # RFC 3550 A.1: a jump further ahead than this is a restart, or noise
MAX_MISORDER: Final = 100  # ... and further back than this
_REMEMBERED: Final = 64  # concealed sequence numbers kept, to tell a late packet from a duplicate


class Outcome(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"  # its place was already concealed
    WRONG_PAYLOAD_TYPE = "wrong payload type"
    OUT_OF_SEQUENCE = "out of sequence"  # a jump not (yet) confirmed by the next packet


class Lost(NamedTuple):
    """`packets` packets never came: conceal them."""

    packets: int


class Pushed(NamedTuple):
    outcome: Outcome
    released: list[RtpPacket | Lost]


_IGNORED: Final = RtpPacket(-1, 0, 0, 0, b"")  # a wrong-PT packet's place in the sequence


class JitterBuffer:
    __slots__ = (
        "_accepted",
        "_concealed",
        "_concealed_set",
        "_expected",
        "_held",
        "_probation",
        "lost",
        "max_wait_ms",
        "resets",
        "ssrc",
        "window",
    )

    def __init__(self, payload_types: frozenset[int], window: int = 3, max_wait_ms: float = 60.0) -> None:
        self._accepted = payload_types
        self.window = window
        self.max_wait_ms = max_wait_ms
        self.ssrc: int | None = None
        self._expected = 0  # the next sequence number to release
        self._held: dict[int, tuple[RtpPacket, float]] = {}
        self._probation: int | None = None  # the sequence that would confirm a jump
        self._concealed: deque[int] = deque()
        self._concealed_set: set[int] = set()
        self.lost = 0  # packets released as Lost, over the stream's life
        self.resets = 0  # SSRC changes and confirmed sequence restarts

    def accept_payload_types(self, payload_types: frozenset[int]) -> None:
        """The negotiated payload types changed (a re-INVITE): from now on only these are released."""
        self._accepted = payload_types

    @property
    def held(self) -> int:
        return len(self._held)

    def push(self, packet: RtpPacket, now_ms: float) -> Pushed:
        wanted = packet.payload_type in self._accepted
        released: list[RtpPacket | Lost] = []
        if packet.ssrc != self.ssrc:
            if not wanted:
                return Pushed(Outcome.WRONG_PAYLOAD_TYPE, released)  # a stray packet starts nothing
            if self.ssrc is not None:
                self._flush(released)
                self.resets += 1
            self._restart(packet.ssrc, packet.sequence)
        sequence = packet.sequence
        distance = seq_distance(sequence, self._expected)
        if distance > MAX_DROPOUT or distance < -MAX_MISORDER:
            if self._probation != sequence:
                self._probation = (sequence + 1) & 0xFFFF
                return Pushed(Outcome.OUT_OF_SEQUENCE, released)
            self._flush(released)  # the sender restarted its sequence: believe it
            self.resets += 1
            self._restart(packet.ssrc, sequence)
            distance = 0
        self._probation = None
        if distance < 0:
            outcome = Outcome.LATE if sequence in self._concealed_set else Outcome.DUPLICATE
            return Pushed(outcome, released)
        if sequence in self._held:
            return Pushed(Outcome.DUPLICATE, released)
        self._held[sequence] = (packet if wanted else _IGNORED, now_ms)
        self._release(released, now_ms)
        return Pushed(Outcome.ACCEPTED if wanted else Outcome.WRONG_PAYLOAD_TYPE, released)

    def poll(self, now_ms: float) -> list[RtpPacket | Lost]:
        """Release what has waited behind a gap for `max_wait_ms` (call every frame or so)."""
        released: list[RtpPacket | Lost] = []
        if self._held:
            self._release(released, now_ms)
        return released

    # --- internals ------------------------------------------------------------------------------
    def _restart(self, ssrc: int, sequence: int) -> None:
        self.ssrc = ssrc
        self._expected = sequence
        self._held.clear()
        self._probation = None
        self._concealed.clear()
        self._concealed_set.clear()

    def _release(self, released: list[RtpPacket | Lost], now_ms: float) -> None:
        held = self._held
        while True:
            while (entry := held.pop(self._expected, None)) is not None:
                if entry[0] is not _IGNORED:
                    released.append(entry[0])
                self._expected = (self._expected + 1) & 0xFFFF
            if not held:
                return
            if len(held) < self.window and now_ms - min(at for _, at in held.values()) < self.max_wait_ms:
                return
            # Give up on the gap: the next held packet is where the stream goes on.
            next_sequence = min(held, key=lambda s: seq_distance(s, self._expected))
            missing = seq_distance(next_sequence, self._expected)
            for offset in range(min(missing, _REMEMBERED)):
                self._remember_concealed((next_sequence - 1 - offset) & 0xFFFF)
            released.append(Lost(missing))
            self.lost += missing
            self._expected = next_sequence

    def _flush(self, released: list[RtpPacket | Lost]) -> None:
        """Release everything held, in order, without concealing the gaps (the stream is ending)."""
        expected = self._expected
        for sequence in sorted(self._held, key=lambda s: seq_distance(s, expected)):
            packet = self._held[sequence][0]
            if packet is not _IGNORED:
                released.append(packet)
        self._held.clear()

    def _remember_concealed(self, sequence: int) -> None:
        if sequence in self._concealed_set:
            return
        self._concealed.append(sequence)
        self._concealed_set.add(sequence)
        if len(self._concealed) > _REMEMBERED:
            self._concealed_set.discard(self._concealed.popleft())
