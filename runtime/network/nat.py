"""Outbound NAT for a network made with `berth network create --nat`: one iptables rule,
as docker's, masquerading what leaves the subnet through any other device:

    iptables -t nat -A POSTROUTING -s SUBNET ! -o BRIDGE -m comment --comment berth:ID \
             -j MASQUERADE

Forwarding itself (net.ipv4.ip_forward) is the host's to turn on; Berth does not change it.
"""

from __future__ import annotations

import errno
import subprocess
from typing import TYPE_CHECKING

from runtime.network.links import LinkError

if TYPE_CHECKING:
    from runtime.network.store import Network


def rule(network: Network) -> list[str]:
    return [
        "POSTROUTING", "-s", network.subnet, "!", "-o", network.bridge,
        "-m", "comment", "--comment", f"berth:{network.id[:12]}", "-j", "MASQUERADE",
    ]  # fmt: skip


def _iptables(action: str, network: Network) -> subprocess.CompletedProcess[str]:
    argv = ["iptables", "-w", "-t", "nat", action, *rule(network)]
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LinkError(errno.ENOENT, "--nat needs iptables, which is not installed") from None


def add(network: Network) -> None:
    if _iptables("-C", network).returncode == 0:
        return
    proc = _iptables("-A", network)
    if proc.returncode != 0:
        raise LinkError(errno.EIO, " ".join(proc.stderr.split()) or "iptables failed")


def remove(network: Network) -> None:
    while _iptables("-C", network).returncode == 0:
        _iptables("-D", network)
