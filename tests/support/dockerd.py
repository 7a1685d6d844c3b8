"""A second dockerd, started by a test beside the machine's own, with its own state.

Its own `--data-root`, `--exec-root` (where it starts its own containerd), `--pidfile` and
`-H unix://` socket; no bridge and no iptables rules, so nothing on the host changes. Give it
`--registry-mirror` (and `--insecure-registry`) to try a mirror as a user's daemon.json would.
`Dockerd.docker(...)` runs the docker CLI against it. `stop()` ends it by its PID and releases
the overlay mounts under its data root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.clients import run, unmount_under


@dataclass
class Dockerd:
    base: Path
    socket: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.base / "dockerd.log"

    def docker(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["docker", "-H", self.host, *args],
            check=check,
            timeout=timeout,
            env={"DOCKER_CONFIG": str(self.base / "docker-config")},
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                # Its containerd is in the same process group (start_new_session).
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        unmount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def start_dockerd(
    *, mirrors: Sequence[str] = (), insecure: Sequence[str] = (), timeout: float = 60
) -> Dockerd:
    # Short paths: containerd's sockets live under exec-root and unix socket paths are short.
    base = Path(tempfile.mkdtemp(prefix="berth-dockerd-"))
    (base / "docker-config").mkdir()
    socket = base / "docker.sock"
    argv = [
        "dockerd",
        "--data-root",
        str(base / "data"),
        "--exec-root",
        str(base / "exec"),
        "--pidfile",
        str(base / "dockerd.pid"),
        "-H",
        f"unix://{socket}",
        "--bridge",
        "none",
        "--iptables=false",
        "--ip6tables=false",
        "--containerd-namespace",
        "berth-test-dockerd",
        "--containerd-plugins-namespace",
        "berth-test-dockerd-plugins",
    ]
    for mirror in mirrors:
        argv += ["--registry-mirror", mirror]
    for registry in insecure:
        argv += ["--insecure-registry", registry]
    with (base / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    daemon = Dockerd(base, socket, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            text = daemon.log_path.read_text(errors="replace")
            daemon.stop()
            raise RuntimeError(f"dockerd exited {process.returncode}:\n{text[-4000:]}")
        if socket.exists() and daemon.docker("version", check=False, timeout=10).returncode == 0:
            return daemon
        if time.monotonic() > deadline:
            text = daemon.log_path.read_text(errors="replace")
            daemon.stop()
            raise RuntimeError(f"dockerd did not answer in {timeout}s:\n{text[-4000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_dockerd(
    *, mirrors: Sequence[str] = (), insecure: Sequence[str] = ()
) -> Iterator[Dockerd]:
    daemon = start_dockerd(mirrors=mirrors, insecure=insecure)
    try:
        yield daemon
    finally:
        daemon.stop()
