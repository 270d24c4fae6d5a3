"""A SIP-less far end for RTP tests: plain UDP sockets on 127.0.0.1 that send and collect RTP/RTCP."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from telephony_bridge.carriers.sip.rtp import RtpPacket, parse_rtp

TIMEOUT_S = 10.0  # every wait has one; generous for a loaded machine, never a timing assert


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


@dataclass
class UdpPeer:
    transport: asyncio.DatagramTransport
    collector: _Collector
    port: int
    host: str = "127.0.0.1"
    received: list[tuple[bytes, tuple[str, int]]] = field(default_factory=list)

    @classmethod
    async def open(cls, port: int = 0, host: str = "127.0.0.1") -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, collector = await loop.create_datagram_endpoint(
            _Collector, local_addr=(host, port), family=socket.AF_INET
        )
        return cls(transport, collector, transport.get_extra_info("sockname")[1], host)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.transport.sendto(data, to)

    async def next(self, timeout_s: float = TIMEOUT_S) -> bytes:
        data, addr = await asyncio.wait_for(self.collector.queue.get(), timeout_s)
        self.received.append((data, addr))
        return data

    async def packets(self, count: int, timeout_s: float = TIMEOUT_S) -> list[RtpPacket]:
        return [parse_rtp(await self.next(timeout_s)) for _ in range(count)]

    async def until_packet(self, predicate, timeout_s: float = TIMEOUT_S) -> tuple[RtpPacket, list[RtpPacket]]:  # type: ignore[no-untyped-def]
        """Read packets until one matches; it and the ones before it."""
        before: list[RtpPacket] = []
        async with asyncio.timeout(timeout_s):
            while True:
                packet = parse_rtp(await self.next(timeout_s))
                if predicate(packet):
                    return packet, before
                before.append(packet)

    def pending(self) -> int:
        return self.collector.queue.qsize()

    def close(self) -> None:
        self.transport.close()


async def peer_pair() -> tuple[UdpPeer, UdpPeer]:
    """An RTP socket on an even port and its RTCP socket on the next (as a phone has them)."""
    for _ in range(50):
        rtp = await UdpPeer.open(0)
        if rtp.port % 2 == 0 and rtp.port < 65535:
            try:
                return rtp, await UdpPeer.open(rtp.port + 1)
            except OSError:
                pass
        rtp.close()
    raise RuntimeError("no free even/odd UDP port pair on 127.0.0.1")
