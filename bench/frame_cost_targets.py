"""The per-call objects bench/frame_cost.py drives, on in-memory sockets: the carrier's WebSocket as
the session and the relay see it, the model's TCP connection under a real websockets client, the
workload (Twilio media messages, the bench engine's answers) and the two targets, bridge and relay."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from starlette.websockets import WebSocketState
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from bench import relay as relay_module
from bench.common import ULAW_FRAME_BYTES
from bench.engine import model_audio
from bench.relay import CarrierClosed, relay_call
from telephony_bridge.audio.g711 import ulaw_encode
from telephony_bridge.testing import twilio_messages as twilio

STREAM_SID = "MZ" + "0" * 31 + "1"
CALL_SID = "CA" + "0" * 31 + "1"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
DELTAS_PER_RESPONSE = 20
DELTA_MS = 100
WARMUP_FRAMES = 100
WARMUP_DELTAS = 40


# --- the two in-memory sockets -------------------------------------------------------------------
class MemoryCarrierSocket:
    """The carrier's WebSocket as the session (MediaTransport) and the relay see it: messages in from
    a deque, messages out counted. A sent mark is kept: it is, byte for byte, a valid echo of itself."""

    application_state = WebSocketState.CONNECTED
    client_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.query_params: dict[str, str] = {}
        self.inbox: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None
        self.sent = 0
        self.sent_chars = 0
        self.marks: list[str] = []

    async def receive(self) -> dict[str, Any]:
        while not self.inbox:
            if self._idle is not None and not self._idle.done():
                self._idle.set_result(None)
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.inbox.popleft()

    async def feed(self, texts: list[str]) -> None:
        """Hand the reader these messages and return once it has taken them all and waits again."""
        self.inbox.extend({"type": "websocket.receive", "text": text} for text in texts)
        self._idle = asyncio.get_running_loop().create_future()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        await self._idle

    async def hang_up(self) -> None:
        self.inbox.append({"type": "websocket.disconnect", "code": 1000})
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def send_text(self, data: str) -> None:
        self.sent += 1
        self.sent_chars += len(data)
        if "mark" in data[:18]:  # '{"event":"mark"' (orjson) or '{"event": "mark"' (json)
            self.marks.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent += 1

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


class NullTransport(asyncio.Transport):
    """The model socket's TCP connection: every write counted and dropped, never backed up."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def memory_model_socket(url: str) -> ClientConnection:
    """An open websockets client connection over a NullTransport (no handshake): the real framing."""
    protocol = ClientProtocol(parse_uri(url), state=State.OPEN, max_size=16 * 1024 * 1024)
    ws = ClientConnection(protocol, ping_interval=None, ping_timeout=None, close_timeout=1.0, write_limit=1 << 20)
    ws.connection_made(NullTransport())
    ws.response = Response(101, "Switching Protocols", Headers())  # as if the handshake had happened
    ws.response_rcvd.set_result(None)
    return ws


def server_frame(text: bytes) -> bytes:
    """One unmasked text frame as a server sends it."""
    return Frame(Opcode.TEXT, text).serialize(mask=False)


async def model_settled(ws: ClientConnection) -> None:
    """Let the model socket's reader take everything fed to it (it waits for the next frame again).
    Each loop turn is one task step; with in-memory sockets nothing else is waiting."""
    messages = ws.recv_messages
    for _ in range(1000):
        await asyncio.sleep(0)
        if messages.get_in_progress and not len(messages.frames):
            return
    raise RuntimeError("the model reader did not settle")


# --- the workload --------------------------------------------------------------------------------
def caller_messages(count: int, first: int = 0) -> list[str]:
    """`count` Twilio media messages (distinct sequence numbers and timestamps, one 20 ms payload)."""
    payload = base64.b64encode(ulaw_encode(model_audio(20, 8000))[:ULAW_FRAME_BYTES]).decode()
    return [
        twilio.media(seq=k + 2, stream_sid=STREAM_SID, chunk=k + 1, timestamp_ms=k * 20, payload=payload)
        for k in range(first, first + count)
    ]


def model_frames(codec: str, responses: int, first: int = 0) -> list[list[bytes]]:
    """Per answer, its server frames in order, as bench/engine.py sends them (each answer a list)."""
    audio = model_audio(DELTA_MS) if codec == "pcm16" else ulaw_encode(model_audio(DELTA_MS, 8000))
    delta_b64 = base64.b64encode(audio)
    out = []
    for r in range(first, first + responses):
        rid, iid = f"resp_{r}", f"item_{r}"
        created = {
            "type": "response.created",
            "event_id": f"e{r}a",
            "response": {"id": rid, "object": "realtime.response", "status": "in_progress"},
        }
        added = {
            "type": "response.output_item.added",
            "event_id": f"e{r}b",
            "response_id": rid,
            "output_index": 0,
            "item": {"id": iid, "type": "message", "role": "assistant"},
        }
        delta = (
            b'{"type":"response.output_audio.delta","response_id":"'
            + rid.encode()
            + b'","item_id":"'
            + iid.encode()
            + b'","output_index":0,"content_index":0,"delta":"'
            + delta_b64
            + b'"}'
        )
        done_audio = {
            "type": "response.output_audio.done",
            "event_id": f"e{r}c",
            "response_id": rid,
            "item_id": iid,
            "output_index": 0,
            "content_index": 0,
        }
        done = {
            "type": "response.done",
            "event_id": f"e{r}d",
            "response": {"id": rid, "object": "realtime.response", "status": "completed", "output": []},
        }
        texts = [
            json.dumps(created).encode(),
            json.dumps(added).encode(),
            *[delta] * DELTAS_PER_RESPONSE,
            json.dumps(done_audio).encode(),
            json.dumps(done).encode(),
        ]
        out.append([server_frame(text) for text in texts])
    return out


