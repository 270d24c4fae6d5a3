"""A call's carrier side as the `Call` sees it: audio, marks, clears and DTMF written through the
carrier's codec onto the session's `MediaTransport`, with the counters the session's watchdog reads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.websockets import WebSocketDisconnect, WebSocketState

from telephony_bridge.audio.formats import AudioFormat
from telephony_bridge.carriers.base import Carrier, CarrierCodec
from telephony_bridge.server.media_transport import MediaTransport
from telephony_bridge.server.metrics import BridgeMetrics

__all__ = ["MediaLink", "close_reason"]


class MediaLink:
    """The carrier side of one call, as the Call sees it: audio, marks and clears written through
    the carrier's codec (text or binary frames, as it says).

    uvicorn's send waits while the socket's write buffer is over its high-water mark, so a carrier
    that stops reading would block whoever plays into the call (the model's reader) for as long as
    the TCP connection lives. The link only counts sends waiting and done — two integer updates a
    send — and the session's watchdog ends the call when sends wait without progress. Once the
    carrier is gone (closed, disconnected, or given up on), sends are dropped quietly: the session is
    ending the call, and an exception here would only surface in the model's reader.
    """

    def __init__(
        self,
        websocket: MediaTransport,
        codec: CarrierCodec,
        carrier: Carrier,
        audio_format: AudioFormat,
        abort: Callable[[], None] | None = None,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._websocket = websocket
        self._codec = codec
        self.capabilities = carrier.capabilities
        self.audio_format = audio_format  # what the stream carries, both ways
        self._abort = abort
        self._metrics = metrics or BridgeMetrics()
        self.sends_waiting = 0
        self.sends_done = 0
        self.gone = False

    async def send_media(self, audio: bytes) -> None:
        self._metrics.frames_out += 1
        await self._send(self._codec.audio(audio))

    async def send_mark(self, name: str) -> None:
        await self._send(self._codec.mark(name))

    async def send_clear(self) -> None:
        await self._send(self._codec.clear())

    async def send_digits(self, digits: str) -> None:
        """DTMF out, on a carrier whose capabilities say it can (its codec then has `dtmf`)."""
        await self._send(self._codec.dtmf(digits))  # type: ignore[attr-defined]

    async def _send(self, frame: str | bytes) -> None:
        if self.gone:
            return
        self.sends_waiting += 1
        try:
            if isinstance(frame, str):
                await self._websocket.send_text(frame)
            else:
                await self._websocket.send_bytes(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.gone = True  # closed under us: the carrier reader sees the disconnect and ends the call
        finally:
            self.sends_waiting -= 1
            self.sends_done += 1

    async def close(self, code: int, reason: str, timeout_s: float) -> bool:
        """Close with `code` and `reason`, waiting at most `timeout_s` for the close frame to get
        out; a carrier that does not read by then is dropped (its socket aborted). False then."""
        self.gone = True
        websocket = self._websocket
        if (
            websocket.application_state == WebSocketState.DISCONNECTED
            or websocket.client_state == WebSocketState.DISCONNECTED
        ):
            return True  # the carrier closed first
        try:
            await asyncio.wait_for(websocket.close(code, reason), timeout_s)
        except TimeoutError:
            if self._abort is not None:
                self._abort()
            return False
        except (RuntimeError, WebSocketDisconnect, OSError):
            pass  # closed under us: nothing left to tell the carrier
        return True


def close_reason(reason: str) -> str:
    """A WebSocket close reason holds at most 123 bytes of UTF-8."""
    encoded = reason.encode("utf-8")
    return reason if len(encoded) <= 123 else encoded[:120].decode("utf-8", "ignore") + "..."
