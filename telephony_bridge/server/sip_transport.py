"""The SIP listener's I/O: UDP and TCP sockets, and the transactions' timers on the event loop.

Thin by design: bytes from a socket go to the sans-I/O parser (carriers/sip/message.py); the
transactions (carriers/sip/transaction.py) say what to send and which timers to start, and this
module does it — `call_later` per timer, fed back into the transaction when it fires. Nothing
here decides anything about a call.

- UDP: one datagram is one message; responses go where the top Via says (RFC 3581 `rport`:
  the source address), requests we originate go to the peer's address.
- TCP: messages framed by Content-Length (`StreamFramer`); responses and our in-dialog requests
  go back on the connection the peer opened. A stream that cannot be framed is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from telephony_bridge.carriers.sip.fields import parse_via
from telephony_bridge.carriers.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    parse_message,
)
from telephony_bridge.carriers.sip.transaction import (
    Action,
    Deliver,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Send,
    StartTimer,
    Terminated,
    TimedOut,
    Timer,
    TransactionKey,
)

__all__ = ["ClientEntry", "Peer", "ServerEntry", "SipSockets", "Transactions"]

log = logging.getLogger("telephony_bridge.sip")

READ_BYTES: Final = 16 * 1024
MAX_TCP_CONNECTIONS: Final = 1000


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from, and how to answer: the socket it arrived on."""

    transport: str  # "UDP" or "TCP"
    address: tuple[str, int]
    endpoint: Any  # _UdpEndpoint or _TcpConnection

    @property
    def reliable(self) -> bool:
        return self.transport == "TCP"

    def send(self, message: SipRequest | SipResponse, address: tuple[str, int] | None = None) -> None:
        self.endpoint.send(bytes(message), address or self.address)


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, sockets: SipSockets) -> None:
        self._sockets = sockets
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # a NAT keep-alive
        peer = Peer("UDP", (addr[0], addr[1]), self)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._sockets.on_bad(exc, peer, data)
            return
        self._sockets.deliver(message, peer)

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, address)


class _TcpConnection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class SipSockets:
    """Every SIP socket of the bridge. `deliver(message, peer)` and `on_bad(error, peer, data)`
    are the listener's; `start_udp`/`start_tcp` return the bound port (for port 0)."""

    def __init__(
        self,
        deliver: Callable[[SipRequest | SipResponse, Peer], None],
        on_bad: Callable[[SipParseError, Peer, bytes], None],
    ) -> None:
        self.deliver = deliver
        self.on_bad = on_bad
        self._udp: list[asyncio.DatagramTransport] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def start_udp(self, host: str, port: int) -> tuple[int, _UdpEndpoint]:
        loop = asyncio.get_running_loop()
        transport, endpoint = await loop.create_datagram_endpoint(lambda: _UdpEndpoint(self), local_addr=(host, port))
        self._udp.append(transport)
        return transport.get_extra_info("sockname")[1], endpoint

    async def start_tcp(self, host: str, port: int) -> int:
        server = await asyncio.start_server(self._serve_tcp, host, port, limit=READ_BYTES * 4)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peername = writer.get_extra_info("peername")
        connection = _TcpConnection(writer)
        peer = Peer("TCP", (peername[0], peername[1]), connection)
        framer = StreamFramer()
        try:
            while data := await reader.read(READ_BYTES):
                try:
                    messages = framer.feed(data)
                except SipParseError as exc:
                    self.on_bad(exc, peer, data)
                    break  # the stream can no longer be framed
                for message in messages:
                    self.deliver(message, peer)
        except OSError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop(self) -> None:
        for transport in self._udp:
            transport.close()
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        self._udp.clear()
        self._servers.clear()


