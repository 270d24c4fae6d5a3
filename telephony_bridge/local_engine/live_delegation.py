"""How a local-engine Live session delegates a tool call, and the decision events it answers.

A scripted turn with a `call` delegates it (shared/reference/gpt-live.md): with client delegation
the engine waits for `session.commentary.append` with the delegation's id and says that; with
Responses delegation the call comes nested in `response.event`s, and the engine waits for the
function's output (`response.item.create`) and `response.create`, then says the turn's `then`.
Decisions are accepted and answered, not simulated.

A part of `LiveEngineSession` (live_session.py), which assigns the state declared here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .live_protocol import LiveClientError, check_keys, response_object
from .live_state import Delegation
from .script import Turn, render_followup

__all__ = ["LiveDelegation"]


class LiveDelegation:
    """The delegation part of a local-engine Live session."""

    session: dict[str, Any] | None
    _delegations: dict[str, Delegation]

    if TYPE_CHECKING:  # live_session.py's; declared only, so nothing here shadows them at run time

        def _new_id(self, prefix: str) -> str: ...
        def _emit(self, type_: str, client_event_id: str | None = None, **fields: Any) -> None: ...
        def _say(self, text: str) -> None: ...
        @property
        def position_ms(self) -> int: ...

    # ------------------------------------------------------------------ decisions (not simulated)

    def _on_decision_create(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id"}, ("event_id",))
        raise LiveClientError("Decisions delegation is not configured for this session.", "decisions_not_configured")

    def _on_decision_item_create(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id", "item"}, ("item",))
        item = event["item"]
        if not isinstance(item, dict):
            raise LiveClientError("'item' must be an object.", "invalid_type", "item")
        self._emit("decision.item.created", event.get("event_id"), item={"id": self._new_id("item_"), **item})

    def _on_decision_item_delete(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id", "item_id"}, ("item_id",))
        self._emit("decision.item.deleted", event.get("event_id"), item_id=event["item_id"])

    # ------------------------------------------------------------------ Responses delegation

    def _on_response_item_create(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id", "item"}, ("item",))
        item = event["item"]
        if not isinstance(item, dict) or item.get("type") != "function_call_output":
            return  # other Responses input items: accepted, not simulated
        for delegation in self._delegations.values():
            if delegation.call_id == item.get("call_id"):
                output = item.get("output")
                delegation.output = output if isinstance(output, str) else json.dumps(output)
                return
        raise LiveClientError(
            f"No function call with call_id '{item.get('call_id')}'.", "invalid_value", "item.call_id"
        )

    def _on_response_create(self, event: dict[str, Any]) -> None:
        check_keys("event", event, {"type", "event_id"})
        assert self.session is not None
        if self.session["delegation"].get("type") != "responses":
            raise LiveClientError("response.create needs Responses delegation.", "invalid_request")
        for delegation in list(self._delegations.values()):
            if delegation.target == "responses" and delegation.output is not None:
                del self._delegations[delegation.id]
                self._response_event(delegation, "response.completed", "completed", [])
                then = delegation.turn.then
                if then:
                    self._say(render_followup(then, delegation.output))

    def _response_event(self, delegation: Delegation, kind: str, status: str, output: list[Any]) -> None:
        response = response_object(delegation.response_id, status, self._backend_model(), output)
        self._emit(
            "response.event",
            delegation_id=delegation.id,
            event={"type": kind, "response": response, "sequence_number": 0},
        )

    def _backend_model(self) -> str:
        delegation = (self.session or {}).get("delegation") or {}
        return str((delegation.get("responses") or {}).get("model", "gpt-5.6-terra"))

    def _pending_delegation(self) -> bool:
        return bool(self._delegations)

    def _delegate(self, turn: Turn) -> None:
        assert self.session is not None
        assert turn.call is not None
        target = self.session["delegation"].get("type") or "client"
        target = target if target in ("client", "responses") else "client"
        delegation = Delegation(self._new_id("deleg_"), turn, target)
        body: dict[str, Any] = {"id": delegation.id, "type": "delegation", "target": target}
        if target == "responses":
            delegation.response_id = self._new_id("resp_")
            body["response_id"] = delegation.response_id
        self._delegations[delegation.id] = delegation
        self._emit("session.delegation.created", offset_ms=self.position_ms, delegation=body)
        if target == "responses":
            delegation.call_id = self._new_id("call_")
            item = {
                "type": "function_call",
                "id": self._new_id("fc_"),
                "call_id": delegation.call_id,
                "name": turn.call.name,
                "arguments": turn.call.arguments_json(),
                "status": "completed",
            }
            self._response_event(delegation, "response.created", "in_progress", [])
            self._emit(
                "response.event",
                delegation_id=delegation.id,
                event={"type": "response.output_item.done", "output_index": 0, "item": item, "sequence_number": 1},
            )
