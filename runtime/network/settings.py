"""What `ps` (PORTS) and `inspect` (NetworkSettings, HostConfig.NetworkMode/PortBindings)
show of a container's network, in docker's shapes; file reads only, for `ps`'s sake."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from runtime.containers import Container

if TYPE_CHECKING:
    from runtime.network.ports import PortMapping

NETWORK_FILE = "network.json"
ENDPOINT_FILE = "endpoint.json"


def _read(container: Container, name: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((container.path / name).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data


def network_mode(container: Container) -> str:
    record = _read(container, NETWORK_FILE)
    if record:
        return str(record["Network"])
    namespaces = (container.spec().get("linux") or {}).get("namespaces") or []
    return "none" if any(ns.get("type") == "network" for ns in namespaces) else "host"


def published(container: Container) -> list[PortMapping]:
    """The ports a running container's proxy listens on (host addresses and ports filled in)."""
    from runtime.network.ports import PortMapping

    return [PortMapping.from_json(p) for p in _read(container, ENDPOINT_FILE).get("Ports") or []]


def ports_column(container: Container) -> str:
    """`docker ps`'s PORTS of a running container: `127.0.0.1:8080->80/tcp, ...`."""
    return ", ".join(str(m) for m in published(container))


def _bindings(ports: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for p in ports:
        out.setdefault(f"{p['ContainerPort']}/{p['Protocol']}", []).append(
            {"HostIp": p["HostIp"], "HostPort": str(p["HostPort"])}
        )
    return out


def host_config(container: Container) -> dict[str, Any]:
    record = _read(container, NETWORK_FILE)
    return {
        "NetworkMode": network_mode(container),
        "PortBindings": _bindings(record.get("Ports") or []),
    }


def network_settings(container: Container, running: bool) -> dict[str, Any]:
    """docker's NetworkSettings: the address fields at the top level for the default
    `bridge` only (as docker fills them), every network's under Networks."""
    mode = network_mode(container)
    live = _read(container, ENDPOINT_FILE) if running else {}
    record = _read(container, NETWORK_FILE)
    endpoint = {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "NetworkID": live.get("NetworkID", record.get("NetworkID", "")),
        "EndpointID": live.get("EndpointID", ""),
        "Gateway": live.get("Gateway", ""),
        "IPAddress": live.get("IPAddress", ""),
        "IPPrefixLen": live.get("IPPrefixLen", 0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": live.get("MacAddress", ""),
        "DriverOpts": None,
    }
    top = mode == "bridge"
    ports: dict[str, Any] = {}
    if live:
        ports = _bindings(live.get("Ports") or [])
    return {
        "Bridge": "",
        "SandboxID": live.get("EndpointID", "")[::-1] if live else "",
        "SandboxKey": live.get("SandboxKey", ""),
        "Ports": ports,
        "EndpointID": endpoint["EndpointID"] if top else "",
        "Gateway": endpoint["Gateway"] if top else "",
        "IPAddress": endpoint["IPAddress"] if top else "",
        "IPPrefixLen": endpoint["IPPrefixLen"] if top else 0,
        "MacAddress": endpoint["MacAddress"] if top else "",
        "Networks": {mode: endpoint},
    }
