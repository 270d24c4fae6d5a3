import asyncio
import logging

import pytest

from telephony_bridge.naming import CAMEL_CASE_METHODS, snake_case, with_snake_case_twins
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.call import Call
from telephony_bridge.voxengine.context import VoxEngine
from telephony_bridge.voxengine.events import CallEvents
from telephony_bridge.voxengine.listeners import EventPayload, Listeners
from telephony_bridge.voxengine.net import Net
from telephony_bridge.voxengine.realtime_client import RealtimeAPIClient


def test_snake_case():
    assert snake_case("conversationItemCreate") == "conversation_item_create"
    assert snake_case("webSocketId") == "web_socket_id"


@pytest.mark.parametrize("cls", [RealtimeAPIClient, Call, VoxEngine, Net])
def test_every_camel_case_method_has_the_same_function_as_snake_twin(cls):
    without = cls.__dict__.get("_without_twins", ())  # VoxEngine.custom_data is the data itself
    defined = [name for name in CAMEL_CASE_METHODS if name in cls.__dict__ and name not in without]
    assert defined, cls
    for camel in defined:
        assert getattr(cls, snake_case(camel)) is getattr(cls, camel)


def test_client_has_the_whole_voximplant_surface():
    for name in ("addEventListener", "removeEventListener", "clearMediaBuffer", "close", "conversationItemCreate",
                 "conversationItemDelete", "conversationItemTruncate", "conversationItemRetrieve", "id",
                 "responseCancel", "responseCreate", "sendMediaTo", "sessionUpdate", "stopMediaTo", "webSocketId"):
        assert callable(getattr(RealtimeAPIClient, name)), name


def test_twin_that_would_shadow_another_function_is_refused():
    with pytest.raises(TypeError):
        @with_snake_case_twins
        class Broken:
            def sendMediaTo(self): ...
            def send_media_to(self): ...


async def test_listeners_sync_async_raising_and_non_callable(caplog):
    owner = TaskOwner("call CA-test")
    listeners = Listeners("call CA-test", owner, lambda e: e)
    seen = []
    done = asyncio.Event()

    def sync_handler(event):
        seen.append(("sync", event.call))

    def raising(event):
        raise RuntimeError("scenario bug")

    async def async_handler(event):
        seen.append(("async", event["call"]))
        done.set()

    listeners.add("x", raising)
    listeners.add("x", sync_handler)
    listeners.add("x", async_handler)
    with pytest.raises(TypeError):
        listeners.add("x", "not callable")
    with caplog.at_level(logging.ERROR):
        listeners.emit("x", EventPayload(call="c1"))
    await asyncio.wait_for(done.wait(), 2)
    assert seen == [("sync", "c1"), ("async", "c1")]
    assert "CA-test" in caplog.text and "scenario bug" in caplog.text
    listeners.remove("x", sync_handler)
    listeners.remove("x")
    assert not listeners.has("x")
    await owner.aclose()


async def test_raising_async_handler_is_logged_and_siblings_live_on(caplog):
    async with asyncio.TaskGroup() as group:
        owner = TaskOwner("call CA-2", group)

        async def bad(event):
            raise ValueError("boom")

        listeners = Listeners("call CA-2", owner, lambda e: e)
        listeners.add(CallEvents.ToneReceived, bad)
        survivor = owner.spawn(asyncio.sleep(0.05, result="alive"), name="sibling")
        with caplog.at_level(logging.ERROR):
            listeners.emit(CallEvents.ToneReceived, EventPayload())
            assert await survivor == "alive"
        await owner.aclose()
    assert "boom" in caplog.text and "CA-2" in caplog.text


async def test_task_owner_close_cancels_everything():
    owner = TaskOwner("call CA-3")
    started = asyncio.Event()

    async def forever():
        started.set()
        await asyncio.Event().wait()

    task = owner.spawn(forever(), name="forever")
    await started.wait()
    await owner.aclose()
    assert task.cancelled() and owner.task_count() == 0
    with pytest.raises(RuntimeError):
        owner.spawn(forever(), name="late")


def test_event_payloads_read_as_attributes_all_the_way_down_without_changing_the_event():
    from telephony_bridge.voxengine.listeners import EventPayload

    raw = {"type": "response.done", "response": {"id": "r1", "output": [{"type": "function_call", "name": "f"}]}}
    event = EventPayload(client=None, data={"payload": raw})
    assert event.data.payload.response.output[0].name == "f"
    assert event["data"]["payload"]["response"]["output"][0]["name"] == "f"
    assert [item.type for item in event.data.payload.response.output] == ["function_call"]
    assert event.data.payload.get("response").id == "r1" and event.data.payload.get("missing") is None
    assert type(raw["response"]) is dict and type(raw["response"]["output"][0]) is dict  # the shared event is untouched
    try:
        _ = event.data.payload.nope
    except AttributeError:
        pass
    else:
        raise AssertionError("a missing key must be an AttributeError")
