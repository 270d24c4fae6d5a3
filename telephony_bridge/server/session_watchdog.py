"""The watchdog of one call: a stalled carrier, a stalled media unit or a stream that never starts
ends the call, judged from counters the hot paths bump anyway (nothing per frame here)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from telephony_bridge.lifecycle import CallEnd

if TYPE_CHECKING:
    from telephony_bridge.server.session import CallSession

__all__ = ["watch"]

log = logging.getLogger("telephony_bridge.call")


async def watch(session: CallSession) -> None:
    """End the call when its carrier stops reading, when its media units stop taking caller
    audio, or when it never starts. Progress is judged from counters the hot paths bump anyway,
    sampled a few times per timeout (at most every second), so a stall is acted on within about
    1 to 1.5 timeouts of its start."""
    settings = session.runtime.settings
    peer_timeout, media_timeout = settings.peer_stall_timeout_s, settings.media_stall_timeout_s
    period = min(max(min(peer_timeout, media_timeout, settings.start_timeout_s) / 4, 0.02), 1.0)
    loop = asyncio.get_running_loop()
    started_at = loop.time()
    link_done, link_moved_at = -1, started_at
    frames_seen, frames_moved_at = -1, started_at
    while True:
        await asyncio.sleep(period)
        now = loop.time()
        link = session.link
        if link is None:
            if not session.codec.started and now - started_at >= settings.start_timeout_s:
                reason = f"no start message within {settings.start_timeout_s:g} s"
                log.warning("%s: %s; closing the stream", session.label, reason)
                session.end(CallEnd.NO_START, reason)
                return
            continue
        if link.sends_waiting == 0 or link.sends_done != link_done:
            link_done, link_moved_at = link.sends_done, now
        elif now - link_moved_at >= peer_timeout:
            log.warning(
                "%s: the carrier has not read for %g s (%d send(s) waiting); ending the call",
                session.label,
                peer_timeout,
                link.sends_waiting,
            )
            session.carrier_stalled = True
            session.end(CallEnd.CARRIER_STALLED, f"carrier stopped reading for {peer_timeout:g} s")
            return
        if not session.forwarding or session.frames_in != frames_seen:
            frames_seen, frames_moved_at = session.frames_in, now
        elif now - frames_moved_at >= media_timeout:
            log.warning(
                "%s: a media unit has not taken caller audio for %g s; ending the call", session.label, media_timeout
            )
            session.end(
                CallEnd.MEDIA_STALLED, f"caller audio stalled: a media unit took no audio for {media_timeout:g} s"
            )
            return
