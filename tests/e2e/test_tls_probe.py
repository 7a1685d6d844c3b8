"""TLS (and other non-HTTP bytes) on the plain-HTTP port get an answer or a close at once.

clients.md: dockerd, podman, buildah and skopeo open a TLS ClientHello on a plain-HTTP
registry first and fall back to HTTP only when that fails. A server that stays silent makes
every such client wait for its 10 s handshake timeout (20 s for skopeo's two pings). Go's
net/http answers 400 immediately; Berth must answer or close within 1 s as well.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.e2e.oci_http import Registry
from tests.support.server import RunningServer, registry_server

pytestmark = pytest.mark.e2e
PROMPT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with registry_server(tmp_path_factory.mktemp("tls-probe"), workers=2) as running:
        yield running


def client_hello(server_name: str) -> bytes:
    """The exact first flight a TLS client sends (a real ClientHello, built by OpenSSL)."""
    context = ssl.create_default_context()
    tls = context.wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=server_name
    )
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a TLS handshake record
    return hello


def first_reaction(server: RunningServer, payload: bytes) -> tuple[float, bytes]:
    """Send `payload`; return how long until the server answered or closed, and its answer."""
    host, port = server.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.settimeout(PROMPT + 2)
        started = time.monotonic()
        sock.sendall(payload)
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
        except TimeoutError:
            pytest.fail(f"the server kept silent for {PROMPT + 2} s after {payload[:8]!r}")
        return time.monotonic() - started, answer


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("client_hello", id="tls-client-hello"),
        pytest.param(b"\x00\x01\x02\x03 not http at all\r\n\r\n", id="binary-garbage"),
        pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n", id="ssh-banner"),
    ],
)
def test_non_http_bytes_get_a_prompt_answer_or_close(
    server: RunningServer, payload: bytes | str
) -> None:
    data = client_hello(server.host.split(":")[0]) if payload == "client_hello" else payload
    assert isinstance(data, bytes)
    elapsed, answer = first_reaction(server, data)
    assert elapsed < PROMPT, f"took {elapsed:.2f} s"
    assert answer == b"" or answer.startswith(b"HTTP/1."), answer[:100]
    # The server survived the probe and still speaks HTTP.
    assert Registry(server.url).request("GET", "/v2/").status_code == 200


def test_tls_client_fails_fast_and_then_falls_back(server: RunningServer) -> None:
    """What dockerd does: try TLS with a handshake timeout, then plain HTTP."""
    host, port = server.host.rsplit(":", 1)
    context = ssl.create_default_context()
    started = time.monotonic()
    with (
        socket.create_connection((host, int(port)), timeout=PROMPT + 2) as raw,
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        context.wrap_socket(raw, server_hostname=host)
    assert time.monotonic() - started < PROMPT
    assert Registry(server.url).request("GET", "/v2/").status_code == 200
