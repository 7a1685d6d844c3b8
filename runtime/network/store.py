"""Networks and their address leases, under <root>/networks/:

    <root>/networks/<name>.json   the network (docker's field names) and its endpoints:
                                  container id -> address, devices, owner process
    /run/berth/networks.lock      flock(2)ed around every change, whatever the root

Devices and addresses are host-wide, so every change happens under that lock, and a lease
whose owner (the process that started the container) is gone, killed before it could clean
up, is reclaimed, its devices deleted, by the next change to that network. The default
network `bridge` is made on first use with the subnet in $BERTH_BRIDGE_SUBNET (default
198.19.0.0/24); user networks without --subnet get the first free /24 of 198.19.0.0/16.
Both lie in 198.18.0.0/15, the range set aside for benchmarks, so they clash with no LAN.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from runtime.containers import NAME_CHARS
from runtime.network import links
from runtime.options import OptionError

DEFAULT_NETWORK = "bridge"
SUBNET_ENV = "BERTH_BRIDGE_SUBNET"
DEFAULT_SUBNET = "198.19.0.0/24"
POOL = IPv4Network("198.19.0.0/16")
RESERVED = ("none", "host")
HOST_LOCK = "/run/berth/networks.lock"  # beside runc's and crun's state (runtime.oci)


class NetworkError(OptionError):
    """A network operation the user can fix; the message says what (one line)."""


class NetworkNotFound(NetworkError):
    def __init__(self, name: str) -> None:
        super().__init__(f"network {name} not found")


def check_name(name: str) -> str:
    if not name or not name[0].isalnum() or not set(name) <= NAME_CHARS:
        raise NetworkError(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return name


@dataclass(slots=True)
class Endpoint:
    container_id: str
    name: str  # the container's name: what peers on a user network resolve
    hostname: str
    address: str
    mac: str
    veth: str
    netns: str
    hosts: str  # the container's /etc/hosts on the host, rewritten as peers come and go
    owner_pid: int
    owner_start: int  # the owner's start time (clock ticks since boot): pids are reused

    @property
    def endpoint_id(self) -> str:
        return self.container_id[::-1]  # stable, unique, and not the container's id


@dataclass(slots=True)
class Network:
    name: str
    id: str
    created: float
    subnet: str
    gateway: str
    bridge: str  # the device
    nat: bool = False
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.subnet)

    @property
    def user_defined(self) -> bool:
        """Peers resolve each other by name on user networks only, as with docker."""
        return self.name != DEFAULT_NETWORK

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Network:
        data = json.loads(text)
        data["endpoints"] = {k: Endpoint(**v) for k, v in data.get("endpoints", {}).items()}
        return cls(**data)


def process_start(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot, None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


def owner_alive(endpoint: Endpoint) -> bool:
    return process_start(endpoint.owner_pid) == endpoint.owner_start


def parse_subnet(text: str) -> IPv4Network:
    try:
        subnet = IPv4Network(text, strict=True)
    except ValueError as exc:
        raise NetworkError(f"invalid subnet {text!r}: {exc}") from None
    if not 8 <= subnet.prefixlen <= 30:
        raise NetworkError(f"invalid subnet {text!r}: the prefix must be /8 to /30")
    return subnet


def check_address(network: Network, address: str) -> str:
    """`--ip`: a host address of the network's subnet other than its gateway."""
    try:
        chosen = IPv4Address(address)
    except ValueError:
        raise NetworkError(f"invalid IPv4 address {address!r}") from None
    if chosen not in network.network or chosen in (
        network.network.network_address,
        network.network.broadcast_address,
        IPv4Address(network.gateway),
    ):
        raise NetworkError(f"{address} is not a free host address of {network.subnet}")
    return str(chosen)


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.dir = root / "networks"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Host-wide, not per root: two roots' networks must not pick one subnet."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
        with open(HOST_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def _save(self, network: Network) -> None:
        tmp = self.dir / f".{network.name}.json.tmp"
        tmp.write_text(network.to_json())
        os.replace(tmp, self._path(network.name))

    def list(self) -> builtins.list[Network]:
        if not self.dir.is_dir():
            return []
        found = []
        for path in sorted(self.dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                found.append(Network.from_json(path.read_text()))
        return found

    def get(self, ref: str) -> Network:
        """By name, full id or unique id prefix, as docker looks networks up."""
        if ref and "/" not in ref and not ref.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                return Network.from_json(self._path(ref).read_text())
        matches = [n for n in self.list() if ref and n.id.startswith(ref)]
        if len(matches) != 1:
            raise NetworkNotFound(ref)
        return matches[0]

    def _in_use(self) -> builtins.list[tuple[str, IPv4Network]]:
        used = [(n.bridge, n.network) for n in self.list()]
        return used + [r for r in links.host_routes() if r[0] not in {b for b, _ in used}]

    def _pick_subnet(self) -> IPv4Network:
        used = self._in_use()
        for candidate in POOL.subnets(new_prefix=24):
            if str(candidate) != DEFAULT_SUBNET and not any(candidate.overlaps(u) for _, u in used):
                return candidate
        raise NetworkError(f"no free /24 left in {POOL}: give one with --subnet")

    def create(self, name: str, subnet: str | None = None, *, nat: bool = False) -> Network:
        """A new network and its bridge device; raises NetworkError."""
        check_name(name)
        if name in RESERVED:
            raise NetworkError(f"{name} is a pre-defined network and cannot be created")
        with self.locked():
            if self._path(name).exists():
                raise NetworkError(f"network with name {name} already exists")
            chosen = parse_subnet(subnet) if subnet else self._pick_subnet()
            for device, used in self._in_use():
                if chosen.overlaps(used):
                    raise NetworkError(
                        f"subnet {chosen} overlaps with {used} (on {device}): choose another"
                    )
            nid = os.urandom(32).hex()
            network = Network(
                name=name,
                id=nid,
                created=time.time(),
                subnet=str(chosen),
                gateway=str(next(chosen.hosts())),
                bridge=f"br-{nid[:12]}",
                nat=nat,
            )
            self._ensure_devices(network)
            try:
                self._save(network)
            except BaseException:
                self._delete_devices(network)
                raise
        return network

    def default(self) -> Network:
        """The `bridge` network, made on first use."""
        try:
            return self.get(DEFAULT_NETWORK)
        except NetworkNotFound:
            pass
        subnet = os.environ.get(SUBNET_ENV) or DEFAULT_SUBNET
        try:
            return self.create(DEFAULT_NETWORK, subnet)
        except NetworkError as exc:
            if self._path(DEFAULT_NETWORK).exists():  # made meanwhile by another `berth run`
                return self.get(DEFAULT_NETWORK)
            raise NetworkError(f"the default network: {exc} (set ${SUBNET_ENV})") from None

    def remove(self, ref: str) -> Network:
        """Delete the network and its bridge; raises NetworkError while containers use it."""
        with self.locked():
            network = self.get(ref)
            self._reclaim(network)
            if network.endpoints:
                raise NetworkError(
                    f"error while removing network: network {network.name} id {network.id} "
                    "has active endpoints"
                )
            self._delete_devices(network)
            self._path(network.name).unlink()
        return network

    def _ensure_devices(self, network: Network) -> None:
        if not links.exists(network.bridge):
            links.create_bridge(network.bridge, IPv4Address(network.gateway), network.network)
        if network.nat:
            from runtime.network import nat

            nat.add(network)

    def _delete_devices(self, network: Network) -> None:
        if network.nat:
            from runtime.network import nat

            nat.remove(network)
        links.delete_link(network.bridge)

    def _reclaim(self, network: Network) -> None:
        """Drop the leases whose owner is gone, deleting their devices."""
        stale = [e for e in network.endpoints.values() if not owner_alive(e)]
        for endpoint in stale:
            links.remove_sandbox(endpoint.netns, endpoint.veth)
            del network.endpoints[endpoint.container_id]
        if stale:
            self._save(network)

    def reclaim(self, ref: str) -> Network:
        """The network, its stale leases dropped."""
        with self.locked():
            network = self.get(ref)
            self._reclaim(network)
            return network

    def join(
        self, ref: str, endpoint: Endpoint, address: str | None = None
    ) -> tuple[Network, Endpoint]:
        """Lease `address`, or else the lowest free one of the network, to `endpoint` (its
        address is filled in) and make sure the bridge exists (it does not after a reboot)."""
        with self.locked():
            network = self.get(ref)
            self._reclaim(network)
            if endpoint.container_id in network.endpoints:  # its owner lives on
                raise NetworkError(f"container {endpoint.container_id[:12]} is already running")
            taken = {network.gateway} | {e.address for e in network.endpoints.values()}
            if address is not None:
                if address in taken:
                    raise NetworkError(f"Address already in use: {address} on {network.name}")
                chosen: IPv4Address | None = IPv4Address(check_address(network, address))
            else:
                free = (a for a in network.network.hosts() if str(a) not in taken)
                chosen = next(free, None)
            if chosen is None:
                raise NetworkError(f"no available IPv4 addresses on network {network.name}")
            endpoint.address = str(chosen)
            endpoint.mac = "02:42:" + ":".join(f"{b:02x}" for b in chosen.packed)
            self._ensure_devices(network)
            network.endpoints[endpoint.container_id] = endpoint
            self._save(network)
            return network, endpoint

    def leave(self, ref: str, container_id: str) -> None:
        """Release the container's lease (if the network is still there)."""
        with self.locked():
            try:
                network = self.get(ref)
            except NetworkNotFound:
                return
            if network.endpoints.pop(container_id, None) is not None:
                self._save(network)
