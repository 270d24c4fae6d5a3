"""PlayoutChannel: model audio from one realtime client (either shape) into one call's `Playout`.

The call's Playout converts, writes, paces and keeps the ledger; this channel is the client's side
of it: it says what the model's audio format is, turns what the playout reports into the client's
events (`WebSocketMediaStarted/Ended`), and on a barge-in stops the playout and has the client tell
its model what the caller did not hear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from telephony_bridge.audio.formats import L16_24K, ULAW_8K, AudioFormat
from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.realtime.observer import Interrupted, Truncation

if TYPE_CHECKING:  # typing only: the client imports this module, not the other way round
    from telephony_bridge.voxengine.model_client_base import ModelClientBase


def model_audio_format(codec: str) -> AudioFormat:
    """The format of a model's audio in `codec` (what the playout converts from)."""
    return L16_24K if codec == "pcm16" else ULAW_8K


class PlayoutChannel:
    """Model audio from one client into one call's Playout."""

    def __init__(self, client: ModelClientBase, call: Any, parameters: Mapping[str, Any]) -> None:
        self.client = client
        self.call = call
        self.tag = parameters.get("tag")
        self.custom_parameters = parameters.get("customParameters")
        self.playout = call.playout
        self.playout.source_format(model_audio_format(client.codec))
        self.attached = True

    async def play(self, response_id: str, item_id: str, content_index: int, audio: bytes, duration_ms: float) -> None:
        starting = await self.playout.play(response_id, item_id, content_index, audio, duration_ms)
        if starting is None:
            self.client.stats.late_deltas_dropped += 1  # pitfall 6: a cancelled answer stays silent
            return
        if starting:
            self.client._emit_media(
                MediaEvents.WebSocketMediaStarted,
                tag=self.tag,
                encoding=self.client.codec,
                customParameters=self.custom_parameters,
                call=self.call,
            )

    async def finish_audio(self, response_id: str) -> None:
        """The answer's audio is complete: push out the converter's look-ahead tail."""
        await self.playout.finish_audio(response_id)

    def on_mark(self, outcome: Any) -> None:
        ended = getattr(outcome, "episode_ended", None)
        if ended is not None:
            self.media_ended(ended)

    def media_ended(self, ended: Any) -> None:
        self.client._emit_media(
            MediaEvents.WebSocketMediaEnded,
            tag=self.tag,
            mediaInfo={"duration": ended.duration_ms / 1000},
            call=self.call,
        )

    def interrupt(self, truncate: bool) -> bool:
        """Stop playback at once. Returns False (and does nothing) when nothing was playing.

        Synchronous on purpose: what the client tells its model (a cancel and truncations, or what
        was not heard) is queued before anything the caller of clearMediaBuffer() sends next (say,
        a responseCreate), and the ledger stops accepting the interrupted answer's audio at once.
        Only the carrier's clear needs the loop; media sent after it waits for it (Playout.play)."""
        interruption = self.playout.interrupt()
        if interruption is None:
            return False
        client = self.client
        client.stats.interruptions += 1
        if client.observer is not None:
            client.observer(
                client,
                Interrupted(
                    tuple(
                        Truncation(item_id=c.item_id, audio_end_ms=c.audio_end_ms, deleted=c.delete)
                        for c in interruption.truncations
                    )
                    if truncate
                    else ()
                ),
            )
        client._barge_in(self, interruption, truncate)
        return True

    def detach(self) -> None:
        if self.attached:
            self.attached = False
            self.client._channels.pop(id(self.call), None)
            self.call.detach_playout(self)
