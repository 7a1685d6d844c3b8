"""`berth serve` and `berth migrate` as processes: workers, TLS, shutdown, config errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from registry.db.migrate import alembic_config
from tests.support.server import berth_executable, free_port, start_berth
from tests.support.tls import self_signed


def _berth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [berth_executable(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    result = _berth("migrate", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(tmp_path / "registry.db")
    tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    version = db.execute("select version_num from alembic_version").fetchone()
    db.close()
    assert {
        "repositories",
        "blobs",
        "repository_blobs",
        "manifests",
        "manifest_references",
        "tags",
        "upload_sessions",
    } <= tables
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert version == (head,)
    again = _berth("migrate", "--data-dir", str(tmp_path))
    assert again.returncode == 0, again.stderr


def test_migrate_honours_database_url_from_env(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "meta.db"
    result = _berth(
        "migrate",
        "--data-dir",
        str(tmp_path / "data"),
        env={"BERTH_DATABASE_URL": f"sqlite+aiosqlite:///{target}"},
    )
    assert result.returncode == 0, result.stderr
    assert target.exists()
    assert not (tmp_path / "data" / "registry.db").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BERTH_STORAGE_DELETE_ENABLED": "maybe"}, "storage.delete.enabled: 'maybe'"),
        ({"BERTH_HTTP_WORKERS": "many"}, "http.workers: 'many'"),
        ({"BERTH_HTTP_ADDR": "nowhere"}, "http.addr: 'nowhere'"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = _berth("serve", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("berth serve: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("http:\n  adress: 127.0.0.1:1\n")
    result = _berth("serve", "--config", str(config), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "http.adress: unknown configuration key" in result.stderr


def test_bad_auth_section_with_two_workers_exits_2_at_once(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("auth:\n  htpasswd: {path: /etc/htpasswd}\n  scheme: magic\n")
    started = time.monotonic()
    result = _berth("serve", "--config", str(config), "--data-dir", str(tmp_path), "--workers", "2")
    assert time.monotonic() - started < 5
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "berth serve: auth.scheme: expected 'token' or 'basic', got 'magic'"
    ]
    migrate = _berth("migrate", "--config", str(config), "--data-dir", str(tmp_path))
    assert migrate.returncode == 2
    assert migrate.stderr.startswith("berth migrate: auth.scheme: ")


def test_unusable_auth_file_stops_the_workers_with_exit_2(tmp_path: Path) -> None:
    """Valid keys, but the certificate bundle is missing: the workers find out, not the parent."""
    config = tmp_path / "config.yml"
    config.write_text(
        "auth:\n  token: {realm: https://auth.example/token, rootcertbundle: /missing.pem}\n"
    )
    started = time.monotonic()
    result = _berth(
        "serve", "--config", str(config), "--data-dir", str(tmp_path / "d"), "--workers", "2"
    )
    assert time.monotonic() - started < 15  # the workers start, fail, and stop the server
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("berth serve: auth: ")
    assert "/missing.pem" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_worker_failing_at_start_up_stops_the_server(tmp_path: Path, workers: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ingest").write_text("a file where a directory must be")
    port = free_port()
    started = time.monotonic()
    result = _berth(
        "serve", "--data-dir", str(data), "--workers", workers, "--addr", f"127.0.0.1:{port}"
    )
    assert time.monotonic() - started < 15  # not restarted forever
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("berth serve: ")
    assert "ingest" in last
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _berth("serve", "--addr", f"127.0.0.1:{port}", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_two_workers_share_the_socket(tmp_path: Path) -> None:
    server = start_berth(tmp_path / "data", workers=2)
    try:
        children = subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2
        for _ in range(20):
            with urllib.request.urlopen(f"{server.url}/v2/", timeout=5) as response:
                assert response.status == 200
        # a blob pushed through one worker is served by any
        data = b"shared" * 1000
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        request = urllib.request.Request(
            f"{server.url}/v2/w/blobs/uploads/?digest={digest}", data=data, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
        for _ in range(10):
            with urllib.request.urlopen(f"{server.url}/v2/w/blobs/{digest}", timeout=5) as r:
                assert r.read() == data
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_keep_alive_connections_are_spread_over_the_workers(tmp_path: Path) -> None:
    # Without balancing, whichever worker woke first took the connection: 16 opened one after
    # the other split 16/0 or 11/5 as often as 8/8, and bursts of 16 split 20/28 of 48; the
    # connections then stayed with their worker for as long as they were kept alive.
    server = start_berth(tmp_path / "data", workers=2)
    port = int(server.url.rsplit(":", 1)[1])
    clients: list[socket.socket] = []

    def connect() -> socket.socket:
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        clients.append(client)
        return client

    def ask(client: socket.socket) -> None:
        client.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")

    try:
        workers = [
            int(pid)
            for pid in subprocess.run(
                ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        assert len(workers) == 2
        for _ in range(16):  # one after the other, each served before the next connects
            client = connect()
            ask(client)
            assert _answer_status(client) == 200
        one_by_one = _connections_served(workers, port)
        assert sorted(one_by_one.values())[0] >= 6, one_by_one
        for _ in range(2):  # all 16 wait in the listening socket's backlog before any is served
            burst = [connect() for _ in range(16)]
            for client in burst:
                ask(client)
            for client in burst:
                assert _answer_status(client) == 200
        served = _connections_served(workers, port)
        assert sum(served.values()) == 48, served
        assert min(served.values()) >= 20, served
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert server.process.returncode == 0


def _answer_status(client: socket.socket) -> int:
    """The status of the next answer on a keep-alive connection, its body read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(next(v for k, v in headers.items() if k.lower() == "content-length"))
    while len(body) < length:
        body += client.recv(65536)
    return int(lines[0].split()[1])


