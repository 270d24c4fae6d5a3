"""The real RTP port pool (server/sip_media.py), remembering what the signalling told each stream."""

from __future__ import annotations

import weakref
from typing import Any

from telephony_bridge.server.sip_media import RtpPortPool, RtpStream


class RecordingPool(RtpPortPool):
    """`RtpPortPool` whose streams keep a log of every `configure` (the hold test reads it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened: dict[str, RtpStream] = {}
        self.configured: dict[str, list[dict[str, Any]]] = {}

    def open(self, call_id: str) -> RtpStream | None:
        stream = super().open(call_id)
        if stream is not None:
            self.opened[call_id] = stream
            log = self.configured.setdefault(call_id, [])
            # The stream's own method through a weak reference: a bound method kept on the stream
            # would be a reference cycle, and the test that a call is freed at once would see it.
            configure, owner = type(stream).configure, weakref.ref(stream)

            def recording_configure(
                remote: tuple[str, int],
                payload_type: int,
                telephone_event_pt: int | None = None,
                direction: str = "sendrecv",
            ) -> None:
                log.append(
                    {
                        "remote": remote,
                        "payload_type": payload_type,
                        "event": telephone_event_pt,
                        "direction": direction,
                    }
                )
                target = owner()
                if target is not None:
                    configure(target, remote, payload_type, telephone_event_pt, direction)

            stream.configure = recording_configure  # type: ignore[method-assign]
        return stream
