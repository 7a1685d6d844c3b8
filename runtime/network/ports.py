"""Published ports: docker's `-p [IP:][HOSTPORT:]CTRPORT[/tcp|udp]`, parsed and shown as
`docker ps` shows them (`127.0.0.1:8080->80/tcp`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True, slots=True)
class PortMapping:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""  # "": every IPv4 address (0.0.0.0), as docker binds by default
    host_port: int = 0  # 0: a free port the kernel picks

    @property
    def bind_ip(self) -> str:
        return self.host_ip or "0.0.0.0"

    @property
    def key(self) -> str:
        """docker's port key: `80/tcp`."""
        return f"{self.container_port}/{self.protocol}"

    @property
    def host_address(self) -> str:
        """`127.0.0.1:8080`, `[::]:8080`: as docker 20.10 shows them."""
        host = f"[{self.bind_ip}]" if ":" in self.bind_ip else self.bind_ip
        return f"{host}:{self.host_port}"

    def __str__(self) -> str:
        return f"{self.host_address}->{self.key}"

    def to_json(self) -> dict[str, Any]:
        return {
            "HostIp": self.host_ip,
            "HostPort": str(self.host_port) if self.host_port else "",
            "ContainerPort": self.container_port,
            "Protocol": self.protocol,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortMapping:
        return cls(
            int(data["ContainerPort"]),
            str(data["Protocol"]),
            str(data["HostIp"]),
            int(data["HostPort"] or 0),
        )


def _port(text: str, what: str, spec: str, *, empty_ok: bool) -> int:
    if text == "" and empty_ok:
        return 0
    if "-" in text:
        raise ValueError(f"port ranges are not supported: {spec!r}")
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid {what} port {text!r} in {spec!r}")
    return int(text)


def parse_publish(spec: str) -> PortMapping:
    """One `-p` value; raises ValueError naming what is wrong."""
    rest, _, protocol = spec.partition("/")
    protocol = protocol.lower() or "tcp"
    if protocol not in PROTOCOLS:
        raise ValueError(f"invalid protocol {protocol!r} in {spec!r}: use tcp or udp")
    host_ip = ""
    if rest.startswith("["):  # [::1]:8080:80
        close = rest.find("]")
        if close < 0 or rest[close + 1 : close + 2] != ":":
            raise ValueError(f"invalid port specification {spec!r}")
        host_ip, rest = rest[1:close], rest[close + 2 :]
        parts = ["", *rest.split(":")]
    else:
        parts = rest.split(":")
        if len(parts) == 3:
            host_ip = parts[0]
    if len(parts) == 1:
        host, container = "", parts[0]
    elif len(parts) in (2, 3):
        host, container = parts[-2], parts[-1]
    else:
        raise ValueError(f"invalid port specification {spec!r}")
    if host_ip:
        import ipaddress  # only when an address is given: `run` stays lean

        try:
            host_ip = str(ipaddress.ip_address(host_ip))
        except ValueError:
            raise ValueError(f"invalid IP address {host_ip!r} in {spec!r}") from None
    return PortMapping(
        _port(container, "container", spec, empty_ok=False),
        protocol,
        host_ip,
        _port(host, "host", spec, empty_ok=True),
    )
