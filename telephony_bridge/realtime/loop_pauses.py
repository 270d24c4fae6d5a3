"""Timeouts on the model that count only the time the bridge's own event loop ran.

On a loaded host the bridge's event loop can be held up for most of a second or more: the process
not scheduled, or every call's work queued behind itself. Frames and pongs the model sent meanwhile
sit unread, and a model on the same host (the embedded engine; in tests, the same process) could not
send either. A timeout measured in wall time then declares a healthy model dead the moment the loop
resumes, and the reconnect that follows costs the caller audio and the loaded host more work.

So the bridge's timeouts on the model (the answer watchdog, the keepalive pong) wake at least every
`CHECK_INTERVAL_S` and count how late each wake-up came: that lateness is time the loop itself was
held up, and it is not charged to the model. A model that stays silent while the loop runs is still
caught, late by at most the loop's own hold-ups.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

__all__ = ["CHECK_INTERVAL_S", "PauseAwareClientConnection", "nap", "wait_running"]

log = logging.getLogger("telephony_bridge.realtime")

# A hold-up of the loop is noticed to within this; a few wake-ups a second per waiting timer.
CHECK_INTERVAL_S = 0.25


async def nap(seconds: float) -> float:
    """Sleep for `seconds`, or `CHECK_INTERVAL_S` if that is shorter; return how late the loop woke
    us: the time it was held up."""
    loop = asyncio.get_running_loop()
    wake_at = loop.time() + max(0.0, min(seconds, CHECK_INTERVAL_S))
    await asyncio.sleep(wake_at - loop.time())
    return max(0.0, loop.time() - wake_at)


async def wait_running(future: asyncio.Future[Any], timeout_s: float) -> bool:
    """Wait for `future` for up to `timeout_s` of time the loop ran; True if it is done."""
    loop = asyncio.get_running_loop()
    remaining = timeout_s
    while not future.done() and remaining > 0:
        started = loop.time()
        step = min(remaining, CHECK_INTERVAL_S)
        await asyncio.wait((future,), timeout=step)
        elapsed = loop.time() - started
        remaining -= min(elapsed, step)  # beyond `step`, the loop was held up: not the model's time
    return future.done()


class PauseAwareClientConnection(ClientConnection):
    """The library's client connection, with a keepalive whose pong timeout counts only the time the
    loop ran (the library's own counts wall time)."""

    async def keepalive(self) -> None:
        assert self.ping_interval is not None
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                pong = asyncio.ensure_future(await self.ping())
                if self.ping_timeout is None or await wait_running(pong, self.ping_timeout):
                    await pong  # done: the latency, or the close that ended the connection
                    continue
                # As the library does: fail the connection; connection_lost() cancels this task.
                async with self.send_context():
                    self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                return
        except ConnectionClosed:
            return
        except Exception:
            log.exception("keepalive ping failed")
