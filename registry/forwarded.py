"""The client's address behind load balancers: `X-Forwarded-For`, believed only from
configured trusted proxies (http.trustedproxies).

Each proxy appends the address it received the request from, so the list reads
`client, proxy1, proxy2` and the TCP peer is the last proxy. Walking from the right, every
hop that is a trusted proxy vouches for the one before it; the first untrusted address is
the client. Anything further left was written by the client itself and proves nothing.
Without trusted proxies the header is ignored: anyone could send it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from aiohttp import web

__all__ = ["client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The address a request came from, looking through trusted proxies."""
    peer = request.remote or "unknown"
    networks = parse_networks(trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    client = peer
    for hop in reversed(hops):
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:  # not an address: no proxy wrote it; stop at the last that did
            break
        if not _trusted(client, networks):
            break
    return client
