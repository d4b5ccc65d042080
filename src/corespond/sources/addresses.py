"""Which network addresses a CAD callback may reach, and the one lookup a delivery trusts.

A callback's host name is checked when it is set, but a DNS answer can change after that
(an edited record, or DNS rebinding: a name that answers with a public address when checked
and an internal one when used). So the relay looks the name up once per delivery, refuses if
any answer is internal, and connects to an address of that same answer, never asking again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Given a host and a TCP port, every address it resolves to, in the order to try them.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the low 32 bits
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
# Not global, yet ``is_global`` is True for them in Python 3.11 (as it is for multicast).
ALSO_INTERNAL = (
    ipaddress.IPv6Network("fec0::/10"),  # site-local: deprecated, still routed inside some sites
    ipaddress.IPv6Network("3fff::/20"),  # documentation (RFC 9637)
)


class DestinationRefused(Exception):
    """The callback's host did not resolve, or resolved to an address a relay must not reach."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_internal(address: IPAddress) -> bool:
    """True for an address a production relay must not connect to: loopback, private
    (RFC 1918, unique-local fc00::/7), link-local (169.254.169.254 among them), carrier-grade
    NAT, multicast, unspecified, reserved, documentation, and any IPv6 form that embeds such
    an IPv4 address (IPv4-mapped, 6to4, NAT64). Whatever is not globally reachable counts;
    the other tests cover what ``is_global`` lets through."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_internal(embedded)
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in SHARED_ADDRESS_SPACE
        or any(address in network for network in ALSO_INTERNAL)
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to ``address`` ends up at, for the forms that carry one."""
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and address in NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order (the
    order to try them in), without blocking the event loop. ``OSError`` if it does not."""
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_addresses(
    host: str, port: int, *, allow_internal: bool, resolver: Resolver = resolve
) -> list[IPAddress]:
    """Look ``host`` up once and return its addresses, every one of them checked; the caller
    must connect to one of these and never resolve the name again.

    ``DestinationRefused`` when the name does not resolve, or when any answer is internal and
    ``allow_internal`` is false: one internal answer among public ones is how a rebinding name
    gets a chance at an internal service, so it refuses the whole answer.
    """
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise DestinationRefused(f"callback host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise DestinationRefused(f"callback host {host!r} resolves to no address")
    if not allow_internal:
        for address in addresses:
            if is_internal(address):
                raise DestinationRefused(
                    f"callback host {host!r} resolves to an internal address {address}"
                )
    return addresses
