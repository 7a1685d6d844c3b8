"""`python -m bench`: Berth and CNCF Distribution side by side, three runs each, medians.

Runs alternate (Berth, Distribution, Berth, ...), each against a freshly started server with an
empty data dir, after a rest that lets the previous run's disk work finish (bench/settle.py),
so both see the same machine state as far as a noisy machine allows. The data dirs are removed
after the last run, not between runs (see `_remove`).
`--storage s3` starts one SeaweedFS for the whole run and gives every server run a fresh
bucket on it: Berth's S3 driver beside Distribution's own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import report, servers
from bench.calibrate import load_ceiling
from bench.docker_image import push_pull
from bench.settle import settle
from bench.workload import Sizes, run_http

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@contextlib.contextmanager
def _seaweedfs(enabled: bool) -> Iterator[Any]:
    """One SeaweedFS for the whole benchmark (tests/support/seaweedfs.py starts it)."""
    if not enabled:
        yield None
        return
    from tests.support.seaweedfs import running_seaweedfs

    directory = Path(tempfile.mkdtemp(prefix="berth-bench-seaweedfs-"))
    try:
        with running_seaweedfs(directory) as seaweedfs:
            yield seaweedfs
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _one_run(
    kind: str, sizes: Sizes, with_docker: bool, seaweedfs: Any, workdirs: list[Path]
) -> dict[str, float]:
    """One run of `kind`; its data dir is added to `workdirs`, for the caller to remove once
    every run is done (see `_remove`)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"berth-bench-{kind}-"))
    workdirs.append(workdir)
    s3 = None
    if seaweedfs is not None:
        s3 = servers.S3Bucket(seaweedfs.endpoint, f"bench-{kind}-{os.urandom(4).hex()}")
        seaweedfs.create_bucket(s3.bucket)
    server = servers.start(kind, workdir, s3)
    try:
        with servers.PeakRss(server.process.pid) as rss:
            metrics = run_http(server.url, sizes, lambda: servers.tree_cpu(server.process.pid))
            if with_docker:
                metrics.update(push_pull(server.host))
        metrics["peak_rss_mib"] = rss.peak / (1 << 20)
        metrics["peak_pss_mib"] = rss.peak_pss / (1 << 20)
        return metrics
    finally:
        server.stop()
        if s3 is not None:
            seaweedfs.delete_bucket(s3.bucket)


def _remove(workdirs: list[Path]) -> None:
    """Remove the runs' data dirs, after the last run. On a file system without a journal
    (this machine's root), ext4 does not reuse an inode within a minute (six, while its inode
    table block is dirty) of freeing it, and reads the inode of every free one it passes to
    know: for two minutes after 100,000 files were removed, creating, writing, fsyncing and
    renaming a file cost about 0.7 ms of CPU instead of 0.15 ms. Removed between runs, each
    data dir taxed the next run's server, by how many files it had held and how many that
    server creates (Distribution several per blob, Berth one)."""
    for workdir in workdirs:
        shutil.rmtree(workdir, ignore_errors=True)


def _rest(seconds: float) -> None:
    if seconds > 0:
        took = settle(seconds, maximum=seconds * 4)
        if took >= seconds * 4:
            print(f"[bench] the machine was still busy after a {took:.0f} s rest", flush=True)


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "runs": args.runs,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "storage": args.storage,
        "settle_s": args.settle,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per server (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 s storms: a smoke run")
    parser.add_argument("--only", choices=["berth", "distribution"], help="one side only")
    parser.add_argument("--no-docker", action="store_true", help="skip docker push/pull")
    parser.add_argument(
        "--settle",
        type=float,
        metavar="SECONDS",
        help="sync and rest at least this long before each run, until the CPUs are quiet "
        "(default 15, or 0 with --quick; 0 for none)",
    )
    parser.add_argument(
        "--workload",
        choices=["registry", "pull-through"],
        default="registry",
        help="the registry workload beside Distribution (default), or pulls through Berth's "
        "pull-through cache beside pulls straight from a Distribution upstream",
    )
    parser.add_argument(
        "--storage",
        choices=["filesystem", "s3"],
        default="filesystem",
        help="where both servers keep blobs: local disk, or S3 on one SeaweedFS (default disk)",
    )
    args = parser.parse_args(argv)
    if args.settle is None:
        args.settle = 0.0 if args.quick else 15.0
    if args.workload == "pull-through":
        return _bench_pull_through(args)
    with _seaweedfs(args.storage == "s3") as seaweedfs:
        return _bench(args, seaweedfs)


def _bench(args: argparse.Namespace, seaweedfs: Any) -> int:

    sizes = Sizes.quick() if args.quick else Sizes()
    kinds = [args.only] if args.only else ["berth", "distribution"]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    failures: dict[str, list[str]] = {k: [] for k in kinds}
    workdirs: list[Path] = []
    try:
        for n in range(1, args.runs + 1):
            for kind in kinds:
                _rest(args.settle)
                t0 = time.monotonic()
                try:
                    metrics = _one_run(kind, sizes, not args.no_docker, seaweedfs, workdirs)
                except Exception as exc:  # noqa: BLE001  (a failing side is reported, the other still runs)
                    failures[kind].append(f"run {n}: {exc!r}")
                    print(f"[bench] {kind} run {n} FAILED: {exc!r}", file=sys.stderr)
                    traceback.print_exc()
                    continue
                results[kind].append(metrics)
                print(
                    f"[bench] {kind} run {n}/{args.runs} done in {time.monotonic() - t0:.0f} s",
                    flush=True,
                )
    finally:
        _remove(workdirs)

    ceiling = load_ceiling(sizes.storm_seconds / 2, sizes.storm_connections)
    rows = report.summarize(results)
    print(f"\nstorage: {args.storage}")
    print(report.table(rows))
    print(f"\nstorm ceiling (ab, trivial one-process aiohttp server): {ceiling:,.0f} req/s")
    for kind, errors in failures.items():
        for error in errors:
            print(f"{kind} FAILED {error}")
    path = report.write_json(
        RESULTS_DIR,
        {**_meta(args), "failures": failures, "load_ceiling_rps": ceiling},
        results,
        rows,
    )
    print(f"\nresults: {path}")
    return 1 if any(failures.values()) else 0


def _bench_pull_through(args: argparse.Namespace) -> int:
    from bench import pull_through

    sizes = pull_through.PullSizes.quick() if args.quick else pull_through.PullSizes()
    results: dict[str, list[dict[str, float]]] = {"berth": [], "distribution": []}
    failures: list[str] = []
    for n in range(1, args.runs + 1):
        _rest(args.settle)
        t0 = time.monotonic()
        try:
            via, direct = pull_through.one_run(sizes, not args.no_docker)
        except Exception as exc:  # noqa: BLE001  (reported; the next run still goes)
            failures.append(f"run {n}: {exc!r}")
            print(f"[bench] pull-through run {n} FAILED: {exc!r}", file=sys.stderr)
            traceback.print_exc()
            continue
        results["berth"].append(via)
        results["distribution"].append(direct)
        print(f"[bench] pull-through run {n}/{args.runs} done in {time.monotonic() - t0:.0f} s")
    rows = report.summarize(results, pull_through.METRICS)
    print(f"\nimage: {sizes.layers} layers, {sizes.total_mib:g} MiB; upstream: Distribution")
    print(report.table(rows, pull_through.COLUMNS))
    for error in failures:
        print(f"pull-through FAILED {error}")
    meta = {**_meta(args), "workload": "pull-through", "failures": failures}
    path = report.write_json(RESULTS_DIR, meta, results, rows)
    print(f"\nresults: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
