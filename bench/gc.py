"""`python -m bench.gc`: online garbage collection over a large store, beside Distribution's.

For each size (default: a quarter store, then 100,000 blobs and 10,000 manifests), a store
is generated straight into a serving Berth's data dir (SQL rows with executemany, small
blob files), everything made two hours old, with about 28% garbage: untagged manifests
(10% of them) and their blobs, linked but unreferenced blobs, blob rows linked nowhere,
and files with no row. Then `berth gc --delete-untagged` (default grace) runs while a client
pushes small images in a loop, and we report the pass's time and peak RSS (flat across
sizes means memory does not grow with the store), and push latency before and during it.
Distribution's offline `garbage-collect --delete-untagged` runs over the same logical store
in its own layout, for the time ratio (it needs the registry read-only; Berth does not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench import servers

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYERS_PER_IMAGE = 7  # plus a config: 8 blobs per manifest
PER_REPOSITORY = 100


@dataclass
class Store:
    """The logical content, generated once per size and written in both layouts."""

    repositories: list[str]
    # (repository index, manifest payload, tagged, blob payloads)
    images: list[tuple[int, bytes, bool, list[bytes]]]
    loose: list[tuple[int, bytes]]  # linked in a repository, referenced by nothing
    unlinked: list[bytes]  # a row, no link, no reference
    orphans: list[bytes]  # a file, no row
    garbage_blobs: int = field(default=0)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def generate(manifests: int) -> Store:
    repositories = [f"bench/repo{n}" for n in range(max(1, manifests // PER_REPOSITORY))]
    images = []
    for n in range(manifests):
        blobs = [f"config {n}".encode()] + [
            f"layer {n}.{k} {'x' * 40}".encode() for k in range(LAYERS_PER_IMAGE)
        ]
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor("application/vnd.oci.image.config.v1+json", blobs[0]),
            "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", b) for b in blobs[1:]],
        }
        tagged = (n // len(repositories)) % 10 != 0  # every repository keeps some tags
        images.append((n % len(repositories), json.dumps(body).encode(), tagged, blobs))
    loose = [(n % len(repositories), f"loose {n}".encode()) for n in range(manifests)]
    unlinked = [f"unlinked {n}".encode() for n in range(manifests // 2)]
    orphans = [f"orphan {n}".encode() for n in range(manifests // 2)]
    untagged_blobs = sum(len(blobs) for _, _, tagged, blobs in images if not tagged)
    garbage = untagged_blobs + len(loose) + len(unlinked) + len(orphans)
    return Store(repositories, images, loose, unlinked, orphans, garbage)


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_berth(store: Store, data_dir: Path) -> None:
    """Rows into the (migrated) SQLite database, files into the blobstore layout."""
    old = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
    all_blobs = [b for *_, blobs in store.images for b in blobs]
    all_blobs += [b for _, b in store.loose] + store.unlinked
    for data in all_blobs + store.orphans:
        hexdigest = digest(data).split(":")[1]
        _write(data_dir / "blobs" / "sha256" / hexdigest[:2] / hexdigest, data)
    db = sqlite3.connect(data_dir / "registry.db")
    with db:
        db.executemany(
            "INSERT INTO repositories (id, name, created_at) VALUES (?, ?, ?)",
            [(i + 1, name, old) for i, name in enumerate(store.repositories)],
        )
        db.executemany(
            "INSERT INTO blobs (digest, size, created_at, state) VALUES (?, ?, ?, 'live')",
            [(digest(b), len(b), old) for b in all_blobs],
        )
        links = {(repo + 1, digest(b)) for repo, _, _, blobs in store.images for b in blobs}
        links |= {(repo + 1, digest(b)) for repo, b in store.loose}
        db.executemany(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)",
            [(repo, d, old) for repo, d in links],
        )
        db.executemany(
            "INSERT INTO manifests (id, repository_id, digest, media_type, size, payload,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (n + 1, repo + 1, digest(payload), OCI_MANIFEST, len(payload), payload, old)
                for n, (repo, payload, _, _) in enumerate(store.images)
            ],
        )
        db.executemany(
            "INSERT INTO manifest_references (manifest_id, kind, digest) VALUES (?, ?, ?)",
            [
                (n + 1, "config" if k == 0 else "layer", digest(b))
                for n, (_, _, _, blobs) in enumerate(store.images)
                for k, b in enumerate(blobs)
            ],
        )
        db.executemany(
            "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?, ?, ?, ?)",
            [
                (repo + 1, f"t{n}", n + 1, old)
                for n, (repo, _, tagged, _) in enumerate(store.images)
                if tagged
            ],
        )
    db.close()


def write_distribution(store: Store, root: Path) -> None:
    """The same content in Distribution's storage layout (docker/registry/v2)."""
    v2 = root / "docker" / "registry" / "v2"

    def blob(data: bytes) -> None:
        hexdigest = digest(data).split(":")[1]
        _write(v2 / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data", data)

    def link(path: Path, data: bytes) -> None:
        _write(path / "link", digest(data).encode())

    for n, (repo, payload, tagged, blobs) in enumerate(store.images):
        base = v2 / "repositories" / store.repositories[repo]
        blob(payload)
        link(base / "_manifests" / "revisions" / "sha256" / digest(payload)[7:], payload)
        if tagged:
            tag = base / "_manifests" / "tags" / f"t{n}"
            link(tag / "current", payload)
            link(tag / "index" / "sha256" / digest(payload)[7:], payload)
        for data in blobs:
            blob(data)
            link(base / "_layers" / "sha256" / digest(data)[7:], data)
    for repo, data in store.loose:
        blob(data)
        link(
            v2
            / "repositories"
            / store.repositories[repo]
            / "_layers"
            / "sha256"
            / digest(data)[7:],
            data,
        )
    for data in store.unlinked + store.orphans:
        blob(data)


@dataclass
class Pass:
    seconds: float
    peak_rss_mib: float
    report: dict[str, Any]


def run_measured(argv: list[str]) -> tuple[float, float, str]:
    """Run `argv`; its wall time, its peak RSS in MiB (sampled from /proc: the kernel's
    ru_maxrss would count this big parent's pages, copied at fork) and its stdout."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        with servers.PeakRss(proc.pid) as rss:
            proc.wait()
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:2]} exited {proc.returncode}: {stderr[-2000:]}")
    return seconds, rss.peak / (1 << 20), stdout


def push_once(session: requests.Session, base: str, n: int) -> float:
    """Push a two-blob image; seconds taken."""
    started = time.monotonic()
    blobs = [f"push config {n} {time.time_ns()}".encode(), os.urandom(4096)]
    for data in blobs:
        r = session.post(f"{base}/v2/bench/push/blobs/uploads/?digest={digest(data)}", data=data)
        r.raise_for_status()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor("application/vnd.oci.image.config.v1+json", blobs[0]),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", blobs[1])],
    }
    r = session.put(
        f"{base}/v2/bench/push/manifests/p{n}",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    r.raise_for_status()
    return time.monotonic() - started


def latencies(base: str, stop: threading.Event, limit: int, out: list[float]) -> None:
    with requests.Session() as session:
        for n in range(limit):
            if stop.is_set():
                return
            out.append(push_once(session, base, n + len(out) * 1000 + int(time.time())))


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "pushes": len(values),
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max_ms": 1000 * ordered[-1],
    }


def berth_pass(store: Store, workdir: Path) -> dict[str, Any]:
    server = servers.start("berth", workdir / "berth")
    try:
        write_berth(store, server.data_dir)
        baseline: list[float] = []
        latencies(server.url, threading.Event(), 30, baseline)
        during: list[float] = []
        stop = threading.Event()
        pusher = threading.Thread(target=latencies, args=(server.url, stop, 100_000, during))
        pusher.start()
        berth = str(Path(sys.executable).with_name("berth"))
        try:
            seconds, peak, stdout = run_measured(
                [berth, "gc", "--data-dir", str(server.data_dir), "--delete-untagged", "--json"]
            )
        finally:
            stop.set()
            pusher.join()
        return {
            "seconds": seconds,
            "peak_rss_mib": peak,
            "report": json.loads(stdout),
            "push_before": summary(baseline),
            "push_during": summary(during),
        }
    finally:
        server.stop()


def distribution_pass(store: Store, workdir: Path) -> dict[str, Any]:
    root = workdir / "distribution"
    write_distribution(store, root)
    config = workdir / "distribution.yml"
    config.write_text(
        json.dumps(
            {
                "version": 0.1,
                "storage": {
                    "filesystem": {"rootdirectory": str(root)},
                    "delete": {"enabled": True},
                },
                "http": {"addr": "127.0.0.1:0"},
            }
        )
    )
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    seconds, peak, _ = run_measured([binary, "garbage-collect", "--delete-untagged", str(config)])
    left = sum(1 for _ in (root / "docker/registry/v2/blobs/sha256").glob("*/*/data"))
    return {"seconds": seconds, "peak_rss_mib": peak, "blobs_left": left}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc", description=__doc__)
    parser.add_argument(
        "--manifests", type=int, nargs="+", default=[2500, 10000], help="store sizes (x10 blobs)"
    )
    parser.add_argument("--no-distribution", action="store_true")
    args = parser.parse_args(argv)
    results = []
    for manifests in args.manifests:
        workdir = Path(tempfile.mkdtemp(prefix="berth-bench-gc-"))
        try:
            store = generate(manifests)
            total = sum(len(b) for *_, b in store.images) + len(store.loose)
            total += len(store.unlinked) + len(store.orphans)
            print(
                f"[bench.gc] {manifests} manifests, {total} blobs ({store.garbage_blobs} garbage)"
            )
            row: dict[str, Any] = {
                "manifests": manifests,
                "blobs": total,
                "garbage": store.garbage_blobs,
            }
            row["berth"] = berth_pass(store, workdir)
            print(json.dumps(row["berth"], indent=2), flush=True)
            if not args.no_distribution:
                row["distribution"] = distribution_pass(store, workdir)
            results.append(row)
            print(json.dumps(row, indent=2), flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    header = ("blobs", "manifests", "berth s", "berth MiB", "dist s", "dist MiB", "push p50")
    print("{:>8} {:>9} {:>8} {:>9} {:>7} {:>8}  {} (before / during ms)".format(*header))
    for row in results:
        b, d = row["berth"], row.get("distribution", {})
        cells: tuple[Any, ...] = (row["blobs"], row["manifests"], b["seconds"], b["peak_rss_mib"])
        cells += (d.get("seconds", float("nan")), d.get("peak_rss_mib", float("nan")))
        cells += (b["push_before"].get("p50_ms", 0), b["push_during"].get("p50_ms", 0))
        print("{:>8} {:>9} {:>8.1f} {:>9.0f} {:>7.1f} {:>8.0f}  {:.0f} / {:.0f}".format(*cells))
    out = (
        Path(__file__).resolve().parent
        / "results"
        / f"gc-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
