"""`-p` values as docker reads them, and how `docker ps` shows them."""

from __future__ import annotations

import pytest

from runtime.network.ports import PortMapping, parse_publish


@pytest.mark.parametrize(
    ("spec", "want", "shown"),
    [
        ("80", PortMapping(80), "0.0.0.0:0->80/tcp"),
        ("8080:80", PortMapping(80, "tcp", "", 8080), "0.0.0.0:8080->80/tcp"),
        ("127.0.0.1:8080:80", PortMapping(80, "tcp", "127.0.0.1", 8080), "127.0.0.1:8080->80/tcp"),
        ("127.0.0.1::53/udp", PortMapping(53, "udp", "127.0.0.1", 0), "127.0.0.1:0->53/udp"),
        ("[::1]:8080:80/TCP", PortMapping(80, "tcp", "::1", 8080), "[::1]:8080->80/tcp"),
    ],
)
def test_parse_publish(spec: str, want: PortMapping, shown: str) -> None:
    assert parse_publish(spec) == want
    assert str(want) == shown
    assert PortMapping.from_json(want.to_json()) == want


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("80/sctp", "invalid protocol"),
        ("0:80", "invalid host port"),
        ("8080:70000", "invalid container port"),
        ("8080-8081:80-81", "port ranges are not supported"),
        ("localhost:8080:80", "invalid IP address"),
        ("1:2:3:4", "invalid port specification"),
        ("", "invalid container port"),
        ("[::1]8080:80", "invalid port specification"),
    ],
)
def test_parse_publish_refuses(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_publish(spec)
