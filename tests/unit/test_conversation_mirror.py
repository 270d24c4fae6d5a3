from telephony_bridge.realtime.conversation import ConversationMirror


def ga_events():
    return [
        {"type": "conversation.item.added", "item": {"id": "u1", "type": "message", "role": "user", "content": [{"type": "input_audio", "transcript": None}]}},
        {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "transcript": "What time is it?"},
        {"type": "response.output_item.added", "item": {"id": "f1", "type": "function_call", "name": "get_current_time", "call_id": "c1", "arguments": ""}},
        {"type": "response.function_call_arguments.done", "item_id": "f1", "call_id": "c1", "name": "get_current_time", "arguments": "{}"},
        {"type": "conversation.item.added", "item": {"id": "o1", "type": "function_call_output", "call_id": "c1", "output": '{"time": "11:15"}'}},
        {"type": "response.output_item.added", "item": {"id": "a1", "type": "message", "role": "assistant", "content": []}},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "It is eleven fifteen. "},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "Anything else I can do today?"},
    ]


def test_replays_every_kind_of_item_in_order():
    mirror = ConversationMirror()
    for event in ga_events():
        mirror.apply(event)
    mirror.audio_received("a1", 3000)
    replay = mirror.replay_items()
    assert replay == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What time is it?"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_current_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": '{"time": "11:15"}'},
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "It is eleven fifteen. Anything else I can do today?"}]},
    ]


def test_a_truncated_answer_is_replayed_only_as_far_as_it_was_heard():
    mirror = ConversationMirror()
    for event in ga_events():
        mirror.apply(event)
    mirror.audio_received("a1", 3000)
    mirror.apply({"type": "conversation.item.truncated", "item_id": "a1", "content_index": 0, "audio_end_ms": 1000})
    assistant = mirror.replay_items()[-1]
    assert assistant["content"][0]["text"] == "It is eleven"  # a third of the audio: a third of the words


def test_deleted_and_unheard_items_are_not_replayed():
    mirror = ConversationMirror()
    for event in ga_events():
        mirror.apply(event)
    mirror.audio_received("a1", 3000)
    mirror.apply({"type": "conversation.item.truncated", "item_id": "a1", "content_index": 0, "audio_end_ms": 0})
    mirror.apply({"type": "conversation.item.deleted", "item_id": "u1"})
    kinds = [item["type"] for item in mirror.replay_items()]
    assert kinds == ["function_call", "function_call_output"]


def test_user_audio_without_transcript_is_replayed_as_a_placeholder_and_memory_is_bounded():
    mirror = ConversationMirror(max_items=3)
    for index in range(10):
        mirror.apply({"type": "conversation.item.created", "item": {"id": f"u{index}", "type": "message", "role": "user", "content": [{"type": "input_audio"}]}})
    replay = mirror.replay_items()
    assert len(replay) == 3 and "no transcript" in replay[0]["content"][0]["text"]
    assert list(mirror.items) == ["u7", "u8", "u9"]


def test_beta_names_are_understood_too():
    mirror = ConversationMirror()
    mirror.apply({"type": "conversation.item.created", "item": {"id": "a1", "type": "message", "role": "assistant", "content": [{"type": "audio", "transcript": "Hello there"}]}})
    mirror.apply({"type": "response.audio_transcript.done", "item_id": "a1", "transcript": "Hello there friend"})
    assert mirror.replay_items()[0]["content"][0]["text"] == "Hello there friend"