def _connections_served(workers: list[int], port: int) -> dict[int, int]:
    """How many established TCP connections on local `port` each process holds."""
    owner = {}
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    owner[target[len("socket:[") : -1]] = pid
    served = dict.fromkeys(workers, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        if local_port == port and state == "01" and inode in owner:  # 01: ESTABLISHED
            served[owner[inode]] += 1
    return served


def test_graceful_shutdown_finishes_in_flight_upload(tmp_path: Path) -> None:
    server = start_berth(tmp_path / "data", workers=1)
    data = b"z" * (4 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    host, port = server.host.split(":")
    sock = socket.create_connection((host, int(port)))
    head = (
        f"POST /v2/graceful/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
        f"Host: {server.host}\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    sock.sendall(head + data[: 1 << 20])
    time.sleep(0.3)
    os.kill(server.process.pid, signal.SIGTERM)
    time.sleep(0.3)
    sock.sendall(data[1 << 20 :])
    sock.settimeout(10)
    answer = sock.recv(4096)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer
    server.process.wait(timeout=30)
    assert server.process.returncode == 0
    blob = tmp_path / "data" / "blobs" / "sha256" / digest[7:9] / digest[7:]
    assert blob.read_bytes() == data


def test_tls_from_config(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(f"http:\n  tls:\n    certificate: {cert}\n    key: {key}\n")
    process = subprocess.Popen(
        [
            berth_executable(),
            "serve",
            "--config",
            str(config),
            "--addr",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path / "data"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/v2/", context=context, timeout=2
                ) as response:
                    assert response.status == 200
                    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        data = os.urandom(300_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        base = f"https://127.0.0.1:{port}/v2/tls"
        push = urllib.request.Request(
            f"{base}/blobs/uploads/?digest={digest}", data=data, method="POST"
        )
        with urllib.request.urlopen(push, context=context, timeout=10) as response:
            assert response.status == 201
        with urllib.request.urlopen(f"{base}/blobs/{digest}", context=context, timeout=10) as r:
            assert r.read() == data
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_tls_with_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    result = _berth(
        "serve",
        "--data-dir",
        str(tmp_path),
        env={"BERTH_HTTP_TLS_CERTIFICATE": "/nonexistent.pem", "BERTH_HTTP_TLS_KEY": "/nope.pem"},
    )
    assert result.returncode == 2
    assert "http.tls" in result.stderr


def test_serve_applies_migrations_and_serves_from_env_addr(tmp_path: Path) -> None:
    port = free_port()
    env = {"BERTH_HTTP_ADDR": f"127.0.0.1:{port}", "BERTH_HTTP_WORKERS": "1"}
    process = subprocess.Popen(
        [berth_executable(), "serve", "--data-dir", str(tmp_path / "data")],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert (tmp_path / "data" / "registry.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_concurrent_pushes_across_two_workers(tmp_path: Path) -> None:
    """Many clients push the same blob and the same tag at once, spread over two processes."""
    import asyncio
    import json

    import aiohttp

    server = start_berth(tmp_path / "data", workers=2)
    try:
        layer, config = b"L" * 100_000, b"{}"
        digests = {d: "sha256:" + hashlib.sha256(d).hexdigest() for d in (layer, config)}
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": digests[config],
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": digests[layer],
                        "size": len(layer),
                    }
                ],
            }
        ).encode()

        async def push(session: aiohttp.ClientSession, i: int) -> int:
            for data in (config, layer):
                async with session.post("/v2/race/img/blobs/uploads/") as r:
                    location = r.headers["Location"]
                async with session.patch(location, data=data) as r:
                    location = r.headers["Location"]
                async with session.put(f"{location}?digest={digests[data]}") as r:
                    assert r.status == 201, await r.text()
            async with session.put(
                "/v2/race/img/manifests/latest",
                data=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            ) as r:
                return r.status

        connector = aiohttp.TCPConnector(limit=0, force_close=True)  # spread over both workers
        async with aiohttp.ClientSession(server.url, connector=connector) as session:
            statuses = await asyncio.gather(*(push(session, i) for i in range(24)))
            assert statuses == [201] * 24
            async with session.get("/v2/race/img/tags/list") as r:
                assert (await r.json())["tags"] == ["latest"]
            async with session.get("/v2/race/img/manifests/latest") as r:
                assert await r.read() == manifest
    finally:
        server.stop()
    db = sqlite3.connect(tmp_path / "data" / "registry.db")
    counts = [
        db.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("repositories", "blobs", "repository_blobs", "manifests", "tags")
    ]
    open_sessions = "select count(*) from upload_sessions where ended_at is null"
    leftover_sessions = db.execute(open_sessions).fetchone()[0]
    db.close()
    assert counts == [1, 2, 2, 1, 1]
    assert leftover_sessions == 0


def test_large_upload_keeps_server_memory_flat(tmp_path: Path) -> None:
    """A 256 MiB chunk streams through: the server's peak RSS grows by far less than that.
    (By hand, 2 GiB the same way: peak RSS 103 MiB.)"""
    import http.client

    server = start_berth(tmp_path / "data", workers=1)
    pid = server.process.pid

    def peak_mib() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        raise AssertionError("no VmHWM")

    try:
        before = peak_mib()
        block = os.urandom(1 << 20)
        total = 256
        hasher = hashlib.sha256()
        for _ in range(total):
            hasher.update(block)
        host, port = server.host.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        conn.request("POST", "/v2/big/blobs/uploads/")
        response = conn.getresponse()
        response.read()
        location = response.getheader("Location")
        assert location is not None
        conn.putrequest("PATCH", location)
        conn.putheader("Content-Length", str(total << 20))
        conn.endheaders()
        for _ in range(total):
            conn.send(block)
        response = conn.getresponse()
        response.read()
        assert response.status == 202
        assert response.getheader("Range") == f"0-{(total << 20) - 1}"
        conn.request("PUT", f"{location}?digest=sha256:{hasher.hexdigest()}")
        response = conn.getresponse()
        response.read()
        assert response.status == 201
        conn.close()
        assert peak_mib() - before < 64
    finally:
        server.stop()


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    server = start_berth(tmp_path / "data", workers=2)

    def workers() -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
        ).stdout
        return sorted(int(pid) for pid in out.split())

    try:
        first = workers()
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:
            now = workers()
            if len(now) == 2 and first[0] not in now:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.1)
        for _ in range(10):
            with urllib.request.urlopen(f"{server.url}/v2/", timeout=5) as response:
                assert response.status == 200
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_metrics_directories_of_killed_servers_are_removed_at_the_next_start(
    tmp_path: Path,
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp), "PROMETHEUS_MULTIPROC_DIR": ""}
    killed = start_berth(tmp_path / "data", workers=2, env=env)
    (left,) = temp.glob("berth-metrics-*")
    assert left.name.startswith(f"berth-metrics-{killed.process.pid}-")
    killed.kill()
    assert left.exists()  # SIGKILL: no cleanup ran

    second = start_berth(tmp_path / "data", env=env)
    (own,) = temp.glob("berth-metrics-*")
    assert own.name.startswith(f"berth-metrics-{second.process.pid}-")
    second.stop()
    assert list(temp.iterdir()) == []