# --- the targets ---------------------------------------------------------------------------------
class Target:
    """One call through the bridge or the relay: `up(texts)` caller messages, `down(frames)` model frames."""

    name = ""
    model_codec = "pcm16"

    def __init__(self) -> None:
        self.carrier = MemoryCarrierSocket()
        self.model: ClientConnection | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def up(self, texts: list[str]) -> None:
        await self.carrier.feed(texts)

    async def down(self, frames: list[bytes]) -> None:
        """Each model frame in turn; after each, the marks the carrier got are echoed back."""
        assert self.model is not None
        carrier, model = self.carrier, self.model
        for frame in frames:
            model.data_received(frame)
            await model_settled(model)
            if carrier.marks:
                echoes, carrier.marks = carrier.marks, []
                await carrier.feed(echoes)

    async def stop(self) -> None:
        await self.carrier.hang_up()


class Relay(Target):
    name = "relay"
    model_codec = "g711_ulaw"

    async def start(self) -> None:
        carrier = self.carrier

        async def connect_engine(url: str, **_: Any) -> ClientConnection:
            self.model = memory_model_socket(url)
            return self.model

        # As bench/relay.py's create_app wraps the Starlette WebSocket.
        async def receive_text() -> str:
            while True:
                message = await carrier.receive()
                if message["type"] == "websocket.disconnect":
                    raise CarrierClosed
                text = message.get("text")
                if text is not None:
                    return text

        async def send_text(text: str) -> None:
            await carrier.send_text(text)

        self.task = asyncio.create_task(
            relay_call(receive_text, send_text, "ws://engine.invalid/v1/realtime", connect_engine)
        )
        await carrier.feed([twilio.connected(), start_message()])


class RelayOrjson(Relay):
    """bench/relay.py with `--json orjson`: how much of the floor is the standard library's JSON."""

    name = "relay-orjson"

    async def start(self) -> None:
        relay_module.use_json("orjson")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        relay_module.use_json("std")


class Bridge(Target):
    name = "bridge"

    def __init__(self, codec: str = "pcm16") -> None:
        super().__init__()
        self.model_codec = codec
        self.directory = tempfile.TemporaryDirectory(prefix="frame-cost-")

    async def start(self) -> None:
        from telephony_bridge.carriers.twilio_carrier import TwilioCarrier
        from telephony_bridge.server.journal import CallJournal
        from telephony_bridge.server.metrics import BridgeMetrics
        from telephony_bridge.server.session import CallSession
        from telephony_bridge.tasks import TaskOwner
        from telephony_bridge.voxengine.call import Call
        from telephony_bridge.voxengine.realtime_client import RealtimeAPIClient

        runtime = SimpleNamespace(metrics=BridgeMetrics())
        session = CallSession(self.carrier, runtime, 1, TwilioCarrier({}))  # type: ignore[arg-type]
        self.session = session
        session.tasks = tasks = TaskOwner("stream 1")
        reader = asyncio.create_task(session._read_carrier())
        await self.carrier.feed([twilio.connected()])
        # The start, as CallSession._start takes it, without the scenario machinery: the same
        # objects, wired as bench/scenarios/default.py wires them (answer, client, sendMediaBetween).
        started = session.codec.parse(start_message())
        link, _ = session._bind(CALL_SID, started)  # type: ignore[arg-type]
        session.journal = CallJournal(session.label, Path(self.directory.name))
        session.journal.open(CALL_SID)
        call = Call(
            call_sid=CALL_SID,
            caller_id="+15550001111",
            number="+15550002222",
            custom_data={},
            link=link,
            tasks=tasks,
            clock_ms=session.now_ms,
            on_hangup=session.hangup_requested,
        )
        session.call = call
        client = RealtimeAPIClient(
            url="ws://engine.invalid/v1/realtime",
            api_key="bench",
            model="gpt-realtime",
            dialect="ga",
            codec=self.model_codec,
            tasks=tasks,
            ping_interval_s=None,
            answer_stall_timeout_s=0,
        )
        client.observer = session._observe_model

        async def open_model(timeout_s: float) -> ClientConnection:
            self.model = memory_model_socket(client.url)
            return self.model

        client._connection._open = open_model  # type: ignore[method-assign]
        await client.connect()
        call.answer()
        call.sendMediaTo(client)
        client.sendMediaTo(call)
        await asyncio.sleep(0)  # Connected fires on the next loop turn
        self.client, self.call, self.reader = client, call, reader

    async def stop(self) -> None:
        await super().stop()
        await self.reader
        await self.client.aclose()
        self.directory.cleanup()


def start_message() -> str:
    return twilio.start(seq=1, stream_sid=STREAM_SID, account_sid=ACCOUNT_SID, call_sid=CALL_SID, custom_parameters={})
