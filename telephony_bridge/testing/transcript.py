"""The live transcript of a simulated call, as the caller experienced it.

Two sources, because neither has everything:

- The phone simulator knows *when* each side spoke and what the caller really heard: every stretch
  of agent audio it played (``agent_speech`` timeline events: start, end, ms heard, ms cut by a
  ``clear``) and the stretches of speech in the caller audio it sent (``caller_speech``). A Twilio
  media stream carries no text, so that is all it knows on its own.
- The bridge's call journal (``CALLS_DIR/<CallSid>.jsonl``, written as the call goes) knows the
  *words*: the model's transcript of each answer, and the caller's words as the model transcribed
  them. It is a file on the bridge's machine: readable when the simulator runs there too.

:class:`LiveTranscript` pairs the agent's answers from the journal with the stretches of audio the
simulator played, in order, and prints each answer when its audio is over, cut where the caller
stopped hearing it. The cut is placed by characters in proportion to the audio heard (heard ms over
heard + cleared ms): speech runs at a roughly even number of characters per second (the local engine
times its own transcript deltas that way), so this is an estimate to a word or so, not a word
alignment. Without a journal, the lines give timing only.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

SPEECH_RMS = 0.01  # of full scale (-40 dBFS): above this a 20 ms caller frame counts as speech
SPEECH_BRIDGE_MS = 400  # pauses shorter than this inside a caller's sentence do not split it
SPEECH_MIN_MS = 100  # shorter bursts (clicks, breaths) are not speech
JOURNAL_POLL_S = 0.05


class Span(NamedTuple):
    start_ms: float
    end_ms: float


def speech_spans(pcm16: bytes, frame_ms: int = 20, rate: int = 8000) -> list[Span]:
    """Where there is speech in caller audio (energy per frame; enough to say who spoke when)."""
    frame = rate * frame_ms // 1000
    samples = np.frombuffer(pcm16[: len(pcm16) // (2 * frame) * 2 * frame], dtype="<i2").astype(np.float64) / 32768
    if samples.size == 0:
        return []
    loud = np.sqrt((samples.reshape(-1, frame) ** 2).mean(axis=1)) > SPEECH_RMS
    spans: list[Span] = []
    for index in np.flatnonzero(loud):
        start, end = float(index * frame_ms), float((index + 1) * frame_ms)
        if spans and start - spans[-1].end_ms < SPEECH_BRIDGE_MS:
            spans[-1] = Span(spans[-1].start_ms, end)
        else:
            spans.append(Span(start, end))
    return [s for s in spans if s.end_ms - s.start_ms >= SPEECH_MIN_MS]


def cut_text(text: str, heard_fraction: float) -> str:
    """``text`` up to ``heard_fraction`` of its characters; a word cut in the middle ends with "—"."""
    text = text.strip()
    cut = round(len(text) * max(0.0, min(1.0, heard_fraction)))
    if cut >= len(text):
        return text
    heard = text[:cut].rstrip()
    mid_word = 0 < cut < len(text) and not text[cut - 1].isspace() and not text[cut].isspace()
    return heard + "—" if mid_word and heard else heard


# (t_ms since the stream started or None for "now", who, text)
Writer = Callable[[float | None, str, str], None]


class LiveTranscript:
    """Feed it simulator events and, when there is one, journal entries; it writes the lines."""

    def __init__(self, write: Writer, *, with_journal: bool) -> None:
        self.write = write
        self.with_journal = with_journal
        self._waiting_for_words = with_journal  # hold agent audio until its words come
        self._paired: set[str] = set()  # items already written: their late entries are not new answers
        self._texts: OrderedDict[str, str] = OrderedDict()  # agent items not yet paired, by item id
        # Items whose words are all in: their transcript is done, a barge-in cut them, or a later
        # item began. Pairing earlier would cut a sentence still arriving word by word.
        self._complete: set[str] = set()
        self._spoken: deque[Mapping[str, Any]] = deque()  # agent_speech data not yet paired
        self.agent_lines: list[str] = []  # as written: for tests and summaries

    # -- inputs ---------------------------------------------------------------------------------------

    def simulator_event(self, kind: str, data: Mapping[str, Any] | None) -> None:
        if data is None:
            return
        if kind == "agent_speech":
            self._spoken.append(data)
            self._pair()
        elif kind == "caller_speech" and not self.with_journal:  # with one, the journal has the words
            seconds = (data["end_ms"] - data["start_ms"]) / 1000
            self.write(data["start_ms"], "caller", f"(speaks for {seconds:.1f} s)")

    def journal_entry(self, entry: Mapping[str, Any]) -> None:
        kind = entry.get("event")
        item = entry.get("item_id")
        if item in self._paired:
            return
        if kind in ("agent.transcript_delta", "agent.transcript") and item:
            if item not in self._texts:
                self._complete.update(self._texts)
            if kind == "agent.transcript":
                self._texts[item] = entry.get("text") or ""
                self._complete.add(item)
            else:
                self._texts[item] = self._texts.get(item, "") + (entry.get("text") or "")
        elif kind == "barge_in":
            for cut in entry.get("truncations") or ():
                if cut.get("deleted"):
                    self._texts.pop(cut.get("item_id"), None)  # nothing of it reached the caller
                else:
                    self._complete.add(cut.get("item_id"))
        elif kind == "caller.transcript" and entry.get("text"):
            self.write(None, "caller", f'"{entry["text"].strip()}"')
        self._pair()

    def finish(self) -> None:
        """The call is over: write what is left (audio whose words never came, as timing)."""
        self._waiting_for_words = False
        self._pair()

    # -- output ---------------------------------------------------------------------------------------

    def _pair(self) -> None:
        while self._spoken and (self._first_text_complete() or not self._waiting_for_words):
            spoken = self._spoken.popleft()
            text = None
            if self._texts:
                item, text = self._texts.popitem(last=False)
                self._paired.add(item)
            self._write_agent(spoken, text)

    def _first_text_complete(self) -> bool:
        return bool(self._texts) and next(iter(self._texts)) in self._complete

    def _write_agent(self, spoken: Mapping[str, Any], text: str | None) -> None:
        heard, unheard = spoken["heard_ms"], spoken["unheard_ms"]
        if text is None:
            line = f"(speaks for {heard / 1000:.1f} s)"
        else:
            line = f'"{cut_text(text, heard / (heard + unheard) if heard + unheard else 1.0)}"'
        if spoken["interrupted"]:
            line += f" [interrupted: {unheard / 1000:.1f} s not heard]" if unheard else " [interrupted]"
        self.agent_lines.append(line)
        self.write(spoken["start_ms"], "agent", line)


async def tail_journal(path: Path, on_entry: Callable[[dict[str, Any]], None], stop: asyncio.Event) -> None:
    """Feed each complete line of a growing JSON-lines journal to ``on_entry`` until ``stop``, then
    the rest. A file tail: the journal has no push channel to another process."""
    offset = 0
    while True:
        stopping = stop.is_set()  # read once more after it is set: the last lines are the call's end
        if path.exists():
            with path.open("rb") as stream:
                stream.seek(offset)
                for raw in stream:
                    if not raw.endswith(b"\n"):
                        break
                    offset += len(raw)
                    on_entry(orjson.loads(raw))
        if stopping:
            return
        try:
            await asyncio.wait_for(stop.wait(), JOURNAL_POLL_S)
        except TimeoutError:
            pass
