"""Pushing a 2 GiB blob keeps the server's resident memory under 150 MiB.

How it is measured: `berth serve --workers 2` runs as a parent and two forked workers, all in
one process group. The blob is generated on the fly, 1 MiB at a time (never held whole by the
test either), and pushed twice: once as a single streamed `PUT` (Content-Length: 2 GiB) after
`POST`, and once as eight 256 MiB `PATCH`es with Content-Range and a closing `PUT ?digest=`.
Then the first blob is downloaded and hashed as it streams. Afterwards the test reads `VmHWM`
(the kernel's peak resident set size since the process started) from /proc/<pid>/status of
every process in the server's process group: each must be under 150 MiB. A background
sampler of VmRSS every 50 ms cross-checks it, and also records the peak of the group's summed
PSS (shared pages divided between the processes; reported, not asserted). The numbers are
printed (run with -s).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.oci_http import Registry, with_query
from tests.support.server import RunningServer, start_berth, start_distribution

pytestmark = pytest.mark.e2e

MiB = 1 << 20
SIZE = 2048 * MiB
LIMIT = 150 * MiB
PATCH_SIZE = 256 * MiB


def chunks(seed: int, start: int = 0, stop: int = SIZE) -> Iterator[bytes]:
    """Bytes [start, stop) of a deterministic 2 GiB stream, in 1 MiB pieces (start: MiB-aligned)."""
    block = hashlib.shake_256(seed.to_bytes(8, "big")).digest(MiB)
    for index in range(start // MiB, stop // MiB):
        yield index.to_bytes(8, "big") + block[8:]


def stream_digest(seed: int) -> str:
    hasher = hashlib.sha256()
    for chunk in chunks(seed):
        hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def send(
    url: str, method: str, body: Iterator[bytes], length: int, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """One request whose body is streamed from `body`, with an exact Content-Length."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=300)
    connection.putrequest(method, parts.path + (f"?{parts.query}" if parts.query else ""))
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(length))
    for key, value in (headers or {}).items():
        connection.putheader(key, value)
    connection.endheaders()
    for chunk in body:
        connection.send(chunk)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def patch(
    reg: Registry,
    location: str,
    seed: int,
    start: int,
    length: int,
    seen: Callable[[bytes], object],
) -> str:
    """PATCH bytes [start, start + length) of stream `seed`, each piece passed to `seen` as it
    goes; returns the next Location."""

    def hashed() -> Iterator[bytes]:
        for chunk in chunks(seed, start, start + length):
            seen(chunk)
            yield chunk

    response = send(
        location, "PATCH", hashed(), length, {"Content-Range": f"{start}-{start + length - 1}"}
    )
    assert response.status == 202, response.status
    assert response.getheader("Range") == f"0-{start + length - 1}"
    return reg.url(response.getheader("Location") or "")


def group_pids(leader: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == leader:  # pgrp: start_new_session made the server a group leader
            pids.append(int(entry))
    return pids


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"{key} missing for {pid}")


class RssSampler(threading.Thread):
    def __init__(self, leader: int) -> None:
        super().__init__(daemon=True)
        self.leader = leader
        self.peak: dict[int, int] = {}
        self.peak_pss_total = 0  # shared pages split between the processes: the group's real cost
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            pss_total = 0
            for pid in group_pids(self.leader):
                try:
                    rss = status_kib(pid, "VmRSS") * 1024
                    pss_total += pss_kib(pid) * 1024
                except (OSError, AssertionError):
                    continue
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self.peak_pss_total = max(self.peak_pss_total, pss_total)


def minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise AssertionError(f"Pss missing for {pid}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    if os.environ.get("BERTH_TEST_TARGET") == "distribution":
        running = start_distribution(tmp_path / "data")
    else:
        running = start_berth(tmp_path / "data", workers=2)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)  # 4 GiB of blobs: not kept


