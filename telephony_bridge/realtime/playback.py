"""What the caller has actually heard of the model's audio: the playback ledger.

A pure state machine: no asyncio, no clock, no I/O. Every time is an explicit ``now_ms`` from the
caller (the event loop's monotonic clock, in ms), so tests drive it on a fake clock.

The model on the carrier
------------------------
Model audio goes to the carrier as *segments* (one media frame per model delta), each followed by
a *mark*. The carrier buffers segments, plays them FIFO in real time and echoes a mark once the
audio before it has finished playing (at once if nothing is buffered). ``clear`` drops the buffer
and echoes *every* pending mark at once. So an echoed mark means "played or flushed"; the ledger
tells the two apart by a generation in the mark name (``g{generation}.{seq}``): ``interrupt``
bumps the generation, and any mark of an older generation is *flushed*, never *played*.

What the caller heard of an item is the audio confirmed by marks plus, for the one segment playing
now (the oldest unconfirmed one), the time since it started: it starts when the previous mark was
confirmed, or when it was sent if the carrier's buffer was empty by then. That interpolation is
bounded by the segment's duration; marks are the truth and the clock never runs past them (the
"time since the first delta" approach is wrong whenever audio arrives faster than real time,
which it always does).

Wiring it into the runtime (one ledger per call)
------------------------------------------------
* ``response.created`` → ``response_started(id)``; ``response.output_item.added`` of an assistant
  *message* item → ``item_added(response_id, item_id)`` (not for function calls: an interrupt
  deletes items that have no audio yet); ``response.done`` → ``response_finished(id)``.
* Each audio delta: ``if not ledger.accepts(response_id): drop it`` (late deltas of an interrupted
  response, pitfall 6); ``audio_received(...)`` with the delta's duration as the server sent it
  (the clamp bound for truncation); then, synchronously with writing the frame,
  ``name = audio_sent(...)`` with the duration of the μ-law actually sent, and write the media
  frame followed by ``mark(name)``. Call ``audio_sent`` with no ``await`` between it and the
  ``accepts`` check, and flush the resampler's tail before ``response_finished``: ``audio_sent``
  refuses responses that are not in progress.
* Check ``episode_active`` *before* ``audio_sent``: if it was False, that frame starts an episode
  (``WebSocketMediaStarted``). ``EpisodeEnded`` comes back from ``mark_echoed``,
  ``response_finished`` or ``interrupt`` (``WebSocketMediaEnded``).
* Caller speech / barge-in → ``interrupt(now_ms)``. When it returns an ``Interruption``, the
  runtime MUST send the carrier ``clear`` even if every frame was already written (pitfall 3: the
  audio is queued at the carrier, not in the bridge), cancel ``interrupted_response_ids``
  (``response.cancel``), and send one ``conversation.item.truncate`` (or ``.delete`` when
  ``delete``) per ``Truncation``. When it returns None nothing was playing or pending: no
  ``clear``, no "interrupted" event (pitfall 4). Any ``clear`` sent for another reason must also
  go through ``interrupt`` first, or the marks it flushes would be counted as played.

State is dropped at each interrupt and whenever playback settles (all audio confirmed, no response
in progress), so memory does not grow over a long call.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EpisodeEnded",
    "Interruption",
    "MarkOutcome",
    "PlaybackLedger",
    "Truncation",
]


@dataclass(frozen=True, slots=True)
class EpisodeEnded:
    """A stretch of model audio to the caller is over (``WebSocketMediaEnded``)."""

    duration_ms: float  # audio the caller heard in the episode (confirmed, plus interpolation if interrupted)
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class MarkOutcome:
    kind: Literal["played", "flushed", "unknown"]
    item_id: str | None = None  # only for "played"
    content_index: int | None = None
    played_ms: float = 0.0  # position within the item confirmed played, after this mark
    episode_ended: EpisodeEnded | None = None


@dataclass(frozen=True, slots=True)
class Truncation:
    item_id: str
    content_index: int
    audio_end_ms: int  # never beyond the audio the server sent, never negative
    delete: bool  # nothing heard: truncating at 0 is refused by the API, delete the item instead


@dataclass(frozen=True, slots=True)
class Interruption:
    generation: int  # marks named with an older generation are "flushed" from now on
    truncations: tuple[Truncation, ...]
    cleared_ms: float  # audio sent to the carrier that the caller will now never hear
    episode_ended: EpisodeEnded | None
    interrupted_response_ids: tuple[str, ...]  # responses still in progress: cancel them


_UNKNOWN = MarkOutcome("unknown")
_FLUSHED = MarkOutcome("flushed")

_Key = tuple[str, int]  # (item_id, content_index)


@dataclass(slots=True)
class _Segment:
    seq: int
    key: _Key
    duration_ms: float
    sent_ms: float


@dataclass(slots=True)
class _ItemAudio:
    response_id: str
    received_ms: float = 0.0
    confirmed_ms: float = 0.0
    unconfirmed: int = 0  # segments of this item sent but not yet confirmed


def _check_duration(duration_ms: float) -> None:
    if not duration_ms >= 0 or math.isinf(duration_ms):  # `not >=` also catches NaN
        raise ValueError(f"duration_ms must be a finite non-negative number, got {duration_ms!r}")


class PlaybackLedger:
    """Tracks model audio sent to the phone against what the phone confirmed playing.

    See the module docstring for the carrier model and how the runtime drives it.
    """

    __slots__ = (
        "_episode_active",
        "_episode_played_ms",
        "_generation",
        "_items",
        "_last_confirmed_ms",
        "_next_seq",
        "_responses",
        "_segments",
        "_silent_items",
    )

    def __init__(self) -> None:
        self._generation = 0
        self._next_seq = 0
        # Unconfirmed segments of the current generation, in the order the carrier plays them.
        self._segments: deque[_Segment] = deque()
        # When the most recent mark of this generation was confirmed: the earliest moment the
        # oldest unconfirmed segment can have started playing.
        self._last_confirmed_ms: float | None = None
        # Responses in progress and not interrupted (a dict keeps their order for cancelling).
        self._responses: dict[str, None] = {}
        self._items: dict[_Key, _ItemAudio] = {}
        # Assistant items announced but without audio yet: item_id -> response_id.
        self._silent_items: dict[str, str] = {}
        self._episode_active = False
        self._episode_played_ms = 0.0

    # -- introspection ---------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def episode_active(self) -> bool:
        """True between the first ``audio_sent`` after idle and the ``EpisodeEnded`` that closes it.

        Read it before ``audio_sent``: False then means that frame starts an episode.
        """
        return self._episode_active

    @property
    def pending_marks(self) -> int:
        """Marks of the current generation sent and not yet echoed."""
        return len(self._segments)

    def is_active(self, now_ms: float) -> bool:
        """Whether anything is playing or pending: unconfirmed audio or a response in progress.

        Marks, not the clock, decide: ``now_ms`` is accepted for symmetry with the other queries
        (a carrier without playback acks would need it) and does not change the answer.
        """
        return bool(self._segments) or bool(self._responses)

    def accepts(self, response_id: str) -> bool:
        """Whether audio of ``response_id`` may still be played: started, not finished, not interrupted."""
        return response_id in self._responses

    def heard_ms(self, item_id: str, content_index: int, now_ms: float) -> float:
        """How much of the item's audio the caller has heard by ``now_ms``.

        0.0 for an item the ledger no longer tracks (after an interrupt, or once playback settled;
        ``MarkOutcome.played_ms`` and ``EpisodeEnded`` carry the final figures).
        """
        key = (item_id, content_index)
        item = self._items.get(key)
        if item is None:
            return 0.0
        heard = item.confirmed_ms
        if self._segments and self._segments[0].key == key:
            heard += self._head_progress(now_ms)
        return heard

    # -- response lifecycle ----------------------------------------------------------------

    def response_started(self, response_id: str) -> None:
        """A response is in progress (``response.created``).

        Required before its audio: ``accepts`` is False for a response the ledger was never told
        about, which is what lets it forget interrupted responses instead of remembering their ids.
        """
        self._responses[response_id] = None

    def item_added(self, response_id: str, item_id: str) -> None:
        """An assistant message item was added to a response; it has no audio yet.

        If the caller barges in before its first delta, ``interrupt`` deletes it.
        """
        if response_id not in self._responses:
            return  # an interrupted response keeps announcing items; they are not ours any more
        if any(key[0] == item_id for key in self._items):
            return
        self._silent_items[item_id] = response_id

    def response_finished(self, response_id: str) -> EpisodeEnded | None:
        """The response is done (``response.done``). Returns ``EpisodeEnded`` if playback settled."""
        if response_id not in self._responses:
            return None  # unknown or interrupted: its state went with the interrupt
        del self._responses[response_id]
        # Items that never got audio never will (e.g. text-only output): nothing to truncate.
        for item_id in [i for i, r in self._silent_items.items() if r == response_id]:
            del self._silent_items[item_id]
        return self._settle()

    # -- audio -----------------------------------------------------------------------------

    def audio_received(self, response_id: str, item_id: str, content_index: int, duration_ms: float) -> None:
        """The server sent ``duration_ms`` of audio for the item: the bound truncation never exceeds.

        Ignored for a response that is not in progress (a late delta after an interrupt).
        """
        _check_duration(duration_ms)
        if response_id not in self._responses:
            return
        self._item(response_id, item_id, content_index).received_ms += duration_ms

    def audio_sent(
        self,
        response_id: str,
        item_id: str,
        content_index: int,
        duration_ms: float,
        now_ms: float,
    ) -> str:
        """A segment of ``duration_ms`` was written to the carrier at ``now_ms``.

        Returns the name of the mark to send right after it. Raises ``ValueError`` if the response
        is not in progress: its audio must be dropped, not played (check ``accepts`` first).
        """
        _check_duration(duration_ms)
        if response_id not in self._responses:
            raise ValueError(f"response {response_id!r} is not in progress; drop its audio")
        item = self._item(response_id, item_id, content_index)
        item.unconfirmed += 1
        seq = self._next_seq
        self._next_seq = seq + 1
        self._segments.append(_Segment(seq, (item_id, content_index), duration_ms, now_ms))
        if not self._episode_active:
            self._episode_active = True
            self._episode_played_ms = 0.0
        return f"g{self._generation}.{seq}"

    def mark_echoed(self, name: str, now_ms: float) -> MarkOutcome:
        """The carrier echoed mark ``name`` at ``now_ms``.

        ``played``: the audio before it finished playing. ``flushed``: it belonged to a generation
        an interrupt cleared, so it says nothing about playback. ``unknown``: not a mark of this
        ledger, or echoed twice.
        """
        generation, seq = _parse_mark(name)
        if generation != self._generation:
            if 0 <= generation < self._generation:
                return _FLUSHED
            return _UNKNOWN
        segments = self._segments
        if not segments or seq < segments[0].seq or seq > segments[-1].seq:
            return _UNKNOWN
        # FIFO playback: an echo for a later segment means every earlier one finished too (their
        # own marks were lost), so they are confirmed with it.
        while True:
            segment = segments.popleft()
            item = self._items[segment.key]
            item.confirmed_ms += segment.duration_ms
            item.unconfirmed -= 1
            self._episode_played_ms += segment.duration_ms
            if segment.seq >= seq:
                break
        self._last_confirmed_ms = now_ms
        played_ms = item.confirmed_ms
        item_id, content_index = segment.key
        return MarkOutcome("played", item_id, content_index, played_ms, self._settle())

    # -- barge-in --------------------------------------------------------------------------

    def interrupt(self, now_ms: float) -> Interruption | None:
        """The caller barged in at ``now_ms``: stop playback and say how to truncate.

        Returns None, changing nothing, when nothing is playing or pending (no unconfirmed audio,
        no response in progress). Otherwise the generation is bumped (pending marks become
        flushed), every response in progress stops being accepted, and the ledger is idle again.

        There is one ``Truncation`` for every assistant item the caller did not hear to the end:
        at what was heard, clamped to what the server sent and floored to whole ms, or ``delete``
        when that is 0 ms (an item with no audio yet included). Fully played items get none.

        The runtime must send ``clear`` to the carrier whenever this returns an ``Interruption``,
        even if all audio was already written: it is buffered at the carrier (pitfall 3).
        """
        if not self._segments and not self._responses:
            return None
        progress = self._head_progress(now_ms) if self._segments else 0.0
        head_key = self._segments[0].key if self._segments else None
        truncations: list[Truncation] = []
        for key, item in self._items.items():
            if item.unconfirmed == 0 and item.response_id not in self._responses:
                continue  # played to the end and complete: the server's item is what was heard
            heard = item.confirmed_ms + (progress if key == head_key else 0.0)
            end = max(0, math.floor(min(heard, item.received_ms)))
            truncations.append(Truncation(key[0], key[1], end, end == 0))
        truncations.extend(Truncation(item_id, 0, 0, True) for item_id in self._silent_items)
        cleared_ms = sum(s.duration_ms for s in self._segments) - progress
        episode_ended = (
            EpisodeEnded(self._episode_played_ms + progress, interrupted=True) if self._episode_active else None
        )
        interrupted = tuple(self._responses)

        self._generation += 1
        self._next_seq = 0
        self._segments.clear()
        self._last_confirmed_ms = None
        self._responses.clear()
        self._items.clear()
        self._silent_items.clear()
        self._episode_active = False
        self._episode_played_ms = 0.0
        return Interruption(
            generation=self._generation,
            truncations=tuple(truncations),
            cleared_ms=max(0.0, cleared_ms),
            episode_ended=episode_ended,
            interrupted_response_ids=interrupted,
        )

    # -- internals -------------------------------------------------------------------------

    def _item(self, response_id: str, item_id: str, content_index: int) -> _ItemAudio:
        key = (item_id, content_index)
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _ItemAudio(response_id)
            self._silent_items.pop(item_id, None)
        return item

    def _head_progress(self, now_ms: float) -> float:
        """How far the oldest unconfirmed segment has played by ``now_ms`` (caller ensures one exists)."""
        head = self._segments[0]
        started = head.sent_ms
        if self._last_confirmed_ms is not None and self._last_confirmed_ms > started:
            started = self._last_confirmed_ms
        elapsed = now_ms - started
        if elapsed <= 0.0:
            return 0.0
        return min(head.duration_ms, elapsed)

    def _settle(self) -> EpisodeEnded | None:
        """Once all audio is confirmed and no response is in progress, forget everything."""
        if self._segments or self._responses:
            return None
        self._items.clear()
        self._silent_items.clear()
        if not self._episode_active:
            return None
        self._episode_active = False
        return EpisodeEnded(self._episode_played_ms)


def _parse_mark(name: str) -> tuple[int, int]:
    """``"g3.17"`` → (3, 17); (-1, -1) for anything else."""
    if type(name) is not str or not name.startswith("g"):
        return -1, -1
    generation, dot, seq = name[1:].partition(".")
    if not dot or not (generation.isascii() and generation.isdigit() and seq.isascii() and seq.isdigit()):
        return -1, -1
    if len(generation) > 18 or len(seq) > 18:
        return -1, -1
    return int(generation), int(seq)
