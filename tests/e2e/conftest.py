"""Fixtures for the real-client end-to-end tests. All opt-in (no autouse).

- `client_registry`: one registry per test module (Berth, or Distribution when
  BERTH_TEST_TARGET=distribution), data under a module tmp dir.
- `repo`: a repository name unique to the test.
- `dockerd`, `docker_images`, `busybox_image`, `docker_config`: dockerd and the images a test makes.
- `containerd`: a standalone containerd with its own config, socket and root.
- `containers_env`: isolated podman/buildah storage plus CONTAINERS_CONF and registries.conf.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.clients import IMAGE_PREFIX, CommandFailed, run, unmount_under
from tests.support.server import RunningServer, registry_server


@pytest.fixture(scope="module")
def client_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Two workers, as `berth serve` runs by default on this 2-core machine: clients' requests
    # land on both, so a tag moved by one worker must be seen by the other.
    with registry_server(tmp_path_factory.mktemp("registry"), workers=2) as server:
        yield server
    assert_no_traceback(server)


def assert_no_traceback(server: RunningServer) -> None:
    """A client may retry past a server error; the server's log still shows it."""
    log = server.log()
    assert "Traceback (most recent call last)" not in log, log[-5000:]


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """`clients/<test name>-<random>`: lowercase, valid as an OCI repository name."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"clients/{base}-{uuid.uuid4().hex[:6]}"


# --- docker -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dockerd() -> None:
    proc = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    if proc.returncode != 0:
        pytest.fail(f"dockerd is not running (make test-env starts it): {proc.stderr}")


@dataclass
class DockerImages:
    """Builds and tags docker images, remembering each name so teardown removes exactly those."""

    names: list[str] = field(default_factory=list)

    def build(self, context: Path, tag: str) -> str:
        run(["docker", "build", "-q", "-t", tag, str(context)], timeout=600)
        self.names.append(tag)
        return tag

    def tag(self, source: str, target: str) -> str:
        run(["docker", "tag", source, target])
        self.names.append(target)
        return target

    def pulled(self, name: str) -> str:
        self.names.append(name)
        return name

    def remove(self, *names: str) -> None:
        run(["docker", "rmi", "-f", *names], check=False)

    def cleanup(self) -> None:
        """Remove every image of the repositories used, including ones left with only a digest
        reference (an image whose tag moved keeps `repo@sha256:...`)."""
        repositories = {_repository_of(name) for name in self.names}
        if self.names:
            self.remove(*self.names)
        leftovers = []
        for repository in repositories:
            out = run(
                [
                    "docker",
                    "images",
                    "--digests",
                    "--format",
                    "{{.Repository}}@{{.Digest}}",
                    repository,
                ],
                check=False,
            ).stdout
            leftovers += [ref for ref in out.split() if not ref.endswith("@<none>")]
        if leftovers:
            self.remove(*leftovers)
        self.names.clear()


def _repository_of(ref: str) -> str:
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


@pytest.fixture
def docker_images(dockerd: None) -> Iterator[DockerImages]:
    images = DockerImages()
    yield images
    images.cleanup()


def write_busybox_context(context: Path, extra_lines: str = "") -> Path:
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n" + extra_lines + 'CMD ["/bin/busybox", "sh"]\n'
    )
    return context


@pytest.fixture(scope="session")
def busybox_image(dockerd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-layer busybox image built FROM scratch by `docker build` (no Docker Hub here)."""
    tag = f"{IMAGE_PREFIX}/busybox:{uuid.uuid4().hex[:8]}"
    context = write_busybox_context(tmp_path_factory.mktemp("busybox-ctx"))
    images = DockerImages()
    images.build(context, tag)
    yield tag
    images.cleanup()


@pytest.fixture
def docker_config(tmp_path: Path) -> dict[str, str]:
    """Environment with DOCKER_CONFIG in a temp dir, so credentials and the CLI's manifest-list
    store stay out of ~/.docker."""
    path = tmp_path / "docker-config"
    path.mkdir()
    return {"DOCKER_CONFIG": str(path)}


# --- containerd -------------------------------------------------------------------------------


@dataclass
class Containerd:
    socket: Path
    namespace: str

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run(["ctr", "-a", str(self.socket), "-n", self.namespace, *args], timeout=timeout)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """A standalone containerd next to Docker's own: its own root, state and sockets, no CRI."""
    base = tmp_path_factory.mktemp("ctrd")
    sock = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{base}/opt"\n'
    )
    log = (base / "containerd.log").open("wb")
    proc = subprocess.Popen(
        ["containerd", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    daemon = Containerd(sock, "berth-e2e")
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"containerd exited: {(base / 'containerd.log').read_text()}")
            try:
                daemon.ctr("version", timeout=10)
                break
            except CommandFailed:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield daemon
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        unmount_under(base)  # snapshots may leave overlay mounts under root


# --- podman / buildah -------------------------------------------------------------------------


@dataclass
class ContainersEnv:
    """podman and buildah with isolated storage, runc, no network, and the registry marked
    insecure in a registries.conf (commands still pass --tls-verify=false explicitly)."""

    root: Path
    runroot: Path
    env: dict[str, str]

    def podman(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run(
            ["podman", "--root", str(self.root), "--runroot", str(self.runroot), *args],
            env=self.env,
            timeout=timeout,
        )

    def buildah(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run(
            ["buildah", "--root", str(self.root), "--runroot", str(self.runroot), *args],
            env=self.env,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def containers_env(
    tmp_path_factory: pytest.TempPathFactory, client_registry: RunningServer
) -> Iterator[ContainersEnv]:
    base = tmp_path_factory.mktemp("containers")
    conf = base / "containers.conf"
    conf.write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
        'netns = "none"\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )
    (base / "auth.json").write_text("{}")
    registries = base / "registries.conf"
    registries.write_text(
        "unqualified-search-registries = []\n[[registry]]\n"
        f'location = "{client_registry.host}"\ninsecure = true\n'
    )
    env = {
        "CONTAINERS_CONF": str(conf),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "BUILDAH_RUNTIME": "runc",
        "REGISTRY_AUTH_FILE": str(base / "auth.json"),
    }
    cenv = ContainersEnv(base / "root", base / "runroot", env)
    yield cenv
    # Drop what the tests made and release overlay mounts so the tmp dir can be removed.
    # (Not `podman system reset`: that also touches host-wide network config.)
    for tool in (["buildah", "rm", "--all"], ["podman", "rmi", "-a", "-f"]):
        subprocess.run(
            [tool[0], "--root", str(cenv.root), "--runroot", str(cenv.runroot), *tool[1:]],
            env={**os.environ, **env},
            capture_output=True,
            check=False,
            timeout=120,
        )
    unmount_under(base)
