"""Start the two servers under benchmark, each on a fresh data dir, and measure their memory.

Berth runs as `berth serve` with its default worker count. Distribution runs Debian's
`docker-registry` with the package's stock config (/etc/docker/registry/config.yml) changed only
where it must be: our address and data dir, and no htpasswd auth (Berth runs without auth too).
With an `S3Bucket`, both keep their blobs in it instead (Distribution through its own s3
driver), with each one's default chunk size and presigned redirects for blob GETs.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STOCK_CONFIG = Path("/etc/docker/registry/config.yml")
_REPO = Path(__file__).resolve().parents[1]
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
_RELIST_S = 1.0  # PeakRss lists the process tree again this often


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on an S3 server that accepts any key (SeaweedFS without -s3.config)."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    access_key: str = "bench"
    secret_key: str = "bench-secret"

    def berth_env(self) -> dict[str, str]:
        return {
            "BERTH_STORAGE_S3_ACCESSKEY": self.access_key,
            "BERTH_STORAGE_S3_SECRETKEY": self.secret_key,
            "BERTH_STORAGE_S3_REGION": self.region,
            "BERTH_STORAGE_S3_REGIONENDPOINT": self.endpoint,
            "BERTH_STORAGE_S3_BUCKET": self.bucket,
            "BERTH_STORAGE_S3_FORCEPATHSTYLE": "true",
        }

    def distribution_config(self) -> dict[str, Any]:
        return {
            "accesskey": self.access_key,
            "secretkey": self.secret_key,
            "region": self.region,
            "regionendpoint": self.endpoint,
            "bucket": self.bucket,
            "forcepathstyle": True,
            "secure": False,
            "v4auth": True,
        }


@dataclass
class Server:
    kind: str
    host: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _berth_argv(host: str, data_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    berth = Path(sys.executable).with_name("berth")
    return [
        str(berth if berth.exists() else "berth"),
        "serve",
        "--addr",
        host,
        "--data-dir",
        str(data_dir),
        *extra,
    ]


def _distribution_argv(
    host: str, data_dir: Path, workdir: Path, s3: S3Bucket | None = None
) -> list[str]:
    config: dict[str, Any] = (
        yaml.safe_load(STOCK_CONFIG.read_text())
        if STOCK_CONFIG.exists()
        else {
            "version": 0.1,
            "storage": {"cache": {"blobdescriptor": "inmemory"}, "delete": {"enabled": True}},
        }
    )
    config.pop("auth", None)
    if s3 is None:
        config["storage"]["filesystem"] = {"rootdirectory": str(data_dir)}
    else:
        config["storage"].pop("filesystem", None)
        config["storage"]["s3"] = s3.distribution_config()
    config.setdefault("http", {})["addr"] = host
    path = workdir / "distribution.yml"
    path.write_text(yaml.safe_dump(config))
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    return [binary, "serve", str(path)]


def start(
    kind: str, workdir: Path, s3: S3Bucket | None = None, berth_args: Sequence[str] = ()
) -> Server:
    """Start `kind` ("berth" or "distribution") with data under `workdir` (blobs in `s3`
    when given; Berth with `berth_args` added, e.g. `--config FILE`); wait for /v2/."""
    workdir.mkdir(parents=True, exist_ok=True)
    host = f"127.0.0.1:{_free_port()}"
    data_dir = workdir / "data"
    data_dir.mkdir()
    argv = (
        _berth_argv(host, data_dir, berth_args)
        if kind == "berth"
        else _distribution_argv(host, data_dir, workdir, s3)
    )
    env = {**os.environ, **(s3.berth_env() if s3 is not None and kind == "berth" else {})}
    if kind == "distribution":  # its AWS SDK panics on a CA bundle with its own transport
        env.pop("AWS_CA_BUNDLE", None)
    log_path = workdir / f"{kind}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    server = Server(kind, host, data_dir, proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/v2/", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{kind} did not answer /v2/ in 60 s:\n{log_path.read_text()}")


def _tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds (user and system) the live processes of the tree have used."""
    total = 0
    for pid in _tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def _rss(pids: list[int]) -> int:
    """Resident bytes of the processes together."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    return total


def _pss(pids: list[int]) -> int:
    """Proportional set size of the processes: pages shared by forked workers counted once."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


class PeakRss:
    """Samples a process tree's total RSS and PSS every `interval` seconds; `peak` and
    `peak_pss` are the maxima seen.

    The sampling runs in a process of its own: a sample reads /proc for ~10 ms, and from a
    thread of the benchmark's process it held the GIL its upload clients need, taking 2-20%
    off the 4 KiB uploads against Berth (none off Distribution's, which wait on the server).
    The process tree is listed again once a second, not at every sample."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval, self.peak, self.peak_pss = pid, interval, 0, 0

    def __enter__(self) -> PeakRss:
        code = f"from bench.servers import sample_peaks; sample_peaks({self.pid}, {self.interval})"
        env = {**os.environ, "PYTHONPATH": str(_REPO)}
        self._sampler = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert self._sampler.stdout is not None
        if self._sampler.stdout.readline() != b"sampling\n":  # the first sample is taken
            raise RuntimeError(f"the memory sampler failed (exit {self._sampler.wait()})")
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self._sampler.communicate()  # its stdin closes: it stops and answers
        self.peak, self.peak_pss = (int(n) for n in out.split())


def sample_peaks(root: int, interval: float) -> None:
    """PeakRss's sampler: samples until stdin closes, then prints the two peaks."""
    pids, listed = _tree(root), time.monotonic()
    peak, peak_pss = _rss(pids), _pss(pids)
    print("sampling", flush=True)
    while not select.select([sys.stdin], [], [], interval)[0]:
        if time.monotonic() - listed > _RELIST_S:
            pids, listed = _tree(root), time.monotonic()
        peak, peak_pss = max(peak, _rss(pids)), max(peak_pss, _pss(pids))
    print(peak, peak_pss, flush=True)
