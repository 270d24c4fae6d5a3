"""The model client's dispatch path (`RealtimeAPIClient._dispatch`), without a socket.

Untrusted input from the model enters here. What it must do: hand a good event on, and for a bad
one — not a JSON object, or one whose handling raises — count it, log it with the call's label (a
flood only every 100th time), and never let it escape to kill the reader. Cancellation still
propagates.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from telephony_bridge.realtime.events import RealtimeAPIEvents as E
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_client import RealtimeAPIClient

LABEL = "call CA-dispatch"


async def dispatched(events: list[Any], dialect: str = "ga", observer: Any = None) -> RealtimeAPIClient:
    tasks = TaskOwner(LABEL)
    client = RealtimeAPIClient(url="ws://127.0.0.1:9/unused", api_key=None, model="m", dialect=dialect, codec="pcm16",
                               tasks=tasks, reconnect=False)
    client.observer = observer
    try:
        for event in events:
            await client._dispatch(event)
    finally:
        await tasks.aclose()
    return client


@pytest.mark.parametrize("value", [[], [{"type": "response.created"}], "response.created", 42, 4.2, True, None])
async def test_a_json_value_that_is_not_an_object_is_counted_and_skipped(value, caplog):
    seen: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="telephony_bridge"):
        client = await dispatched([value], observer=lambda c, event: seen.append(event))
    assert client.stats.malformed_events == 1
    assert seen == []  # nothing downstream saw it
    assert f"{LABEL}: malformed model event #1 ignored: a JSON {type(value).__name__}, not an object" in caplog.text


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_a_well_formed_event_reaches_observer_and_listeners_and_is_not_counted(dialect):
    heard: list[Any] = []
    tasks = TaskOwner(LABEL)
    client = RealtimeAPIClient(url="ws://127.0.0.1:9/unused", api_key=None, model="m", dialect=dialect, codec="pcm16",
                               tasks=tasks, reconnect=False)
    client.observer = lambda c, event: heard.append(("observer", getattr(event, "member", type(event).__name__)))
    client.addEventListener(E.ResponseCreated, lambda e: heard.append(("listener", e.name)))
    try:
        await client._dispatch({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}})
        await asyncio.sleep(0)
    finally:
        await tasks.aclose()
    assert client.stats.malformed_events == 0
    assert heard == [("observer", E.ResponseCreated), ("listener", "ResponseCreated")]


async def test_an_unknown_event_type_is_not_malformed():
    client = await dispatched([{"type": "response.something_new", "x": 1}, {"no_type": True}])
    assert client.stats.malformed_events == 0


async def test_an_event_whose_handling_raises_is_counted_with_its_type_and_place_and_not_propagated(caplog):
    # A known type with a field of the wrong JSON type: the bookkeeping reads response.id.
    with caplog.at_level(logging.WARNING, logger="telephony_bridge"):
        client = await dispatched([{"type": "response.created", "response": "not an object"}])
    assert client.stats.malformed_events == 1
    message = next(r.getMessage() for r in caplog.records if "malformed" in r.getMessage())
    assert message.startswith(f"{LABEL}: malformed model event #1 ignored: 'response.created' event broke its handling (AttributeError:")
    assert re.search(r"at (client|connection|connection_dispatch)\.py:\d+\)$", message)  # where, as text (no traceback pinned in a log record)


async def test_an_observer_that_raises_is_counted_and_the_next_event_still_dispatches():
    calls: list[str] = []

    def observer(client: Any, event: Any) -> None:
        calls.append(event.data.get("type"))
        if event.data.get("type") == "session.updated":
            raise KeyError("boom")

    client = await dispatched([{"type": "session.updated", "session": {}}, {"type": "response.done", "response": {"id": "r"}}],
                              observer=observer)
    assert client.stats.malformed_events == 1
    assert calls == ["session.updated", "response.done"]


async def test_cancellation_is_not_swallowed():
    def observer(client: Any, event: Any) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await dispatched([{"type": "session.updated", "session": {}}], observer=observer)


async def test_a_flood_of_malformed_events_is_counted_in_full_but_logged_only_now_and_then(caplog):
    with caplog.at_level(logging.WARNING, logger="telephony_bridge"):
        client = await dispatched([None] * 250)
    assert client.stats.malformed_events == 250
    logged = [r.getMessage() for r in caplog.records if "malformed model event" in r.getMessage()]
    numbers = [int(message.split("#", 1)[1].split(" ", 1)[0]) for message in logged]
    assert numbers == [*range(1, 11), 100, 200]
