"""SIGKILL `berth serve` in the middle of uploads and manifest PUTs, restart it on the same
data directory, and check what it serves afterwards.

The promise under test (issue 2, DEVELOPERS.md "loses nothing"): after any crash, a HEAD or
GET of any digest is either 404 or the exact bytes; everything acknowledged (201) before the
crash is still there; an interrupted chunked upload resumes from the offset the server
reports (GET on the upload location) and completes to the right blob. Every test runs on
the filesystem and on S3 (SeaweedFS), where blob GETs redirect to presigned URLs.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.oci_http import (
    OCI_MANIFEST,
    Registry,
    descriptor,
    digest_of,
    dumps,
    with_query,
)
from tests.support.seaweedfs import berth_env
from tests.support.server import RunningServer, start_berth, start_distribution

pytestmark = pytest.mark.e2e
OCTET = {"Content-Type": "application/octet-stream"}
WORKERS = 2


class Server:
    """One data directory and port, served by successive server processes."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = env
        self.running: RunningServer | None = None
        self.port: int | None = None

    def start(self) -> RunningServer:
        if os.environ.get("BERTH_TEST_TARGET") == "distribution":
            self.running = start_distribution(self.data_dir, port=self.port)
        else:
            self.running = start_berth(self.data_dir, port=self.port, workers=WORKERS, env=self.env)
        self.port = int(self.running.host.rsplit(":", 1)[1])
        return self.running

    def crash(self) -> None:
        assert self.running is not None
        self.running.kill()

    @property
    def registry(self) -> Registry:
        assert self.running is not None
        return Registry(self.running.url)


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = None
    if request.param == "s3":
        env = berth_env(request.getfixturevalue("seaweedfs"), request.getfixturevalue("s3_bucket"))
    server = Server(tmp_path / "data", env)
    server.start()
    yield server
    if server.running is not None:
        server.running.stop()


