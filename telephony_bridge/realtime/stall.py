"""When a model's answer has stalled: the sans-I/O decision behind the client's answer watchdog.

A model can stop sending while its socket stays open (an overloaded inference server, a proxy that
stopped forwarding one way). Keepalive pings may still pass, and even when they do not they take
seconds to tell, while the caller listens to silence. The answer itself tells sooner: an answer is
stalled when it is in progress, its audio is not finished, nothing at all has come from the model
for `timeout_s`, and the audio received so far has played out (the caller hears silence now).

Waiting for the playout to run dry keeps a healthy model that sent its answer well ahead of the
caller from being cut off; counting any event as a sign of life (transcript deltas, function-call
arguments) keeps a response without audio from being taken for a stalled one. Before an answer's
first audio the allowance is longer (`first_audio_timeout_s`): how long a model takes to start
speaking varies (a busy provider, the embedded engine synthesising under load), and cutting off a
slow starter only makes it start again from nothing.

Silence counts only while the bridge itself runs: the watchdog reports how late its wake-ups came
(`bridge_paused`), and that time, when the bridge's own loop was held up, is not the model's silence
(see loop_pauses.py).

Times are the caller's choice of monotonic seconds (the client uses the event loop's clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ANSWER_STALL_TIMEOUT_S = 1.0
DEFAULT_FIRST_AUDIO_TIMEOUT_S = 4.0


@dataclass(slots=True)
class AnswerStallPolicy:
    timeout_s: float = DEFAULT_ANSWER_STALL_TIMEOUT_S  # 0 (or less) turns the detection off
    first_audio_timeout_s: float = DEFAULT_FIRST_AUDIO_TIMEOUT_S  # until the answer's audio starts
    answering: set[str] = field(default_factory=set)  # responses whose audio may still come
    last_heard_at: float = 0.0  # when the model last sent anything
    audio_started: bool = False  # the answer in progress has sent audio
    playout_ends_at: float = 0.0  # when the audio received so far will have played out

    def heard(self, now: float) -> None:
        """Any frame from the model: it is alive."""
        self.last_heard_at = now

    def response_started(self, response_id: str, now: float) -> None:
        self.answering.add(response_id)
        self.audio_started = False
        self.last_heard_at = now
        self.playout_ends_at = max(self.playout_ends_at, now)  # nothing buffered: audio is due at once

    def audio_received(self, now: float, duration_ms: float) -> None:
        # Played in real time from whichever is later: now, or the end of what is already queued.
        self.playout_ends_at = max(self.playout_ends_at, now) + duration_ms / 1000
        self.audio_started = True

    def audio_finished(self, response_id: str) -> None:
        """The response's audio is complete (or cancelled): no more of it is due."""
        self.answering.discard(response_id)

    def reset(self, now: float) -> None:
        """A new model session: nothing is in progress on it."""
        self.answering.clear()
        self.audio_started = False
        self.last_heard_at = now
        self.playout_ends_at = now

    def bridge_paused(self, seconds: float, now: float) -> None:
        """The bridge's own loop did not run for `seconds` before `now` (the watchdog woke that late):
        the model's silence is counted without it, never beyond `now`. The playout is not moved:
        the phone kept playing."""
        if seconds > 0:
            self.last_heard_at = min(self.last_heard_at + seconds, now)

    def deadline(self) -> float | None:
        """When the answer in progress counts as stalled if nothing is heard before; None when no
        answer is in progress (or the detection is off)."""
        if not self.answering or self.timeout_s <= 0:
            return None
        allowance = self.timeout_s if self.audio_started else max(self.timeout_s, self.first_audio_timeout_s)
        return max(self.last_heard_at + allowance, self.playout_ends_at)

    def stalled(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline
