"""Asterisk AudioSocket's side of the wire, for the phone simulator (testing/carrier_profile.py).

AudioSocket has no answer request and no WebSocket: Asterisk opens a TCP connection to the
bridge's AudioSocket listener and speaks frames (carriers/audiosocket.py). So this profile has a
`direct_target()` instead of an answer: the simulator skips the webhook and connects to
``tcp://HOST:PORT`` (the `--url` of `telephony-bridge call --carrier audiosocket`) with its small
TCP driver (testing/simulator_tcp.py). The dialed number is the listener's (``--audiosocket
HOST:PORT=NUMBER`` on the bridge); `--to` cannot change it, as Asterisk could not.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from telephony_bridge.audio.formats import L16_8K
from telephony_bridge.carriers.audiosocket import (
    HANGUP_FRAME,
    HEADER_BYTES,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_UUID,
    frame,
)
from telephony_bridge.testing.carrier_profile import AnswerRequestSpec, BridgeAudio, PhoneEvent, StreamTarget

__all__ = ["AudioSocketProfile"]


class AudioSocketProfile:
    name = "audiosocket"
    audio_format = L16_8K
    echoes_marks = False  # AudioSocket has no marks: the bridge paces by clock
    frame_ms = 20
    ws_user_agent = "asterisk-audiosocket-simulator"

    def __init__(self, *, base_url: str = "", secret: str | None = None, account_id: str | None = None) -> None:
        self.base_url = base_url  # tcp://HOST:PORT of the bridge's AudioSocket listener
        self.account_sid = account_id or "asterisk"

    def new_call_id(self) -> str:
        return str(uuid.uuid4())  # what `AudioSocket(${UUID()},…)` gives

    def direct_target(self) -> StreamTarget:
        """Where to connect, without an answer request: the listener's TCP address."""
        parts = urlsplit(self.base_url)
        if parts.scheme != "tcp" or not parts.hostname or not parts.port:
            raise ValueError(f"AudioSocket calls a TCP listener: --url tcp://HOST:PORT, not {self.base_url!r}")
        return StreamTarget(url=f"tcp://{parts.netloc}")

    def answer_request(self, call_id: str, caller: str, number: str) -> AnswerRequestSpec:
        raise NotImplementedError("AudioSocket has no answer request (direct_target)")

    def read_answer(self, status: int, content_type: str, body: str, base_url: str) -> StreamTarget:
        raise ValueError("AudioSocket has no answer document")

    def start_messages(self, call_id: str, stream_id: str, target: StreamTarget) -> list[str | bytes]:
        return [frame(KIND_UUID, uuid.UUID(call_id).bytes)]

    def audio_message(self, payload: bytes, sequence: int, timestamp_ms: int) -> bytes:
        return frame(KIND_AUDIO, payload)

    def dtmf_message(self, digit: str, sequence: int) -> bytes:
        return frame(KIND_DTMF, digit.encode("ascii"))

    def stop_message(self, sequence: int) -> bytes:
        return HANGUP_FRAME

    def mark_echo(self, name: str, sequence: int) -> bytes:
        raise NotImplementedError("AudioSocket has no marks")

    def parse(self, message: str | bytes) -> PhoneEvent:
        if not isinstance(message, bytes) or len(message) < HEADER_BYTES:
            raise ValueError("AudioSocket: the bridge sent something that is not a frame")
        kind, payload = message[0], message[HEADER_BYTES:]
        if kind == KIND_AUDIO:
            if not payload or len(payload) % 2:
                raise ValueError(f"AudioSocket: audio frame of {len(payload)} bytes")
            return BridgeAudio(payload)
        if kind in (KIND_HANGUP, KIND_ERROR):
            return None  # the bridge hangs up; the connection closes next
        raise ValueError(f"AudioSocket: Asterisk would not accept a frame of kind 0x{kind:02x} from the bridge")
