"""Event listeners for scenario-facing objects (Call, RealtimeAPIClient, VoxEngine).

A handler may be a plain function or a coroutine function. Plain handlers run inline, in
registration order; coroutines are started as tasks owned by the call's session, so a slow
handler (a tool doing HTTP) never stalls the audio path. A handler that raises is logged with
the call id and the call goes on.

Async handlers are bounded per handler and event, so a flood (10,000 DTMF digits against a slow
`ToneReceived` handler) cannot start 10,000 tasks: up to `HANDLER_CONCURRENCY` invocations run
at once, as they would interleave in VoxEngine's JavaScript; further events wait in a FIFO queue
of `HANDLER_QUEUE` and start as running ones finish; an event arriving when that queue is full
is dropped for that handler, logged (the first few, then every 100th) and counted (`dropped`).
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any, Protocol

log = logging.getLogger("telephony_bridge.scenario")

HANDLER_CONCURRENCY = 8  # invocations of one async handler for one event running at once
HANDLER_QUEUE = 64  # events waiting for one of them; beyond that, dropped and counted
_DROPS_LOGGED = 5

Handler = Callable[[Any], Any]


class TaskSpawner(Protocol):
    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> Any: ...


class AttrDict(dict):
    """A dict whose keys also read as attributes, all the way down: ported JavaScript reads
    `e.data.payload.item.id`. Lazy: a nested dict (or list) is wrapped only when it is read, by a
    shallow copy kept in place of the original, so the server event the bridge shares with the
    journal is never changed and nothing is copied for keys nobody reads."""

    __slots__ = ()

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        if type(value) is dict or type(value) is list:
            value = _wrapped(value)
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (self.get is this method: wraps too)


class AttrList(list):
    """A list whose dict (and list) elements are AttrDicts (AttrLists), wrapped when read."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        value = list.__getitem__(self, index)
        if isinstance(index, slice):
            return AttrList(value)
        if type(value) is dict or type(value) is list:
            value = _wrapped(value)
            list.__setitem__(self, index, value)
        return value

    def __iter__(self) -> Any:
        for index in range(len(self)):
            yield self[index]


def _wrapped(value: dict[Any, Any] | list[Any]) -> AttrDict | AttrList:
    return AttrDict(value) if type(value) is dict else AttrList(value)


class EventPayload(AttrDict):
    """The object a handler receives: a dict whose keys also read as attributes (`e.call`, `e["call"]`,
    `e.data.payload.item.id`), like the event objects of VoxEngine's JavaScript."""

    __slots__ = ()


def enum_normalizer(enum_type: type[Enum]) -> Callable[[Any], Any]:
    """Accept a member, its value or its name, for `addEventListener(CallEvents.X | "X", ...)`."""

    def normalize(event: Any) -> Any:
        if isinstance(event, enum_type):
            return event
        for member in enum_type:
            if event in (member.value, member.name):
                return member
        raise ValueError(f"unknown event {event!r}; use {enum_type.__name__}.<name>")

    return normalize


class Listeners:
    def __init__(self, owner_label: str, spawner: TaskSpawner, normalize: Callable[[Any], Any]) -> None:
        self._owner_label = owner_label  # "call CA…" — every log line names the call
        self._spawner = spawner
        self._normalize = normalize
        self._handlers: dict[Any, list[Handler]] = {}
        self._lanes: dict[tuple[Any, Handler], _Lane] = {}
        self.dropped = 0  # events a full handler queue refused, over this object's life

    def add(self, event: Any, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler for {event!r} must be callable, got {type(handler).__name__}")
        self._handlers.setdefault(self._normalize(event), []).append(handler)

    def remove(self, event: Any, handler: Handler | None = None) -> None:
        key = self._normalize(event)
        if handler is None:
            self._handlers.pop(key, None)
            return
        handlers = self._handlers.get(key, [])
        if handler in handlers:
            handlers.remove(handler)

    def has(self, event: Any) -> bool:
        return bool(self._handlers.get(event))

    def handlers(self, event: Any) -> list[Handler]:
        """The handlers of `event` now, in registration order (a copy), for an event whose caller
        wants their results (AppEvents.HttpRequest)."""
        return list(self._handlers.get(event, ()))

    def emit(self, event: Any, payload: EventPayload, on_error: Callable[[], None] | None = None) -> None:
        """Run the handlers of `event`. `on_error` is told when one raises (sync or async), for the
        few events whose failure means the scenario cannot go on (CallAlerting)."""
        for handler in tuple(self._handlers.get(event, ())):
            try:
                result = handler(payload)
            except Exception:
                log.exception("%s: handler %s for %s raised", self._owner_label, _name(handler), _event_name(event))
                if on_error is not None:
                    on_error()
                continue
            if inspect.isawaitable(result):
                self._start(result, handler, event, on_error)

    def _start(
        self, awaitable: Awaitable[Any], handler: Handler, event: Any, on_error: Callable[[], None] | None
    ) -> None:
        lane = self._lanes.get((event, handler))
        if lane is None:
            lane = self._lanes[(event, handler)] = _Lane()
        if lane.running < HANDLER_CONCURRENCY:
            lane.running += 1
            self._spawner.spawn(self._run(lane, awaitable, handler, event, on_error), name=f"handler {_name(handler)}")
        elif len(lane.waiting) < HANDLER_QUEUE:
            lane.waiting.append(awaitable)
        else:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never started: no "never awaited" warning
            self.dropped += 1
            if self.dropped <= _DROPS_LOGGED or self.dropped % 100 == 0:
                log.warning(
                    "%s: %s is busy (%d running, %d waiting): %s event dropped (%d so far)",
                    self._owner_label,
                    _name(handler),
                    lane.running,
                    len(lane.waiting),
                    _event_name(event),
                    self.dropped,
                )

    async def _run(
        self, lane: _Lane, awaitable: Awaitable[Any], handler: Handler, event: Any, on_error: Callable[[], None] | None
    ) -> None:
        try:
            while True:
                try:
                    await awaitable
                except Exception:
                    log.exception("%s: handler %s for %s raised", self._owner_label, _name(handler), _event_name(event))
                    if on_error is not None:
                        on_error()
                if not lane.waiting:
                    return
                awaitable = lane.waiting.popleft()
        finally:
            lane.running -= 1
            for waiting in lane.waiting if lane.running == 0 else ():
                if inspect.iscoroutine(waiting):  # the call is ending (tasks cancelled): never to start
                    waiting.close()

    def clear(self) -> None:
        self._handlers.clear()
        self._lanes.clear()


class _Lane:
    """One async handler of one event: how many invocations run, and the events waiting."""

    __slots__ = ("running", "waiting")

    def __init__(self) -> None:
        self.running = 0
        self.waiting: deque[Awaitable[Any]] = deque()


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))


def _event_name(event: Any) -> str:
    return getattr(event, "name", str(event))
