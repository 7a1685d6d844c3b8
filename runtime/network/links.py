"""The devices of a network: a bridge with the gateway address, and per container a veth
pair whose inner end is `eth0` in a named network namespace (/run/netns/berth-<id>).

Devices are made with iproute2's `ip -batch` (two execs per container: one on the host, one
in the namespace), the tool every distribution has and the one whose error messages users
know. They are deleted without forking, by one netlink request and umount(2): the process
that started a container with Berth's executor has set up a PID namespace whose init has
exited by then, and fork(2) fails there (ENOMEM).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import subprocess
from ipaddress import IPv4Address, IPv4Network

NETNS_DIR = "/run/netns"
CONTAINER_IFNAME = "eth0"

_RTM_DELLINK = 17
_NLMSG_ERROR = 2
_NLM_F_REQUEST, _NLM_F_ACK = 0x1, 0x4
_IFLA_IFNAME = 3


class LinkError(OSError):
    """A device could not be made; the message is iproute2's."""


def _ip(commands: list[str], netns: str = "") -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    proc = subprocess.run(
        argv, input="\n".join(commands) + "\n", capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        message = " ".join(proc.stderr.split()) or f"{argv} failed"
        raise LinkError(errno.EIO, message)


def exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def create_bridge(name: str, gateway: IPv4Address, subnet: IPv4Network) -> None:
    _ip([
        f"link add {name} type bridge",
        f"addr add {gateway}/{subnet.prefixlen} dev {name}",
        f"link set {name} up",
    ])  # fmt: skip


def netns_path(netns: str) -> str:
    return os.path.join(NETNS_DIR, netns)


def create_sandbox(
    netns: str,
    veth: str,
    bridge: str,
    address: IPv4Address,
    subnet: IPv4Network,
    gateway: IPv4Address,
    mac: str,
) -> None:
    """A namespace `netns` whose eth0 has `address`, its default route through `gateway`,
    and the veth's host end `veth` on `bridge`."""
    remove_sandbox(netns, veth)  # a leftover of an owner killed before it cleaned up
    try:
        _ip([
            f"netns add {netns}",
            f"link add {veth} type veth peer name {CONTAINER_IFNAME} address {mac} netns {netns}",
            f"link set {veth} master {bridge} up",
        ])  # fmt: skip
        _ip(
            [
                "link set lo up",
                f"addr add {address}/{subnet.prefixlen} dev {CONTAINER_IFNAME}",
                f"link set {CONTAINER_IFNAME} up",
                f"route add default via {gateway}",
            ],
            netns=netns,
        )
    except BaseException:
        remove_sandbox(netns, veth)
        raise


def remove_sandbox(netns: str, veth: str) -> None:
    """Delete the veth pair and the namespace's mount; no fork (see above)."""
    from runtime import _linux  # ctypes: not for `network ls`

    delete_link(veth)
    path = netns_path(netns)
    with contextlib.suppress(FileNotFoundError, OSError):
        _linux.umount2(path, _linux.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def delete_link(name: str) -> bool:
    """RTM_DELLINK by name over rtnetlink; False when there was no such device."""
    ifname = name.encode() + b"\0"
    attr = struct.pack("HH", 4 + len(ifname), _IFLA_IFNAME) + ifname
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0) + attr
    header = struct.pack("IHHII", 16 + len(body), _RTM_DELLINK, _NLM_F_REQUEST | _NLM_F_ACK, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(header + body)
        reply = s.recv(65536)
    _, kind = struct.unpack_from("IH", reply)
    if kind != _NLMSG_ERROR:
        return True
    error = -struct.unpack_from("i", reply, 16)[0]
    if error in (errno.ENODEV, errno.ENOENT):
        return False
    if error:
        raise OSError(error, f"delete link {name}: {os.strerror(error)}")
    return True


def host_routes() -> list[tuple[str, IPv4Network]]:
    """(device, destination) of the host's IPv4 routes, default route aside."""
    routes = []
    with open("/proc/net/route") as f:
        next(f)
        for line in f:
            fields = line.split()
            dest, mask = (IPv4Address(int(x, 16).to_bytes(4, "little")) for x in fields[1:8:6])
            if int(mask):
                routes.append((fields[0], IPv4Network(f"{dest}/{mask}", strict=False)))
    return routes