@dataclass(slots=True, eq=False)
class ServerEntry:
    transaction: InviteServerTransaction | NonInviteServerTransaction
    peer: Peer
    destination: tuple[str, int]
    key: TransactionKey
    on_timeout: Callable[[], None] | None = None
    timers: dict[Timer, asyncio.TimerHandle] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class ClientEntry:
    transaction: InviteClientTransaction | NonInviteClientTransaction
    peer: Peer
    destination: tuple[str, int]
    on_response: Callable[[SipResponse], None]
    on_timeout: Callable[[], None]
    key: tuple[str, str]
    timers: dict[Timer, asyncio.TimerHandle] = field(default_factory=dict)


class Transactions:
    """The live transactions, by key, and the actions they ask for carried out."""

    def __init__(self) -> None:
        self.server: dict[TransactionKey, ServerEntry] = {}
        self.client: dict[tuple[str, str], ClientEntry] = {}
        self._loop = asyncio.get_running_loop()

    def __len__(self) -> int:
        return len(self.server) + len(self.client)

    def add_server(self, key: TransactionKey, request: SipRequest, peer: Peer) -> ServerEntry:
        transaction: InviteServerTransaction | NonInviteServerTransaction
        if request.method == "INVITE":
            transaction = InviteServerTransaction(request, peer.reliable)
        else:
            transaction = NonInviteServerTransaction(request, peer.reliable)
        try:
            destination = parse_via(request.headers.values("Via")[0]).response_address(peer.address)
        except (SipParseError, IndexError):
            destination = peer.address
        if peer.reliable:
            destination = peer.address
        entry = ServerEntry(transaction, peer, destination, key)
        self.server[key] = entry
        return entry

    def respond(self, entry: ServerEntry, response: SipResponse) -> None:
        self._run(entry, entry.transaction.respond(response))

    def start_client(
        self,
        request: SipRequest,
        peer: Peer,
        destination: tuple[str, int],
        on_response: Callable[[SipResponse], None],
        on_timeout: Callable[[], None],
    ) -> ClientEntry:
        transaction: InviteClientTransaction | NonInviteClientTransaction
        if request.method == "INVITE":
            transaction = InviteClientTransaction(request, peer.reliable)
        else:
            transaction = NonInviteClientTransaction(request, peer.reliable)
        via = parse_via(request.headers.values("Via")[0])
        key = (via.branch, request.method)
        entry = ClientEntry(transaction, peer, destination, on_response, on_timeout, key)
        self.client[key] = entry
        self._run(entry, transaction.start())
        return entry

    def run(self, entry: ServerEntry | ClientEntry, actions: list[Action]) -> None:
        self._run(entry, actions)

    def _run(self, entry: ServerEntry | ClientEntry, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                entry.peer.send(action.message, entry.destination)
            elif isinstance(action, StartTimer):
                old = entry.timers.pop(action.timer, None)
                if old is not None:
                    old.cancel()
                entry.timers[action.timer] = self._loop.call_later(action.delay_s, self._fire, entry, action.timer)
            elif isinstance(action, Deliver):
                if isinstance(entry, ClientEntry):
                    entry.on_response(action.response)
            elif isinstance(action, TimedOut):
                if entry.on_timeout is not None:
                    entry.on_timeout()
            elif isinstance(action, Terminated):
                self._forget(entry)

    def _fire(self, entry: ServerEntry | ClientEntry, timer: Timer) -> None:
        entry.timers.pop(timer, None)
        try:
            self._run(entry, entry.transaction.on_timer(timer))
        except Exception:  # a bug must not kill the loop's callback machinery
            log.exception("SIP transaction timer %s failed", timer.name)
            self._forget(entry)

    def _forget(self, entry: ServerEntry | ClientEntry) -> None:
        for handle in entry.timers.values():
            handle.cancel()
        entry.timers.clear()
        if isinstance(entry, ServerEntry):
            if self.server.get(entry.key) is entry:
                del self.server[entry.key]
        elif self.client.get(entry.key) is entry:
            del self.client[entry.key]

    def close(self) -> None:
        entries: list[ServerEntry | ClientEntry] = [*self.server.values(), *self.client.values()]
        for entry in entries:
            for handle in entry.timers.values():
                handle.cancel()
        self.server.clear()
        self.client.clear()
