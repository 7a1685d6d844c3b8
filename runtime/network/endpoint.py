"""A container on a bridge network: `prepare` at create time records which network and
ports (<id>/network.json) and points config.json at the namespace's path; `attach`, each
time the container starts, leases an address, makes the veth pair and the namespace,
rewrites /etc/hosts of the network's containers and starts the port proxy; the returned
`Attachment.close()` undoes all of it when the container exits. What is running is in
<id>/endpoint.json (for `ps` and `inspect`) while it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from runtime.containers import Container
from runtime.etcfiles import LOOPBACK_HOSTS
from runtime.network import links, proxy
from runtime.network.ports import PortMapping
from runtime.network.settings import ENDPOINT_FILE, NETWORK_FILE
from runtime.network.store import (
    DEFAULT_NETWORK,
    Endpoint,
    Network,
    NetworkError,
    NetworkStore,
    check_address,
    process_start,
)


def _root(container: Container) -> Path:
    return container.path.parent.parent  # <root>/containers/<id>


def netns_name(container_id: str) -> str:
    return f"berth-{container_id}"


def prepare(
    container: Container,
    network: str,
    ports: Sequence[PortMapping],
    spec: dict[str, Any],
    *,
    address: str | None = None,
) -> None:
    """Record the container's network (made first if it is the default `bridge`), ports and
    fixed address (--ip), and set config.json's network namespace to the path `attach` will
    create."""
    store = NetworkStore(_root(container))
    found = store.default() if network == DEFAULT_NETWORK else store.get(network)
    record = {
        "Network": found.name,
        "NetworkID": found.id,
        "Ports": [p.to_json() for p in ports],
        "IPAddress": check_address(found, address) if address else "",
    }
    (container.path / NETWORK_FILE).write_text(json.dumps(record))
    drop_loopback_nameservers(container.path / "etc" / "resolv.conf")
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = links.netns_path(netns_name(container.id))


def drop_loopback_nameservers(resolv_conf: Path) -> None:
    """The host's resolver on 127.0.0.53 (say) is not reachable from a network namespace;
    docker drops such lines too (adding no public resolvers here: nothing leaves the host)."""
    try:
        lines = resolv_conf.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = [
        line
        for line in lines
        if not (line.split()[:1] == ["nameserver"] and _is_loopback(line.split()[1:2]))
    ]
    if kept != lines:
        resolv_conf.write_text("".join(kept))


def _is_loopback(address: list[str]) -> bool:
    from ipaddress import ip_address

    try:
        return bool(address) and ip_address(address[0].split("%")[0]).is_loopback
    except ValueError:
        return False


def hosts_text(network: Network, endpoint: Endpoint) -> str:
    """/etc/hosts: loopback, the container itself and, on a user network, its peers by
    name (docker answers those from its embedded DNS; a managed file needs no server)."""
    own = " ".join(dict.fromkeys(n for n in (endpoint.hostname, endpoint.name) if n))
    lines = [LOOPBACK_HOSTS, f"{endpoint.address}\t{own}\n"]
    if network.user_defined:
        for peer in sorted(network.endpoints.values(), key=lambda e: IPv4Address(e.address)):
            if peer.container_id != endpoint.container_id:
                names = (peer.name, peer.hostname, peer.container_id[:12])
                lines.append(f"{peer.address}\t{' '.join(dict.fromkeys(n for n in names if n))}\n")
    return "".join(lines)


def _rewrite_hosts(store: NetworkStore, name: str) -> None:
    """Every container's /etc/hosts on the network, from its leases as they are now: under
    the lock, so that of two containers starting at once the later writer knows both. In
    place: the file is bind-mounted into the container by its inode."""
    with store.locked():
        try:
            network = store.get(name)
        except NetworkError:
            return
        for endpoint in network.endpoints.values():
            with contextlib.suppress(OSError), open(endpoint.hosts, "r+") as f:
                f.write(hosts_text(network, endpoint))
                f.truncate()


@dataclass
class Attachment:
    container: Container
    network: Network
    endpoint: Endpoint
    proxy_pid: int = 0

    def close(self) -> None:
        """Stop the proxy, delete the devices, release the address; forks nothing."""
        if self.proxy_pid:
            proxy.stop(self.proxy_pid)
            self.proxy_pid = 0
        # should this fail, the lease stays: reclaimed, deletion retried, once we are gone
        links.remove_sandbox(self.endpoint.netns, self.endpoint.veth)
        store = NetworkStore(_root(self.container))
        store.leave(self.network.name, self.endpoint.container_id)
        _rewrite_hosts(store, self.network.name)
        with contextlib.suppress(FileNotFoundError):
            (self.container.path / ENDPOINT_FILE).unlink()


def attach(container: Container) -> Attachment | None:
    """Join the container's network; None when it is on none or host. Raises NetworkError
    or OSError (a port in use: proxy.PortInUse)."""
    try:
        record = json.loads((container.path / NETWORK_FILE).read_text())
    except FileNotFoundError:
        return None
    pid = os.getpid()
    wanted = Endpoint(
        container_id=container.id,
        name=container.state().name,
        hostname=str(container.spec().get("hostname") or container.id[:12]),
        address="",
        mac="",
        veth=f"veth{container.id[:11]}",
        netns=netns_name(container.id),
        hosts=str(container.path / "etc" / "hosts"),
        owner_pid=pid,
        owner_start=process_start(pid) or 0,
    )
    store = NetworkStore(_root(container))
    network, endpoint = store.join(record["Network"], wanted, record.get("IPAddress") or None)
    attachment = Attachment(container, network, endpoint)
    try:
        ports = [PortMapping.from_json(p) for p in record.get("Ports") or []]
        bound = proxy.bind(ports)
        try:
            links.create_sandbox(
                endpoint.netns,
                endpoint.veth,
                network.bridge,
                IPv4Address(endpoint.address),
                network.network,
                IPv4Address(network.gateway),
                endpoint.mac,
            )
        except BaseException:
            for _, sock in bound:
                sock.close()
            raise
        if bound:
            attachment.proxy_pid = proxy.spawn(bound, endpoint.address)
        _rewrite_hosts(store, network.name)
        running = {
            "Network": network.name,
            "NetworkID": network.id,
            "EndpointID": endpoint.endpoint_id,
            "IPAddress": endpoint.address,
            "IPPrefixLen": network.network.prefixlen,
            "Gateway": network.gateway,
            "MacAddress": endpoint.mac,
            "SandboxKey": links.netns_path(endpoint.netns),
            "Ports": [m.to_json() for m, _ in bound],
        }
        tmp = container.path / f".{ENDPOINT_FILE}.tmp"
        tmp.write_text(json.dumps(running))
        os.replace(tmp, container.path / ENDPOINT_FILE)
    except BaseException:
        attachment.close()
        raise
    return attachment


def release(container: Container) -> None:
    """At `rm`: drop a lease (and devices) left by an owner killed before it cleaned up."""
    try:
        record = json.loads((container.path / NETWORK_FILE).read_text())
    except FileNotFoundError:
        return
    store = NetworkStore(_root(container))
    with contextlib.suppress(NetworkError):
        store.reclaim(record["Network"])
        _rewrite_hosts(store, record["Network"])


__all__ = ["Attachment", "NetworkError", "attach", "prepare", "release"]
