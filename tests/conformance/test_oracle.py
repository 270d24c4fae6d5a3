"""The oracle itself must be able to fail, or every conformance test built on it is hollow."""

import pytest

from tests.conformance.oracle import ConformanceError, known_types, validate_client_event, validate_server_event


def test_accepts_a_valid_ga_client_event():
    validate_client_event({"type": "input_audio_buffer.append", "audio": "AAAA"}, "ga")


def test_rejects_unknown_type_missing_field_and_extra_field():
    with pytest.raises(ConformanceError):
        validate_client_event({"type": "input_audio_buffer.bogus"}, "ga")
    with pytest.raises(ConformanceError):
        validate_client_event({"type": "conversation.item.truncate", "item_id": "x"}, "ga")
    with pytest.raises(ConformanceError, match="does not declare"):
        validate_client_event({"type": "input_audio_buffer.append", "audio": "AAAA", "junk": 1}, "ga")


def test_dialects_differ_on_audio_delta_names():
    assert "response.output_audio.delta" in known_types("ga", "server")
    assert "response.audio.delta" in known_types("beta", "server")
    assert "response.audio.delta" not in known_types("ga", "server")
    delta = {"type": "response.audio.delta", "event_id": "e", "response_id": "r", "item_id": "i",
             "output_index": 0, "content_index": 0, "delta": "AAAA"}
    validate_server_event(delta, "beta")
    with pytest.raises(ConformanceError):
        validate_server_event(delta, "ga")
