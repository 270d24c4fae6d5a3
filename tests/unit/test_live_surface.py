"""GPT-Live's scenario surface: every method with its snake_case twin, the event enum, the strict
session config, the energy classifier that finds the agent's turns in continuous output."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from telephony_bridge.audio import g711
from telephony_bridge.naming import CAMEL_CASE_METHODS, snake_case
from telephony_bridge.realtime import live_wire
from telephony_bridge.voxengine.context import OpenAINamespace
from telephony_bridge.voxengine.live_client import LiveAPIClient, audible

SURFACE = ("sessionStart", "sessionUpdate", "sessionInstructionsAppend", "sessionCommentaryAppend", "sessionThinkingAppend",
           "responseCreate", "responseItemCreate", "sessionClose", "sendMediaTo", "stopMediaTo", "clearMediaBuffer",
           "id", "webSocketId", "close", "addEventListener", "removeEventListener", "sessionInputAudioMute",
           "sessionInputAudioUnmute", "sessionOutputAudioFixturePlay", "decisionCreate", "decisionItemCreate",
           "decisionItemDelete")


def test_the_live_client_has_voximplants_surface_with_snake_case_twins():
    for name in SURFACE:
        assert callable(getattr(LiveAPIClient, name)), name
        if name in CAMEL_CASE_METHODS:
            assert getattr(LiveAPIClient, snake_case(name)) is getattr(LiveAPIClient, name)
    assert OpenAINamespace.LiveAPIEvents is live_wire.LiveAPIEvents
    assert callable(OpenAINamespace.createLiveAPIClient)


def test_event_names_normalize_like_voximplants():
    events = live_wire.LiveAPIEvents
    assert events.SessionStarted.value == "OpenAI.LiveAPI.SessionStarted"
    assert live_wire.normalize_event_name("OpenAI.LiveAPI.ResponseEvent") is events.ResponseEvent
    assert live_wire.normalize_event_name("AgentStoppedSpeaking") is events.AgentStoppedSpeaking
    assert live_wire.event_for_wire_type("input_audio_buffer.speech_started") is events.Unknown


def test_session_config_keeps_declared_fields_and_sets_the_bridge_format(caplog):
    with caplog.at_level(logging.WARNING):
        session = live_wire.live_session_config({"tools": [], "instructions": "x", "store": True}, "pcm16")
    assert session == {"instructions": "x", "store": True, "model": "gpt-live-1",
                       "audio": {"format": {"type": "audio/pcm", "rate": 24000}}}
    assert "session.tools" in caplog.text and "delegation.responses.tools" in caplog.text
    assert live_wire.codec_of_format({"type": "audio/pcmu", "rate": 8000}) == "g711_ulaw"
    with pytest.raises(ValueError):
        live_wire.codec_of_format({"type": "audio/pcm", "rate": 16000})
    assert live_wire.live_session_update({"delegation": {"type": "client"}, "voice": "x"}) == {"delegation": {"type": "client"}}


def test_seed_input_merges_speakers_and_keeps_the_newest():
    seeded = live_wire.seed_input([("user", "Hi"), ("user", " there."), ("assistant", "Hello!"), ("user", "  ")])
    assert seeded == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
    ]
    assert len(live_wire.seed_input([("user" if i % 2 else "assistant", f"{i}") for i in range(300)])) == 128


def test_unheard_note_says_what_was_heard():
    note = live_wire.unheard_note(1800, 2400, "Hello! Thanks for")
    assert "after 1.8 s" in note and '"Hello! Thanks for"' in note and "0.6 s more" in note and "stop speaking" in note
    assert "more was" not in live_wire.unheard_note(1800, 1850, "")


def test_audible_tells_speech_from_silence_in_both_formats():
    tone = (np.sin(np.arange(800) * 0.2) * 8000).astype("<i2").tobytes()
    hiss = (np.random.default_rng(1).normal(0, 30, 800)).astype("<i2").tobytes()
    assert audible(g711.ulaw_encode(tone), "g711_ulaw") and audible(tone, "pcm16")
    assert not audible(b"\xff" * 800, "g711_ulaw") and not audible(bytes(1600), "pcm16")
    assert not audible(g711.ulaw_encode(hiss), "g711_ulaw") and not audible(hiss, "pcm16")
