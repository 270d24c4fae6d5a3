"""The conformance oracle: the official `openai` package's pydantic models of every Realtime event.

Validation is strict: the event must match the member of the discriminated union named by its
`type`, and no model anywhere in the parsed tree may carry fields the SDK does not declare (the SDK
models accept unknown extras silently, so we walk `model_extra`). Tests only; never the hot path.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, Field, TypeAdapter

# "translation": OpenAI's translation sessions, a protocol of their own on the GA wire
# (`RealtimeTranslationClientEvent` / `RealtimeTranslationServerEvent`).
Dialect = Literal["ga", "beta", "translation"]
Direction = Literal["client", "server"]


class ConformanceError(AssertionError):
    pass


def _members(union: Any) -> tuple[Any, ...]:
    # RealtimeServerEvent is Annotated[Union[...], PropertyInfo(discriminator="type")].
    args = get_args(union)
    if args and get_args(args[0]):
        return get_args(args[0])
    return args


@cache
def _adapter(dialect: Dialect, direction: Direction) -> TypeAdapter:
    union: Any
    if dialect == "translation":
        from openai.types import realtime as types

        union = types.RealtimeTranslationClientEvent if direction == "client" else types.RealtimeTranslationServerEvent
    else:
        if dialect == "ga":
            from openai.types import realtime as types
        else:
            from openai.types.beta import realtime as types  # type: ignore[no-redef]
        union = types.RealtimeClientEvent if direction == "client" else types.RealtimeServerEvent
    members = _members(union)
    # Union[...] of a tuple built at run time: `X | Y` cannot spell it.
    return TypeAdapter(Annotated[Union[members], Field(discriminator="type")])  # type: ignore[valid-type]  # noqa: UP007


def known_types(dialect: Dialect, direction: Direction) -> set[str]:
    """Every `type` literal of the SDK's union for that dialect and direction."""
    adapter = _adapter(dialect, direction)
    union = get_args(get_args(adapter._type)[0])  # Annotated[Union[...], Field] -> members
    names: set[str] = set()
    for model in union:
        names.update(get_args(model.model_fields["type"].annotation))
    return names


def _extras(model: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in (model.model_extra or {}):
            found.append(f"{path}.{key}")
        for name in type(model).model_fields:
            found.extend(_extras(getattr(model, name), f"{path}.{name}"))
    elif isinstance(model, (list, tuple)):
        for index, value in enumerate(model):
            found.extend(_extras(value, f"{path}[{index}]"))
    elif isinstance(model, dict):
        for key, value in model.items():
            found.extend(_extras(value, f"{path}.{key}"))
    return found


def validate_event(event: dict, dialect: Dialect, direction: Direction) -> BaseModel:
    """Parse `event` with the SDK's union; raise ConformanceError on any mismatch or extra field."""
    try:
        model = _adapter(dialect, direction).validate_python(event, strict=True)
    except Exception as exc:  # pydantic.ValidationError, with the whole story in its text
        raise ConformanceError(f"{dialect} {direction} event {event.get('type')!r} invalid: {exc}") from exc
    extras = _extras(model, event.get("type", "?"))
    if extras:
        raise ConformanceError(f"{dialect} {direction} event has fields the SDK does not declare: {extras}")
    return model


def validate_client_event(event: dict, dialect: Dialect) -> BaseModel:
    return validate_event(event, dialect, "client")


def validate_server_event(event: dict, dialect: Dialect) -> BaseModel:
    return validate_event(event, dialect, "server")
