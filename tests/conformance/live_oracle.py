"""The GPT-Live conformance oracle: `openai.types.live` unions, strict (shared/reference/gpt-live.md §13).

The SDK unions declare a discriminator pydantic ignores, and their models allow extra fields while
the server is strict: re-wrap with a real discriminator, and fail on any `model_extra` in the tree.
`delegation_id` is Optional in the models but a required key on the wire: checked as a key.
Nested Responses events (`response.event.event`) are validated with `ResponseStreamEvent`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, Field, TypeAdapter

from tests.conformance.oracle import ConformanceError, _extras

Direction = Literal["client", "server"]

APPENDS = {"session.instructions.append", "session.thinking.append", "session.commentary.append"}


def _members(union: Any) -> tuple[Any, ...]:
    return get_args(get_args(union)[0])


@cache
def _adapter(direction: Direction) -> TypeAdapter:
    from openai.types.live import ClientEvent, ServerEvent

    union = ClientEvent if direction == "client" else ServerEvent
    return TypeAdapter(Annotated[Union[_members(union)], Field(discriminator="type")])  # type: ignore[valid-type]  # noqa: UP007


def known_types(direction: Direction) -> set[str]:
    from openai.types.live import ClientEvent, ServerEvent

    union = ClientEvent if direction == "client" else ServerEvent
    names: set[str] = set()
    for model in _members(union):
        names.update(get_args(model.model_fields["type"].annotation))
    return names


@cache
def _responses_adapter() -> TypeAdapter:
    from openai.types.responses import ResponseStreamEvent

    return TypeAdapter(ResponseStreamEvent)


def validate_live(event: dict, direction: Direction) -> BaseModel:
    try:
        model = _adapter(direction).validate_python(event)
    except Exception as exc:
        raise ConformanceError(f"Live {direction} event {event.get('type')!r} invalid: {exc}") from exc
    extras = _extras(model, event.get("type", "?"))
    if extras:
        raise ConformanceError(f"Live {direction} event has fields the SDK does not declare: {extras}")
    if direction == "client" and event.get("type") in APPENDS and "delegation_id" not in model.model_fields_set:
        raise ConformanceError(f"{event['type']} without a delegation_id key (required on the wire)")
    if direction == "server" and event.get("type") == "response.event":
        try:
            _responses_adapter().validate_python(event["event"])
        except Exception as exc:
            raise ConformanceError(f"nested Responses event {event['event'].get('type')!r} invalid: {exc}") from exc
    return model
