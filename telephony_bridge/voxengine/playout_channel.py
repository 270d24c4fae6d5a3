"""PlayoutChannel: model audio from one RealtimeAPIClient into one call, through the call's PlaybackLedger.

Model delta → 24k → 8k → μ-law → media + mark; barge-in stops it at once and truncates the
conversation at what the caller heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.audio.resample import Resampler
from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.realtime.observer import Interrupted, Truncation

if TYPE_CHECKING:  # typing only: the client imports this module, not the other way round
    from telephony_bridge.voxengine.realtime_client import RealtimeAPIClient


class PlayoutChannel:
    """Model audio from one client into one call, through the call's PlaybackLedger."""

    def __init__(self, client: RealtimeAPIClient, call: Any, parameters: Mapping[str, Any]) -> None:
        self.client = client
        self.call = call
        self.tag = parameters.get("tag")
        self.custom_parameters = parameters.get("customParameters")
        self._downsampler = Resampler(24000, 8000) if client.codec == "pcm16" else None
        self._clearing: asyncio.Task[Any] | None = None  # the carrier clear of the last interrupt
        self.attached = True

    async def play(self, response_id: str, item_id: str, content_index: int, audio: bytes, duration_ms: float) -> None:
        ledger = self.call.playback
        if not ledger.accepts(response_id):
            self.client.stats.late_deltas_dropped += 1  # pitfall 6: a cancelled answer stays silent
            return
        clearing = self._clearing
        if clearing is not None:
            if not clearing.done():
                await clearing  # the new answer's audio must not reach the carrier before the clear
                if not ledger.accepts(response_id):
                    return
            self._clearing = None
        ledger.audio_received(response_id, item_id, content_index, duration_ms)
        ulaw = ulaw_encode(self._downsampler.process(audio)) if self._downsampler else audio
        starting = not ledger.episode_active
        mark = ledger.audio_sent(response_id, item_id, content_index, duration_ms, self.call.now_ms())
        link = self.call.link
        if ulaw:  # a tiny first delta can sit entirely in the resampler's 1.5 ms look-ahead
            await link.send_media(ulaw)
        await link.send_mark(mark)
        if starting:
            self.client._emit_media(
                MediaEvents.WebSocketMediaStarted,
                tag=self.tag, encoding=self.client.codec, customParameters=self.custom_parameters, call=self.call,
            )

    async def finish_audio(self, response_id: str) -> None:
        """The answer's audio is complete: push out the resampler's look-ahead tail."""
        if self._downsampler is None or not self.call.playback.accepts(response_id):
            return
        tail = self._downsampler.flush()
        if tail:
            await self.call.link.send_media(ulaw_encode(tail))

    def on_mark(self, outcome: Any) -> None:
        ended = getattr(outcome, "episode_ended", None)
        if ended is not None:
            self.media_ended(ended)

    def media_ended(self, ended: Any) -> None:
        self.client._emit_media(
            MediaEvents.WebSocketMediaEnded,
            tag=self.tag, mediaInfo={"duration": ended.duration_ms / 1000}, call=self.call,
        )

    def interrupt(self, truncate: bool) -> bool:
        """Stop playback at once. Returns False (and does nothing) when nothing was playing.

        Synchronous on purpose: the cancel and the truncations are queued to the model before
        anything the caller of clearMediaBuffer() sends next (say, a responseCreate), and the
        ledger stops accepting the interrupted answer's audio at once. Only the carrier's clear
        needs the loop; media sent after it waits for it (see play)."""
        interruption = self.call.playback.interrupt(self.call.now_ms())
        if interruption is None:
            return False
        # pitfall 3: clear even when all audio was already sent — it may still be queued at the carrier.
        self._clearing = self.client.tasks.spawn(self.call.link.send_clear(), name="clear carrier playback")
        if self._downsampler is not None:
            self._downsampler.reset()
        client = self.client
        client.stats.interruptions += 1
        if client.observer is not None:
            client.observer(client, Interrupted(tuple(
                Truncation(item_id=c.item_id, audio_end_ms=c.audio_end_ms, deleted=c.delete) for c in interruption.truncations
            ) if truncate else ()))
        # An answer still generating would keep adding audio the caller will never hear. Name it,
        # so a late cancel can never hit a newer answer; if the server already cancelled it (server
        # VAD), it says so with a benign error.
        for response_id in interruption.interrupted_response_ids:
            client._cancel_response(response_id)
        if truncate:
            for cut in interruption.truncations:
                if cut.delete:
                    client.stats.deletions += 1
                    client.conversationItemDelete(cut.item_id)
                else:
                    client.stats.truncations += 1
                    client.conversationItemTruncate(cut.item_id, cut.content_index, cut.audio_end_ms)
        if interruption.episode_ended is not None:
            self.media_ended(interruption.episode_ended)
        return True

    def detach(self) -> None:
        if self.attached:
            self.attached = False
            self.client._channels.pop(id(self.call), None)
            self.call.detach_playout(self)
