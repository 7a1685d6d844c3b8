"""Berth as a cluster on this machine: replicas on one PostgreSQL and one S3 bucket
(SeaweedFS), behind nginx. The tests' `cluster` fixture (one per session) and `make cluster`
both use it.

    running_cluster(directory, database_url, storage)   three `berth serve` replicas, each
        with its own data dir (nothing shared on disk but what `storage` shares), started
        together (they race to migrate the database), behind a round-robin nginx;
        `extra_config` adds config sections (a `proxy` section, say)
    Cluster.kill(i) / Cluster.restart(i)                 SIGKILL a replica; start it again
                                                         on the same port
    Cluster.extra_replica(storage_changes)               one more replica on the same
                                                         database and bucket, not behind nginx
    Cluster.endpoint                                     the balancer as a RunningServer
                                                         whose log() is the replicas' logs

`python -m tests.support.cluster` starts PostgreSQL, SeaweedFS and the cluster, prints
the address for docker, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.nginx import Nginx, running_nginx
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.seaweedfs import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    SeaweedFS,
    running_seaweedfs,
)
from tests.support.server import RunningServer, free_port, start_berth

REPLICAS = 3


def filesystem_storage(root: Path) -> dict[str, Any]:
    """Blobs in one directory every replica sees (one host; a shared mount on several)."""
    root.mkdir(parents=True, exist_ok=True)
    return {"filesystem": {"rootdirectory": str(root)}}


def s3_storage(seaweedfs: SeaweedFS, bucket: str) -> dict[str, Any]:
    """Blobs in an S3 bucket (SeaweedFS here), as Distribution's s3 driver is configured."""
    return {
        "s3": {
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
            "region": REGION,
            "regionendpoint": seaweedfs.endpoint,
            "bucket": bucket,
            "rootdirectory": "/registry",
            "forcepathstyle": True,
            "secure": False,
            "chunksize": 5 << 20,
        }
    }


def replica_config(
    database_url: str, storage: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every replica's config; `extra` adds sections (e.g. `proxy`)."""
    return {
        "log": {"level": "info"},
        "database": {"url": database_url},
        "storage": dict(storage),
        # nginx runs here: believe its X-Forwarded-For (login throttling per client)
        "http": {"trustedproxies": ["127.0.0.1/32"]},
        **dict(extra or {}),
    }


class ClusterEndpoint(RunningServer):
    """The balancer, shaped as the single-server fixtures expect; `log()` is every
    replica's log (where a traceback would show), and stop/kill leave the cluster alone."""

    cluster: Cluster

    def log(self) -> str:
        return "\n".join(replica.log() for replica in self.cluster.replicas)

    def stop(self) -> None:
        pass

    def kill(self) -> None:
        pass


@dataclass
class Cluster:
    directory: Path
    config_path: Path
    database_url: str
    balancer: Nginx
    replicas: list[RunningServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def host(self) -> str:
        return self.balancer.host

    @property
    def endpoint(self) -> ClusterEndpoint:
        endpoint = ClusterEndpoint(
            "berth",
            self.balancer.host,
            self.directory,
            self.balancer.process,
            self.balancer.state / "access.log",
        )
        endpoint.cluster = self
        return endpoint

    def kill(self, index: int) -> None:
        """SIGKILL replica `index` and its workers, as a crash would."""
        self.replicas[index].kill()

    def restart(self, index: int) -> RunningServer:
        old = self.replicas[index]
        self.replicas[index] = _start_replica(
            self.directory, index, self.config_path, int(old.host.rsplit(":", 1)[1])
        )
        return self.replicas[index]

    @contextlib.contextmanager
    def extra_replica(self, storage_changes: Mapping[str, Any]) -> Iterator[RunningServer]:
        """Another replica on the same database and blob store whose `storage` section
        differs by `storage_changes` (e.g. redirects on), reached directly."""
        config = yaml.safe_load(self.config_path.read_text())
        config["storage"].update(storage_changes)
        path = self.directory / f"extra-{uuid.uuid4().hex[:8]}.yml"
        path.write_text(yaml.safe_dump(config))
        replica = _start_replica(self.directory, len(self.replicas), path, free_port())
        try:
            yield replica
        finally:
            replica.stop()

    def stop(self) -> None:
        self.balancer.stop()
        for replica in self.replicas:
            replica.stop()


def _start_replica(directory: Path, index: int, config: Path, port: int) -> RunningServer:
    return start_berth(
        directory / f"replica{index}-{port}",
        port=port,
        workers=1,
        extra_args=["--config", str(config)],
        log_path=directory / f"replica{index}-{port}.log",
    )


@contextlib.contextmanager
def running_cluster(
    directory: Path,
    database_url: str,
    storage: Mapping[str, Any],
    replicas: int = REPLICAS,
    port: int | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> Iterator[Cluster]:
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "berth.yml"
    config_path.write_text(yaml.safe_dump(replica_config(database_url, storage, extra_config)))
    ports = [free_port() for _ in range(replicas)]
    with ThreadPoolExecutor(replicas) as pool:  # together: they race to migrate the database
        started = list(
            pool.map(lambda i: _start_replica(directory, i, config_path, ports[i]), range(replicas))
        )
    try:
        with running_nginx(
            [f"127.0.0.1:{p}" for p in ports], directory / "nginx", port=port
        ) as balancer:
            cluster = Cluster(directory, config_path, database_url, balancer, started)
            try:
                yield cluster
            finally:
                cluster.stop()
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture(scope="session")
def cluster(
    postgres_server: PostgresServer,
    seaweedfs: SeaweedFS,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Three replicas behind nginx on a database and a bucket of their own, for the whole
    session (the session's PostgreSQL and SeaweedFS). Blob GETs stream through the replicas
    (`storage.redirect.disable`), so the balancer sees every byte and the conformance
    workflows check Berth's own answers; `extra_replica` gives one that redirects."""
    name = postgres_server.create_database()  # empty: the replicas migrate it as they start
    bucket = "cluster-" + uuid.uuid4().hex[:12]
    seaweedfs.create_bucket(bucket)
    directory = tmp_path_factory.mktemp("cluster")
    storage = {**s3_storage(seaweedfs, bucket), "redirect": {"disable": True}}
    with running_cluster(directory, postgres_server.url(name), storage) as running:
        yield running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make cluster",
        description="PostgreSQL, SeaweedFS (S3), three Berth replicas and nginx on this machine.",
    )
    parser.add_argument("--port", type=int, default=5000, help="the balancer's port")
    parser.add_argument("--replicas", type=int, default=REPLICAS)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with (
        tempfile.TemporaryDirectory(prefix="berth-cluster-") as state,
        running_postgres() as postgres,
        running_seaweedfs(Path(state) / "seaweedfs") as seaweedfs,
    ):
        postgres.sql("CREATE DATABASE berth")
        seaweedfs.create_bucket("berth")
        storage = s3_storage(seaweedfs, "berth")
        with running_cluster(
            Path(state), postgres.url("berth"), storage, args.replicas, args.port
        ) as cluster:
            print(f"Berth cluster: {len(cluster.replicas)} replicas behind nginx at {cluster.host}")
            for replica in cluster.replicas:
                print(f"  replica {replica.host}   log {replica.log_path}")
            print(f"  PostgreSQL 127.0.0.1:{postgres.port}   S3 (SeaweedFS) {seaweedfs.endpoint}")
            print(f"  state {state}")
            print(f"Try: docker push {cluster.host}/demo/app:1   (Ctrl-C stops everything)")
            sys.stdout.flush()
            stop.wait()
            print("stopping...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
