"""EventPayload: ported JavaScript reads nested event fields by attribute (`e.data.payload.item.id`)."""

from __future__ import annotations

import json

import pytest

from telephony_bridge.voxengine.listeners import EventPayload


def test_nested_dicts_read_by_attribute_and_by_key():
    event = EventPayload(name="X", data={"payload": {"item": {"id": "item_1", "content": [{"type": "text"}]}}})
    assert event.data.payload.item.id == "item_1"
    assert event["data"]["payload"].item["id"] == "item_1"
    assert event.data.payload.item.content[0].type == "text"
    assert [part.type for part in event.data.payload.item.content] == ["text"]
    assert event.get("data").payload.item.id == "item_1" and event.get("missing", 5) == 5


def test_conversion_happens_once_and_keeps_mutations():
    event = EventPayload(data={"n": 1})
    first = event.data
    assert first is event.data is event["data"] and isinstance(first, dict)
    first["n"] = 2  # a handler's change is seen by the next handler of the same event
    assert event.data.n == 2


def test_missing_fields_are_attribute_errors_and_json_still_works():
    event = EventPayload(data={"a": [1, {"b": 2}]})
    with pytest.raises(AttributeError):
        event.data.nope  # noqa: B018
    assert not hasattr(event.data, "nope")
    assert event.data.a[1].b == 2 and event.data.a[0] == 1
    assert json.loads(json.dumps(event)) == {"data": {"a": [1, {"b": 2}]}}
    assert event.data.a[0:1] == [1]


def test_non_container_values_are_returned_as_they_are():
    call = object()
    event = EventPayload(call=call, text="hi", data=None)
    assert event.call is call and event.text == "hi" and event.data is None
