"""A real `berth serve` with auth, attacked with every way of sending a secret; its log (access
log, aiohttp's own errors, Berth's) must hold none of them."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.conftest import USERS
from tests.support.server import RunningServer, start_berth

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path, htpasswd: Path) -> Iterator[RunningServer]:
    config = tmp_path / "config.yml"
    config.write_text(f"log: {{level: debug}}\nauth:\n  htpasswd: {{path: {htpasswd}}}\n")
    running = start_berth(tmp_path / "data", extra_args=["--config", str(config)])
    try:
        yield running
    finally:
        running.stop()


def _raw(server: RunningServer, request: bytes) -> bytes:
    host, port = server.host.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _get(server: RunningServer, path: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_no_secret_reaches_the_log(server: RunningServer) -> None:
    password = USERS["alice"]
    credentials = base64.b64encode(f"alice:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/auth/token?scope=repository:app:pull",
        headers={"Authorization": f"Basic {credentials}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.load(response)["token"]
    secrets = {
        "password": password,
        "basic credentials": credentials,
        "token": token,
        "token signature": token.split(".")[2],
        "wrong password": "Wr0ng-Secret-Guess",
        "oversized": "OVERSIZEDSECRET",
        "query": "QUERYSECRET",
        "query password": "FORMSECRET",
    }
    wrong = base64.b64encode(b"alice:" + secrets["wrong password"].encode()).decode()
    assert _get(server, "/v2/", {"Authorization": f"Bearer {token}"}) == 200
    assert _get(server, "/v2/app/tags/list", {"Authorization": f"Bearer {token}x"}) == 401
    assert _get(server, "/auth/token", {"Authorization": f"Basic {wrong}"}) == 401
    assert _get(server, f"/v2/?access_token={token}", {}) == 401
    assert _get(server, f"/v2/app/tags/list?access_token={secrets['query']}", {}) == 401
    assert _get(server, f"/auth/token?password={secrets['query password']}", {}) == 200
    # aiohttp refuses this header before any Berth code runs, and logs why, quoting it.
    oversized = _raw(
        server,
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + secrets["oversized"].encode()
        + b"A" * 9000
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert oversized.startswith(b"HTTP/1.0 400")
    head = oversized.split(b"\r\n\r\n")[0].decode()
    assert "Server: Berth" in head.splitlines()
    undecodable = _raw(
        server,
        b"GET /auth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xc3\xa9"
        + secrets["password"].encode()
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert undecodable.startswith(b"HTTP/1.1 401")
    server.stop()
    log = server.log()
    assert "Error handling request" in log  # aiohttp did log the oversized header
    assert "unhandled error" not in log  # no 500 on the way
    for what, secret in secrets.items():
        assert secret not in log, f"the {what} is in the log"
