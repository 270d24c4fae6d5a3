"""Allow-lists of peer addresses (SIP_ALLOW, AUDIOSOCKET_ALLOW, EXOTEL_ALLOW): one parser, one match.

A peer's address as the server sees it may carry an IPv6 zone (`fe80::1%eth0`) or, on a dual-stack
listener, be an IPv4 peer written as `::ffff:a.b.c.d`; both are normalised before matching, so an
IPv4 network in the list admits that peer whichever way the socket reports it.
"""

from __future__ import annotations

import ipaddress

__all__ = ["IpAddress", "IpNetwork", "parse_networks", "peer_address", "peer_in"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str | None, setting: str) -> tuple[IpNetwork, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128); ValueError naming `setting` and the
    bad entry: a malformed entry is a configuration error, never ignored."""
    networks = []
    for item in (part.strip() for part in (text or "").split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{setting}: {item!r} is not an address or CIDR") from None
    return tuple(networks)


def peer_address(host: str | None) -> IpAddress | None:
    """The peer's address, zone dropped and IPv4-mapped IPv6 unwrapped; None if `host` is not one."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_in(networks: tuple[IpNetwork, ...], host: str | None) -> bool:
    """Whether `host` is an address inside one of `networks` (never for a host that is not an address)."""
    address = peer_address(host)
    return address is not None and any(address in network for network in networks)
