"""Event listeners for scenario-facing objects (Call, RealtimeAPIClient, VoxEngine).

A handler may be a plain function or a coroutine function. Plain handlers run inline, in
registration order; coroutines are started as tasks owned by the call's session, so a slow
handler (a tool doing HTTP) never stalls the audio path. A handler that raises is logged with
the call id and the call goes on.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any, Protocol

log = logging.getLogger("telephony_bridge.scenario")

Handler = Callable[[Any], Any]


class TaskSpawner(Protocol):
    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> Any: ...


class EventPayload(dict):
    """The object a handler receives: a dict whose keys also read as attributes (`e.call`, `e["call"]`),
    like the event objects of VoxEngine's JavaScript."""

    __slots__ = ()

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


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

    def _start(self, awaitable: Any, handler: Handler, event: Any, on_error: Callable[[], None] | None) -> None:
        label = self._owner_label

        async def guarded() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("%s: handler %s for %s raised", label, _name(handler), _event_name(event))
                if on_error is not None:
                    on_error()

        self._spawner.spawn(guarded(), name=f"handler {_name(handler)}")

    def clear(self) -> None:
        self._handlers.clear()


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))


def _event_name(event: Any) -> str:
    return getattr(event, "name", str(event))
