"""The live transcript: agent words from the journal, cut where the caller stopped hearing them."""

from __future__ import annotations

import numpy as np

from telephony_bridge.testing.transcript import LiveTranscript, cut_text, speech_spans


def test_cut_text_marks_a_word_cut_in_the_middle():
    assert cut_text("Hello! Thanks for calling Acme.", 1.0) == "Hello! Thanks for calling Acme."
    assert cut_text("Hello! Thanks for calling Acme.", 27 / 31) == "Hello! Thanks for calling A—"
    assert cut_text("Hello! Thanks", 7 / 13) == "Hello!"
    assert cut_text("Hello", 0.0) == ""


def spoken(start, heard, unheard=0.0):
    return {"start_ms": start, "end_ms": start + heard, "heard_ms": heard, "unheard_ms": unheard, "interrupted": unheard > 0}


def test_agent_lines_wait_for_their_words_and_deleted_answers_are_skipped():
    lines = []
    transcript = LiveTranscript(lambda t, who, text: lines.append((t, who, text)), with_journal=True)
    transcript.simulator_event("agent_speech", spoken(100, 1000, 3000))
    assert lines == []  # audio over, words not read yet
    transcript.journal_entry({"event": "agent.transcript_delta", "item_id": "a", "text": "Hello"})
    assert lines == []  # words still coming: cutting now would cut the wrong sentence
    transcript.journal_entry({"event": "agent.transcript_delta", "item_id": "a", "text": " there"})
    transcript.journal_entry({"event": "barge_in", "truncations": [{"item_id": "a", "deleted": False}]})
    assert lines == [(100, "agent", '"Hel—" [interrupted: 3.0 s not heard]')]
    transcript.journal_entry({"event": "agent.transcript", "item_id": "a", "text": "Hello there"})  # late: not new
    transcript.journal_entry({"event": "agent.transcript", "item_id": "b", "text": "Never heard."})
    transcript.journal_entry({"event": "barge_in", "truncations": [{"item_id": "b", "deleted": True}]})
    transcript.journal_entry({"event": "caller.transcript", "text": " What time is it? "})
    transcript.journal_entry({"event": "agent.transcript", "item_id": "c", "text": "It's noon."})
    transcript.simulator_event("agent_speech", spoken(5000, 900))
    transcript.simulator_event("agent_speech", spoken(7000, 500))
    transcript.finish()
    assert lines[1:] == [(None, "caller", '"What time is it?"'), (5000, "agent", '"It\'s noon."'),
                         (7000, "agent", "(speaks for 0.5 s)")]


def test_caller_speech_spans_bridge_short_pauses_and_ignore_clicks():
    voice = (np.sin(np.arange(8000) / 3) * 8000).astype("<i2")
    silence = np.zeros(8000, dtype="<i2")
    click = np.zeros(8000, dtype="<i2")
    click[100:200] = 8000
    pcm = np.concatenate([silence, voice[:4000], silence[:1600], voice[:4000], silence, click]).tobytes()
    assert speech_spans(pcm) == [(1000.0, 2200.0)]
