"""What a container on a network finds in /etc: its peers in /etc/hosts (user networks only),
and no loopback resolver in /etc/resolv.conf."""

from __future__ import annotations

from pathlib import Path

from runtime.network.endpoint import drop_loopback_nameservers, hosts_text
from runtime.network.store import Endpoint, Network


def _endpoint(cid: str, name: str, address: str) -> Endpoint:
    return Endpoint(cid, name, cid[:12], address, "", "", "", "", 1, 1)


def _network(name: str) -> Network:
    web = _endpoint("a" * 64, "web", "198.19.9.2")
    db = _endpoint("b" * 64, "db", "198.19.9.10")
    client = _endpoint("c" * 64, "", "198.19.9.3")
    endpoints = {e.container_id: e for e in (web, db, client)}
    return Network(name, "f" * 64, 0.0, "198.19.9.0/24", "198.19.9.1", "br-x", False, endpoints)


def test_hosts_lists_peers_by_name_on_user_networks_only() -> None:
    user = _network("app")
    text = hosts_text(user, user.endpoints["c" * 64])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert text.splitlines()[-3:] == [
        f"198.19.9.3\t{'c' * 12}",
        f"198.19.9.2\tweb {'a' * 12}",
        f"198.19.9.10\tdb {'b' * 12}",  # in address order, not text order
    ]
    default = _network("bridge")
    assert hosts_text(default, default.endpoints["a" * 64]).splitlines()[-1] == (
        f"198.19.9.2\t{'a' * 12} web"
    )


def test_loopback_nameservers_are_dropped(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "search example\nnameserver 127.0.0.53\nnameserver 198.18.0.53\n"
        "nameserver ::1\nnameserver fe80::1%eth0\noptions edns0\n"
    )
    drop_loopback_nameservers(resolv)
    assert resolv.read_text() == (
        "search example\nnameserver 198.18.0.53\nnameserver fe80::1%eth0\noptions edns0\n"
    )
