"""The event emitters of OpenAI's client libraries, for the fronts that mimic them.

- `RealtimeEventHandler`: openai-realtime-api-beta's (`on`, `onNext`, `off`, `offNext`, `dispatch`,
  `waitForNext`, `clearEventHandlers`). Names may hold `*` wildcards (`"server.*"`); on a dispatch
  the `on` handlers run first, then the `onNext` ones, which are then forgotten.
- `TransportEmitter`: the Agents SDK transport's (`on`, `once`, `off`, `emit`). Names are exact:
  `"*"` is an event of its own (every raw server event), not a wildcard.

Handlers follow the bridge's rule: a plain function runs inline, in order; a coroutine function is
started as a task of the call (so a slow tool never stalls the model's events); a non-callable is a
TypeError at registration; a handler that raises is logged and the call goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable, Coroutine
from functools import cache, lru_cache
from typing import Any

from telephony_bridge.naming import with_snake_case_twins

log = logging.getLogger("telephony_bridge.scenario")

Handler = Callable[..., Any]
Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]


def spawn_on_loop(coro: Coroutine[Any, Any, Any], name: str) -> Any:
    """Outside a call (the fronts used on their own): a plain task on the running loop."""
    return asyncio.get_running_loop().create_task(coro, name=name)


@cache
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in name.split("*")) + "$")


def _matches(registered: str, name: str) -> bool:
    return registered == name or ("*" in registered and _pattern(registered).match(name) is not None)


def _check_handler(name: Any, handler: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"event name must be a str, not {type(name).__name__}")
    if not callable(handler):
        raise TypeError(f"handler for {name!r} must be callable, got {type(handler).__name__}")


class _Runner:
    """Runs handlers by the bridge's rule (see the module docstring)."""

    def __init__(self, label: str, spawn: Spawn) -> None:
        self._label = label
        self.spawn = spawn

    def run(self, handler: Handler, name: str, args: tuple[Any, ...]) -> None:
        try:
            wanted = _arity(handler)
            result = handler(*(args if wanted is None or wanted >= len(args) else args[:wanted]))
        except Exception:
            log.exception("%s: handler %s for %s raised", self._label, _name(handler), name)
            return
        if inspect.isawaitable(result):
            self.spawn(self._await(result, handler, name), f"handler {_name(handler)}")

    async def _await(self, awaitable: Any, handler: Handler, name: str) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("%s: handler %s for %s raised", self._label, _name(handler), name)


@with_snake_case_twins
class RealtimeEventHandler:
    """openai-realtime-api-beta's event handler, name for name."""

    def __init__(self, label: str = "realtime client", spawn: Spawn = spawn_on_loop) -> None:
        self._runner = _Runner(label, spawn)
        self._handlers: dict[str, list[Handler]] = {}
        self._next_handlers: dict[str, list[Handler]] = {}

    def on(self, eventName: str, callback: Handler) -> Handler:
        _check_handler(eventName, callback)
        self._handlers.setdefault(eventName, []).append(callback)
        return callback

    def onNext(self, eventName: str, callback: Handler) -> Handler:
        _check_handler(eventName, callback)
        self._next_handlers.setdefault(eventName, []).append(callback)
        return callback

    def off(self, eventName: str, callback: Handler | None = None) -> bool:
        _remove(self._handlers, eventName, callback)
        return True

    def offNext(self, eventName: str, callback: Handler | None = None) -> bool:
        _remove(self._next_handlers, eventName, callback)
        return True

    def clearEventHandlers(self) -> bool:
        self._handlers.clear()
        self._next_handlers.clear()
        return True

    def dispatch(self, eventName: str, event: Any = None) -> bool:
        """`on` handlers first, then `onNext` ones (each fires once); `*` in a registered name matches anything."""
        for registered, handlers in list(self._handlers.items()):
            if _matches(registered, eventName):
                for handler in tuple(handlers):
                    self._runner.run(handler, eventName, (event,))
        for registered in [r for r in self._next_handlers if _matches(r, eventName)]:
            for handler in self._next_handlers.pop(registered, ()):
                self._runner.run(handler, eventName, (event,))
        return True

    def has_listeners(self, eventName: str) -> bool:
        return any(_matches(r, eventName) for r in (*self._handlers, *self._next_handlers))

    async def waitForNext(self, eventName: str, timeout: float | None = None) -> Any:
        """The next `eventName` event's payload, or None after `timeout` milliseconds."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def resolve(event: Any) -> None:
            if not future.done():
                future.set_result(event)

        self.onNext(eventName, resolve)
        try:
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout / 1000)
        except TimeoutError:
            return None
        finally:
            self.offNext(eventName, resolve)


@with_snake_case_twins
class TransportEmitter:
    """The Agents SDK transport layer's emitter: exact names, listeners get the event's arguments."""

    def __init__(self, label: str = "realtime transport", spawn: Spawn = spawn_on_loop) -> None:
        self._runner = _Runner(label, spawn)
        self._handlers: dict[str, list[Handler]] = {}
        self._once: set[tuple[str, int]] = set()

    def on(self, type: str, listener: Handler) -> TransportEmitter:
        _check_handler(type, listener)
        self._handlers.setdefault(type, []).append(listener)
        return self

    def once(self, type: str, listener: Handler) -> TransportEmitter:
        self.on(type, listener)
        self._once.add((type, id(listener)))
        return self

    def off(self, type: str, listener: Handler | None = None) -> TransportEmitter:
        _remove(self._handlers, type, listener)
        return self

    def emit(self, type: str, *args: Any) -> bool:
        handlers = self._handlers.get(type)
        if not handlers:
            return False
        for handler in tuple(handlers):
            if (type, id(handler)) in self._once:
                self._once.discard((type, id(handler)))
                _remove(self._handlers, type, handler)
            self._runner.run(handler, type, args)
        return True

    def listens(self, type: str) -> bool:
        return bool(self._handlers.get(type))


def _arity(handler: Handler) -> int | None:
    try:
        return _positional_arity(handler)
    except TypeError:  # an unhashable callable: cannot be cached, pass everything
        return None


@lru_cache(maxsize=512)
def _positional_arity(handler: Handler) -> int | None:
    """How many positional arguments `handler` takes (None: any). JavaScript ignores extra arguments,
    so a ported `client.on("conversation.interrupted", lambda: ...)` must not get one it cannot take."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _remove(table: dict[str, list[Handler]], name: str, handler: Handler | None) -> None:
    if handler is None:
        table.pop(name, None)
        return
    handlers = table.get(name, [])
    if handler in handlers:
        handlers.remove(handler)
    if not handlers:
        table.pop(name, None)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