def test_2gib_pushes_keep_server_rss_under_150_mib(server: RunningServer) -> None:
    reg = Registry(server.url)
    leader = server.process.pid
    before = {pid: status_kib(pid, "VmHWM") for pid in group_pids(leader)}
    sampler = RssSampler(leader)
    sampler.start()

    # 1. POST, then one streamed PUT of the whole 2 GiB.
    digest = stream_digest(1)
    location = reg.start_upload("memory/big")
    response = send(with_query(location, digest=digest), "PUT", chunks(1), SIZE)
    assert response.status == 201, response.status
    assert response.getheader("Docker-Content-Digest") == digest

    # 2. POST, eight 256 MiB PATCHes, then PUT ?digest= (hashing as it goes).
    location = reg.start_upload("memory/big")
    hasher = hashlib.sha256()
    for start in range(0, SIZE, PATCH_SIZE):
        location = patch(reg, location, 2, start, PATCH_SIZE, hasher.update)
    chunked_digest = f"sha256:{hasher.hexdigest()}"
    done = reg.request("PUT", with_query(location, digest=chunked_digest))
    assert done.status_code == 201, done.text

    # 3. The first blob streams back intact.
    head = reg.request("HEAD", f"/v2/memory/big/blobs/{chunked_digest}")
    assert head.headers["Content-Length"] == str(SIZE)
    got = reg.request("GET", f"/v2/memory/big/blobs/{digest}", stream=True)
    assert got.status_code == 200
    check = hashlib.sha256()
    received = 0
    for piece in got.iter_content(MiB):
        check.update(piece)
        received += len(piece)
    assert (received, f"sha256:{check.hexdigest()}") == (SIZE, digest)

    sampler.done.set()
    sampler.join()
    peaks = {pid: status_kib(pid, "VmHWM") * 1024 for pid in group_pids(leader)}
    report = ", ".join(
        f"pid {pid}: VmHWM {peak / MiB:.1f} MiB (at start {before.get(pid, 0) / 1024:.1f} MiB,"
        f" sampled VmRSS max {sampler.peak.get(pid, 0) / MiB:.1f} MiB)"
        for pid, peak in sorted(peaks.items())
    )
    report += f"; sampled peak of the summed PSS of all: {sampler.peak_pss_total / MiB:.1f} MiB"
    print(f"\n{' '.join(server.argv[1:])}: after 2 x 2 GiB pushed + 2 GiB pulled: {report}")
    assert len(peaks) >= 1
    assert max(peaks.values()) < LIMIT, report
    assert max(sampler.peak.values()) < LIMIT, report


def test_chunked_push_reuses_the_memory_of_earlier_patches(tmp_path: Path) -> None:
    """Each PATCH's pieces land in memory the previous PATCH freed (registry/allocator.py):
    with glibc's defaults the workers gave it back between PATCHes and faulted it in again:
    8,600 to 12,700 minor faults for 120 MiB (30,720 pages) against 1,100 to 2,300 now."""
    running = start_berth(tmp_path / "data", workers=2)
    try:
        reg = Registry(running.url)
        leader = running.process.pid
        location = reg.start_upload("memory/chunked")
        hasher = hashlib.sha256()
        size, piece = 128 * MiB, 8 * MiB
        # The first PATCH may fault its pages in: only the later ones are counted.
        location = patch(reg, location, 3, 0, piece, hasher.update)
        before = sum(minor_faults(pid) for pid in group_pids(leader))
        for start in range(piece, size, piece):
            location = patch(reg, location, 3, start, piece, hasher.update)
        faults = sum(minor_faults(pid) for pid in group_pids(leader)) - before
        done = reg.request("PUT", with_query(location, digest=f"sha256:{hasher.hexdigest()}"))
        assert done.status_code == 201, done.text
        pages = (size - piece) // 4096
        print(f"\n15 PATCHes of 8 MiB: {faults} minor faults in the server ({pages} pages pushed)")
        assert faults < pages // 8, faults
    finally:
        running.stop()
