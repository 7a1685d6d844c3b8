"""Start real registry servers for tests: `berth serve`, or CNCF Distribution for comparison.

`registry_server(tmp_path)` starts whichever the environment asks for:
BERTH_TEST_TARGET=distribution runs Debian's `docker-registry` instead of Berth, so that a
black-box test can be checked against the reference implementation; the default is Berth.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A server process and where it listens. `host` is `127.0.0.1:PORT`, as clients write it."""

    kind: str
    host: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the server (and its workers), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait: the graceful shutdown path."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def berth_executable() -> str:
    candidate = Path(sys.executable).with_name("berth")
    return str(candidate) if candidate.exists() else "berth"


def _wait_ready(server: RunningServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.kind} exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/v2/", timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # auth enabled: up all the same
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"{server.kind} did not answer /v2/ within {timeout}s:\n{server.log()}")


def _spawn(
    kind: str,
    argv: list[str],
    host: str,
    data_dir: Path,
    log_path: Path,
    env: dict[str, str] | None,
) -> RunningServer:
    log = open(log_path, "wb")  # noqa: SIM115  (the child owns it; closed with the process)
    process = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    log.close()
    server = RunningServer(kind, host, data_dir, process, log_path, argv)
    _wait_ready(server)
    return server


def start_berth(
    data_dir: Path,
    *,
    port: int | None = None,
    workers: int = 1,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> RunningServer:
    host = f"127.0.0.1:{port or free_port()}"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        berth_executable(),
        "serve",
        "--addr",
        host,
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
        *extra_args,
    ]
    return _spawn(
        "berth",
        argv,
        host,
        data_dir,
        log_path or data_dir.parent / f"berth-{host.split(':')[1]}.log",
        env,
    )


def start_distribution(
    data_dir: Path, *, port: int | None = None, extra_config: str = ""
) -> RunningServer:
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    host = f"127.0.0.1:{port or free_port()}"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / f"distribution-{host.split(':')[1]}.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {data_dir}}}\n  delete: {{enabled: true}}\n"
        f"http:\n  addr: {host}\n" + extra_config
    )
    return _spawn(
        "distribution",
        [binary, "serve", str(config)],
        host,
        data_dir,
        data_dir.parent / f"distribution-{host.split(':')[1]}.log",
        None,
    )


@contextlib.contextmanager
def registry_server(tmp_path: Path, **kwargs: object) -> Iterator[RunningServer]:
    """Berth by default; Distribution when BERTH_TEST_TARGET=distribution."""
    if os.environ.get("BERTH_TEST_TARGET") == "distribution":
        server = start_distribution(tmp_path / "registry-data")
    else:
        server = start_berth(tmp_path / "registry-data", **kwargs)  # type: ignore[arg-type]  # kwargs forwarded as given
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running(kind: str, data_dir: Path) -> Iterator[RunningServer]:
    """`berth serve` (kind "berth") or CNCF Distribution ("distribution"), stopped after."""
    server = start_berth(data_dir) if kind == "berth" else start_distribution(data_dir)
    try:
        yield server
    finally:
        server.stop()
