"""`OpenAI.createRealtimeAPIClient({type: OpenAI.RealtimeAPIClientType.TRANSLATION})`: an interpreter
on the call. Caller audio in (continuously, silence included), translated audio out into the same
call (or another) through the same PlayoutChannel/Playout as any model audio, transcripts as
`SessionInputTranscriptDelta` / `SessionOutputTranscriptDelta`, `sessionClose()` → `SessionClosed`.

The wire is realtime/translation.py; this is the GA client over it. What differs from a realtime
client, all here:
- three client events only: `sessionUpdate` (the translation fields, strictly), the audio append
  (the uplink, `session.input_audio_buffer.append`), `sessionClose`; the conversation and response
  methods raise, naming why;
- the bridge sends no session.update of its own: the audio is PCM16 24 kHz by protocol, so the
  codec is pcm16 and the carrier edge converts as for any pcm16 session;
- translated audio has no response or item: the playout ledger is given *segments* instead, one
  per stretch of output audio. A segment ends after `SEGMENT_IDLE_S` without audio (Voximplant's
  WebSocketMediaEnded comes "after 1 s of silence"), at `clearMediaBuffer()` and at `session.closed`;
- `clearMediaBuffer()` only clears the playout: there is no answer to cancel and nothing to
  truncate, and the translation goes on (the next audio starts a new segment);
- after `sessionClose()` no more caller audio is sent (the SDK refuses input after it), and after
  `session.closed` the client does not reconnect when the server hangs up.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any, Final

from telephony_bridge.naming import with_snake_case_twins
from telephony_bridge.realtime import translation as wire
from telephony_bridge.realtime.events import RealtimeAPIEvents
from telephony_bridge.voxengine.realtime_ga import (
    GA_METHODS,
    GARealtimeAPIClient,
    RealtimeAPIClientType,
)

SEGMENT_IDLE_S: Final = 1.0
# GA methods a translation session has an event for.
TRANSLATION_METHODS: Final = frozenset({"sessionUpdate", "sessionClose"})
_NOT_FOR_TRANSLATION: Final = frozenset(GA_METHODS[name] for name in GA_METHODS if name not in TRANSLATION_METHODS)


@with_snake_case_twins
class TranslationRealtimeAPIClient(GARealtimeAPIClient):
    """A GA `OpenAI.RealtimeAPIClient` of type TRANSLATION."""

    _bridge_session_update = False

    def __init__(self, **options: Any) -> None:
        if options.get("codec", "pcm16") != "pcm16":
            raise ValueError(
                "a translation session takes only PCM16 24 kHz audio (the SDK: other formats are "
                f"refused); codec {options['codec']!r} does not apply, leave it at 'pcm16'"
            )
        super().__init__(client_type=RealtimeAPIClientType.TRANSLATION, **options)
        connection = self._connection
        connection.audio_delta_type = wire.AUDIO_DELTA_TYPE
        connection.uplink.encode = wire.encode_audio_append
        connection.session_update_for = self._translation_update  # type: ignore[method-assign]
        self._segment_ids = itertools.count(1)
        self._segment: str | None = None
        self._segment_idle: asyncio.TimerHandle | None = None
        self.input_closed = False
        self.session_closed = False  # session.closed received: the server hangs up next

    def _translation_update(self, config: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
        return wire.session_update(config, event_id, self.model)

    # --- client events -------------------------------------------------------------------
    def _send_ga(self, event_type: str, parameters: Mapping[str, Any] | None) -> None:
        if event_type in _NOT_FOR_TRANSLATION:
            raise ValueError(
                f"{event_type}: a translation session has no conversation, no response and no "
                "input buffer to commit; it takes sessionUpdate and sessionClose (and the call's audio)"
            )
        if event_type != "session.update":
            super()._send_ga(event_type, parameters)
            return
        if parameters is None or not isinstance(parameters, Mapping):
            raise TypeError("sessionUpdate takes one object: {session: {...}}")
        session = wire.session_for_wire(parameters.get("session") or {}, self.model)  # raises before anything is sent
        connection = self._connection
        connection.session_config = wire.merge_session(connection.session_config, session)  # replayed after a reconnect
        event: dict[str, Any] = {"type": "session.update", "session": session}
        if parameters.get("event_id") is not None:
            event["event_id"] = parameters["event_id"]
        self._send(event)

    def sessionClose(self, parameters: Mapping[str, Any] | None = None) -> None:
        """`session.close`: the server flushes the input, sends the rest of the translation, then
        `session.closed` (SessionClosed). No caller audio is sent after it."""
        parameters = parameters or {}
        if not isinstance(parameters, Mapping):
            raise TypeError("sessionClose takes one object (or nothing)")
        if self.input_closed:
            return  # the SDK's rule too: a second close is a no-op
        self.input_closed = True
        self._send(wire.session_close(parameters.get("event_id")))
        self._connection.close_input()

    # --- media ----------------------------------------------------------------------------
    def clearMediaBuffer(self, parameters: Mapping[str, Any] | None = None) -> None:
        """Drop the translated audio not yet played; the translation goes on (nothing to cancel)."""
        super().clearMediaBuffer({**(parameters or {}), "truncate": False})
        if self._segment is not None:
            self._end_segment_now()

    def _cancel_response(self, response_id: str) -> None:
        pass  # a translation has no response to cancel

    def _delete_item(self, item_id: str) -> None:
        pass  # nor items

    def _truncate_item(self, item_id: str, content_index: int, audio_end_ms: float) -> None:
        pass

    async def on_audio_delta(
        self,
        response_id: str,
        item_id: str,
        content_index: int,
        audio: bytes,
        duration_ms: float,
        event: dict[str, Any],
    ) -> None:
        segment = self._segment
        if segment is None:
            segment = self._segment = f"translation_{next(self._segment_ids)}"
            self.on_response_started(segment)
            self.on_item_added(segment, segment)
        if self._segment_idle is not None:
            self._segment_idle.cancel()
        self._segment_idle = asyncio.get_running_loop().call_later(SEGMENT_IDLE_S, self._segment_went_quiet, segment)
        await super().on_audio_delta(segment, segment, 0, audio, duration_ms, event)

    def _segment_went_quiet(self, segment: str) -> None:
        if self._segment == segment:
            self.tasks.spawn(self._finish_segment(segment), name=f"translation segment {segment} ends")

    async def _finish_segment(self, segment: str) -> None:
        """The segment's audio is complete: flush the converter's tail, then let the playout end the
        episode once the phone has played it (WebSocketMediaEnded)."""
        if self._segment != segment:
            return
        self._segment = None
        if self._segment_idle is not None:
            self._segment_idle.cancel()
            self._segment_idle = None
        await self.on_audio_done(segment)
        self.on_response_finished(segment)

    def _end_segment_now(self) -> None:
        segment, self._segment = self._segment, None
        if self._segment_idle is not None:
            self._segment_idle.cancel()
            self._segment_idle = None
        if segment is not None:
            self.on_response_finished(segment)  # interrupted: the ledger already let it go

    # --- server events --------------------------------------------------------------------
    def on_server_event(self, member: RealtimeAPIEvents, event: dict[str, Any]) -> None:
        if member is RealtimeAPIEvents.SessionClosed:
            # The server hangs up next: that is the end, not a drop to reconnect from.
            self._connection.reconnect = False
            self.session_closed = True
            self._connection.close_input()
            self.input_closed = True
            if self._segment is not None:
                self.tasks.spawn(self._finish_segment(self._segment), name="translation closed")
        super().on_server_event(member, event)

    def on_closing(self) -> None:
        if self._segment_idle is not None:
            self._segment_idle.cancel()
            self._segment_idle = None
        if self.session_closed:
            # A graceful end: the last translation was sent just before session.closed and is still
            # playing. The channels stay until the call ends (which detaches them), so that its end
            # is heard as WebSocketMediaEnded, as after any other translation.
            return
        super().on_closing()


__all__ = ["SEGMENT_IDLE_S", "TranslationRealtimeAPIClient"]