def send_partial(
    url: str, method: str, headers: dict[str, str], body: bytes, sent: int
) -> socket.socket:
    """Open a request announcing all of `body`, send only `sent` bytes of it, and leave the
    connection open: the server is now in the middle of reading the request."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:sent])
    return sock


def assert_absent_or_exact(
    reg: Registry, name: str, digest: str, data: bytes, kind: str = "blobs"
) -> bool:
    """HEAD and GET agree, and either say 404 or give exactly `data`. True if present.
    A redirect (S3) is followed as clients follow it."""
    head = reg.request("HEAD", f"/v2/{name}/{kind}/{digest}")
    got = reg.request("GET", f"/v2/{name}/{kind}/{digest}")
    if got.status_code == 307:
        assert got.headers["Docker-Content-Digest"] == digest
        got = requests.get(got.headers["Location"], timeout=60)
        got.headers["Docker-Content-Digest"] = digest
    assert head.status_code in (200, 404), (digest, head.status_code)
    assert got.status_code == head.status_code, (digest, head.status_code, got.status_code)
    if got.status_code == 404:
        return False
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    assert got.headers["Docker-Content-Digest"] == digest
    assert got.content == data, (
        f"{digest}: {len(got.content)} bytes served, not the {len(data)} pushed"
    )
    return True


def test_kill_during_monolithic_upload(server: Server) -> None:
    reg = server.registry
    data = os.urandom(8 << 20)
    digest = digest_of(data)
    location = reg.start_upload("crash/mono")
    sock = send_partial(with_query(location, digest=digest), "PUT", OCTET, data, 5 << 20)
    post_body = os.urandom(3 << 20)
    sock2 = send_partial(
        reg.url(f"/v2/crash/mono/blobs/uploads/?digest={digest_of(post_body)}"),
        "POST",
        OCTET,
        post_body,
        1 << 20,
    )
    time.sleep(0.3)
    server.crash()
    sock.close()
    sock2.close()
    server.start()
    reg = server.registry
    assert not assert_absent_or_exact(reg, "crash/mono", digest, data)
    assert not assert_absent_or_exact(reg, "crash/mono", digest_of(post_body), post_body)
    # The repository still takes the same blob afterwards.
    assert reg.push_blob("crash/mono", data) == digest
    assert assert_absent_or_exact(reg, "crash/mono", digest, data)


def test_kill_during_chunked_upload_then_resume(server: Server) -> None:
    reg = server.registry
    data = os.urandom(6 << 20)
    digest = digest_of(data)
    location = reg.start_upload("crash/chunked")
    first = reg.request(
        "PATCH",
        location,
        data=data[: 2 << 20],
        headers={**OCTET, "Content-Range": f"0-{(2 << 20) - 1}"},
    )
    assert first.status_code == 202, first.text
    location = reg.url(first.headers["Location"])
    second = data[2 << 20 : 4 << 20]
    sock = send_partial(
        location, "PATCH", {**OCTET, "Content-Range": f"{2 << 20}-{(4 << 20) - 1}"}, second, 1 << 20
    )
    time.sleep(0.3)
    server.crash()
    sock.close()
    server.start()
    reg = server.registry
    assert not assert_absent_or_exact(reg, "crash/chunked", digest, data)

    status = reg.request("GET", location)
    assert status.status_code == 204, status.text
    start, end = (int(x) for x in status.headers["Range"].split("-"))
    offset = end + 1
    assert start == 0
    assert (2 << 20) <= offset <= (3 << 20), f"server reports {offset} bytes received"
    location = reg.url(status.headers["Location"])
    rest = reg.request(
        "PATCH",
        location,
        data=data[offset:],
        headers={**OCTET, "Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert rest.status_code == 202, rest.text
    assert rest.headers["Range"] == f"0-{len(data) - 1}"
    done = reg.request("PUT", with_query(reg.url(rest.headers["Location"]), digest=digest))
    assert done.status_code == 201, done.text
    assert assert_absent_or_exact(reg, "crash/chunked", digest, data)


def test_kill_during_the_closing_put(server: Server) -> None:
    """Kill while the server verifies and publishes a finished chunked upload. Afterwards the
    blob is absent or exact; if absent, the session is still there to close, or gone (404),
    and either way the client gets the blob in with a retry."""
    data = os.urandom(48 << 20)
    digest = digest_of(data)
    for delay in (0.0, 0.02, 0.06, 0.15):
        name = f"crash/closing{int(delay * 100)}"
        reg = server.registry
        location = reg.start_upload(name)
        sent = reg.request(
            "PATCH", location, data=data, headers={**OCTET, "Content-Range": f"0-{len(data) - 1}"}
        )
        assert sent.status_code == 202, sent.text
        location = reg.url(sent.headers["Location"])
        sock = send_partial(with_query(location, digest=digest), "PUT", {}, b"", 0)
        time.sleep(delay)
        server.crash()
        sock.close()
        server.start()
        reg = server.registry
        if assert_absent_or_exact(reg, name, digest, data):
            continue
        status = reg.request("GET", location)
        if status.status_code == 204:
            assert status.headers["Range"] == f"0-{len(data) - 1}"
            done = reg.request(
                "PUT", with_query(reg.url(status.headers["Location"]), digest=digest)
            )
            assert done.status_code == 201, done.text
        else:
            assert status.status_code == 404, status.text
            assert reg.push_blob(name, data) == digest
        assert assert_absent_or_exact(reg, name, digest, data)


def test_client_disconnect_mid_patch_then_resume(server: Server) -> None:
    """spec.md "Resumable Push": the client loses its connection in the middle of a chunk;
    the registry tells it how much it has (GET: `Range`), and it sends only the rest."""
    reg = server.registry
    data = os.urandom(8 << 20)
    location = reg.start_upload("crash/disconnect")
    for cut in (3 << 20, 5 << 20):
        status = reg.request("GET", location)
        assert status.status_code == 204, status.text
        offset = int(status.headers["Range"].split("-")[1]) + 1 if cut > 3 << 20 else 0
        location = reg.url(status.headers["Location"])
        sock = send_partial(
            location,
            "PATCH",
            {**OCTET, "Content-Range": f"{offset}-{len(data) - 1}"},
            data[offset:],
            cut - offset,
        )
        time.sleep(0.3)
        sock.close()
        time.sleep(0.3)
    status = reg.request("GET", location)
    assert status.status_code == 204, status.text
    offset = int(status.headers["Range"].split("-")[1]) + 1
    assert 0 <= offset <= 5 << 20, f"server claims {offset} bytes, at most {5 << 20} were sent"
    rest = reg.request(
        "PUT",
        with_query(reg.url(status.headers["Location"]), digest=digest_of(data)),
        data=data[offset:],
        headers={**OCTET, "Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert rest.status_code == 201, rest.text
    assert assert_absent_or_exact(reg, "crash/disconnect", digest_of(data), data)


def test_upload_survives_a_graceful_restart(server: Server) -> None:
    """The gentle case: SIGTERM, start again; the session continues where it was."""
    reg = server.registry
    data = os.urandom(3 << 20)
    location = reg.start_upload("crash/restart")
    first = reg.request(
        "PATCH",
        location,
        data=data[: 1 << 20],
        headers={**OCTET, "Content-Range": f"0-{(1 << 20) - 1}"},
    )
    assert first.status_code == 202, first.text
    assert server.running is not None
    server.running.stop()
    server.start()
    reg = server.registry
    status = reg.request("GET", reg.url(first.headers["Location"]))
    assert (status.status_code, status.headers["Range"]) == (204, f"0-{(1 << 20) - 1}")
    rest = reg.request(
        "PUT",
        with_query(reg.url(status.headers["Location"]), digest=digest_of(data)),
        data=data[1 << 20 :],
        headers={**OCTET, "Content-Range": f"{1 << 20}-{len(data) - 1}"},
    )
    assert rest.status_code == 201, rest.text
    assert assert_absent_or_exact(reg, "crash/restart", digest_of(data), data)


def test_kill_during_manifest_put(server: Server) -> None:
    reg = server.registry
    config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(1000)
    reg.push_blob("crash/manifest", config)
    reg.push_blob("crash/manifest", layer)
    old = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
        }
    )
    assert reg.put_manifest("crash/manifest", "v1", old, OCI_MANIFEST).status_code == 201
    new = old.replace(b'"layers"', b'"annotations": {"v": "2"},\n   "layers"')
    sock = send_partial(
        reg.url("/v2/crash/manifest/manifests/v1"),
        "PUT",
        {"Content-Type": OCI_MANIFEST},
        new,
        len(new) // 2,
    )
    time.sleep(0.3)
    server.crash()
    sock.close()
    server.start()
    reg = server.registry
    assert not assert_absent_or_exact(reg, "crash/manifest", digest_of(new), new, "manifests")
    got = reg.request("GET", "/v2/crash/manifest/manifests/v1")
    assert (got.status_code, got.content) == (200, old)
    assert assert_absent_or_exact(reg, "crash/manifest", digest_of(old), old, "manifests")


@dataclass
class Ledger:
    """Everything the load threads tried and what the server acknowledged (201)."""

    attempted: dict[str, bytes] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    manifests: dict[str, bytes] = field(default_factory=dict)
    acked_manifests: set[str] = field(default_factory=set)
    tag_values: dict[str, list[bytes]] = field(default_factory=dict)
    deleting: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def load(reg: Registry, ledger: Ledger, worker: int, round_: int, stop: threading.Event) -> None:
    """Push blobs (monolithic and chunked) and manifests, delete some manifests, until the
    server dies."""
    rng = random.Random(f"{round_}-{worker}")  # every manifest is unique across rounds
    name = f"crash/load{worker % 2}"
    n = 0
    try:
        while not stop.is_set():
            n += 1
            blobs = [rng.randbytes(rng.randint(1, 3 << 20)) for _ in range(2)]
            for i, blob in enumerate(blobs):
                digest = digest_of(blob)
                with ledger.lock:
                    ledger.attempted[digest] = blob
                if i == 0:
                    reg.push_blob(name, blob)
                else:
                    location = reg.start_upload(name)
                    half = len(blob) // 2
                    for start, chunk in ((0, blob[:half]), (half, blob[half:])):
                        r = reg.request(
                            "PATCH",
                            location,
                            data=chunk,
                            headers={**OCTET, "Content-Range": f"{start}-{start + len(chunk) - 1}"},
                        )
                        assert r.status_code == 202, r.text
                        location = reg.url(r.headers["Location"])
                    r = reg.request("PUT", with_query(location, digest=digest))
                    assert r.status_code == 201, r.text
                with ledger.lock:
                    ledger.acked.add(digest)
            body = dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor("application/vnd.oci.image.config.v1+json", blobs[0]),
                    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", blobs[1])],
                    "annotations": {"n": f"{round_}-{worker}-{n}"},
                }
            )
            tag = f"t{worker}-{n % 3}"
            with ledger.lock:
                ledger.manifests[digest_of(body)] = body
                ledger.tag_values.setdefault(f"{name}:{tag}", []).append(body)
            r = reg.put_manifest(name, tag, body, OCI_MANIFEST)
            assert r.status_code == 201, r.text
            with ledger.lock:
                ledger.acked_manifests.add(digest_of(body))
            if n % 2 == 0:  # delete this manifest again (its tag then answers 404)
                with ledger.lock:
                    ledger.deleting.add(digest_of(body))
                r = reg.request("DELETE", f"/v2/{name}/manifests/{digest_of(body)}")
                assert r.status_code == 202, r.text
                with ledger.lock:
                    ledger.deleted.add(digest_of(body))
    except (requests.ConnectionError, requests.Timeout):
        return


def test_random_kills_under_load_serve_nothing_partial(server: Server) -> None:
    ledger = Ledger()
    rng = random.Random(2)
    deleted_before = 0
    for round_ in range(3):
        stop = threading.Event()
        threads = [
            threading.Thread(target=load, args=(server.registry, ledger, w, round_, stop))
            for w in range(4)
        ]
        for thread in threads:
            thread.start()
        # Let every round get going (a slow, shared CI machine included), then kill at a
        # random moment in the middle of the traffic.
        wait_until(partial(lambda before: len(ledger.deleted) > before, deleted_before), 20)
        deleted_before = len(ledger.deleted)
        time.sleep(rng.uniform(0.0, 0.8))
        server.crash()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.start()
        check(server.registry, ledger)
    assert len(ledger.acked) >= 12, "the load never got going"
    assert len(ledger.acked_manifests) >= 6
    assert ledger.deleted, "no manifest delete completed"


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def check(reg: Registry, ledger: Ledger) -> None:
    names = ("crash/load0", "crash/load1")
    for digest, blob in ledger.attempted.items():
        present = [assert_absent_or_exact(reg, name, digest, blob) for name in names]
        if digest in ledger.acked:
            assert any(present), f"acknowledged blob {digest} lost in the crash"
    for digest, body in ledger.manifests.items():
        present = [assert_absent_or_exact(reg, n, digest, body, "manifests") for n in names]
        if digest in ledger.acked_manifests and digest not in ledger.deleting:
            assert any(present), f"acknowledged manifest {digest} lost in the crash"
        if digest in ledger.deleted:
            assert not any(present), f"deleted manifest {digest} came back after the crash"
    for name in names:  # no dangling tags: every listed tag resolves to an intact manifest
        listed = reg.request("GET", f"/v2/{name}/tags/list")
        if listed.status_code == 404:
            continue
        assert listed.status_code == 200, listed.text
        tags = listed.json()["tags"] or []
        assert tags == sorted(tags)
        for tag in tags:
            got = reg.request("GET", f"/v2/{name}/manifests/{tag}")
            assert got.status_code == 200, (name, tag, got.status_code)
            assert got.headers["Docker-Content-Digest"] == digest_of(got.content)
    catalog = reg.request("GET", "/v2/_catalog")
    assert catalog.status_code == 200
    for ref, bodies in ledger.tag_values.items():
        name, tag = ref.split(":")
        got = reg.request("GET", f"/v2/{name}/manifests/{tag}")
        assert got.status_code in (200, 404)
        if got.status_code == 200:
            assert got.content in bodies
            assert got.headers["Docker-Content-Digest"] == digest_of(got.content)
            assert digest_of(got.content) not in ledger.deleted, f"{ref} serves a deleted manifest"
