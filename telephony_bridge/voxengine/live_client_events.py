"""The Live client's one-to-one client events (Voximplant's `LiveAPIClient` methods that only send):
each builds its wire event (realtime/live_wire.py) and hands it to the client's `_send`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import live_wire

__all__ = ["LiveClientEvents"]


@with_snake_case_twins
class LiveClientEvents:
    def _send(self, event: Mapping[str, Any]) -> None:
        raise NotImplementedError  # LiveAPIClient's: observed, then sent on the connection

    def sessionInstructionsAppend(self, parameters: Mapping[str, Any]) -> None:
        self._send(
            live_wire.instructions_append(
                parameters["content"], parameters.get("delegation_id"), parameters.get("event_id")
            )
        )

    def sessionThinkingAppend(self, parameters: Mapping[str, Any]) -> None:
        self._send(
            live_wire.thinking_append(
                parameters["content"], parameters.get("delegation_id"), parameters.get("event_id")
            )
        )

    def sessionCommentaryAppend(self, parameters: Mapping[str, Any]) -> None:
        self._send(
            live_wire.commentary_append(
                parameters["content"], parameters.get("delegation_id"), parameters.get("event_id")
            )
        )

    def sessionInputAudioMute(self, parameters: Mapping[str, Any] | None = None) -> None:
        self._send(live_wire.input_audio_mute((parameters or {}).get("event_id")))

    def sessionInputAudioUnmute(self, parameters: Mapping[str, Any] | None = None) -> None:
        self._send(live_wire.input_audio_unmute((parameters or {}).get("event_id")))

    def sessionOutputAudioFixturePlay(self, parameters: Mapping[str, Any]) -> None:
        self._send(live_wire.output_audio_fixture_play(parameters["audio"], parameters.get("event_id")))

    def decisionCreate(self, parameters: Mapping[str, Any]) -> None:
        self._send(live_wire.decision_create(parameters["event_id"]))

    def decisionItemCreate(self, parameters: Mapping[str, Any]) -> None:
        self._send(live_wire.decision_item_create(parameters["item"], parameters.get("event_id")))

    def decisionItemDelete(self, parameters: Mapping[str, Any]) -> None:
        self._send(live_wire.decision_item_delete(parameters["item_id"], parameters.get("event_id")))

    def responseItemCreate(self, parameters: Mapping[str, Any]) -> None:
        """`response.item.create` (Responses delegation): e.g. a `function_call_output`."""
        self._send(live_wire.response_item_create(parameters["item"], parameters.get("event_id")))

    def responseCreate(self, parameters: Mapping[str, Any] | None = None) -> None:
        """`response.create`: lets the Responses backend continue (after all function outputs).
        It does not make the voice model speak."""
        self._send(live_wire.response_create((parameters or {}).get("event_id")))

    def sessionClose(self, parameters: Mapping[str, Any] | None = None) -> None:
        """`session.close`; `SessionClosed` follows, then the server closes the socket."""
        self._send(live_wire.session_close((parameters or {}).get("event_id")))
