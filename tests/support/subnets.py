"""Free subnets of 198.18.0.0/15 (the benchmarking range) for test and bench networks:
Berth's from 198.19.128.0/17, docker's from 198.18.128.0/17, none that a route on this
machine already covers."""

from __future__ import annotations

import ipaddress
import random

BERTH_POOL = "198.19.128.0/17"
DOCKER_POOL = "198.18.128.0/17"


def used_subnets() -> list[ipaddress.IPv4Network]:
    used = []
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            dest, mask = (int(x, 16).to_bytes(4, "little") for x in (fields[1], fields[7]))
            if int.from_bytes(mask, "little"):
                addr = f"{ipaddress.IPv4Address(dest)}/{ipaddress.IPv4Address(mask)}"
                used.append(ipaddress.IPv4Network(addr, strict=False))
    return used


def free_subnet(pool: str) -> str:
    """A /24 of `pool` that no route covers (picked at random: test runs may overlap)."""
    used = used_subnets()
    candidates = list(ipaddress.IPv4Network(pool).subnets(new_prefix=24))
    random.shuffle(candidates)
    for subnet in candidates:
        if not any(subnet.overlaps(u) for u in used):
            return str(subnet)
    raise AssertionError(f"no free /24 in {pool}")
