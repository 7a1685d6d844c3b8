"""An image built by `docker build` and pushed by dockerd: `berth mount` shows exactly the
tree `docker export` gives for a container of that image, minus Docker's runtime files."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.puller.conftest import Berth
from tests.puller.docker_export import DOCKER_INIT_LAYER_RECREATED, export_tree, run
from tests.puller.trees import differences, link_groups, scan_tree
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

DOCKERFILE = """\
FROM scratch
COPY rootfs/ /
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "set -e; B=/bin/busybox; \
$B mkdir -p /data/sub /gone/deep /opt/keep; $B echo one > /data/sub/file; \
$B echo doomed > /gone/deep/file; $B echo kept > /opt/keep/file; \
$B ln /data/sub/file /data/hardlink; $B ln -s ../data/sub/file /opt/rel-link; \
$B mkfifo -m 0640 /data/fifo; $B chmod 4755 /data/sub/file; \
$B chown 1000:1000 /opt/keep; $B chown -h 2000:3000 /opt/rel-link"]
RUN ["/bin/busybox", "sh", "-c", "set -e; B=/bin/busybox; \
$B rm -r /gone; $B rm /etc/removed.conf; $B rm -r /opt/keep; $B mkdir /opt/keep; \
$B echo new > /opt/keep/new; $B echo appended >> /data/sub/file; \
$B ln /etc/base.conf /etc/base-hardlink; $B chmod 1777 /data"]
"""


@pytest.fixture
def docker_built(registry: RunningServer, tmp_path: Path) -> Iterator[str]:
    context = tmp_path / "context"
    rootfs = context / "rootfs"
    # The paths dockerd's init layer would add are in the image already, so dockerd leaves
    # them alone and only the runtime files differ.
    for directory in ("dev/pts", "dev/shm", "proc", "sys", "etc", "ünïcode dir"):
        (rootfs / directory).mkdir(parents=True)
    (rootfs / "dev/console").write_bytes(b"")
    (rootfs / "dev/console").chmod(0o755)
    (rootfs / "etc/mtab").symlink_to("/proc/mounts")
    (rootfs / "etc/base.conf").write_text("base\n")
    (rootfs / "etc/removed.conf").write_text("removed\n")
    (rootfs / "ünïcode dir/fïle ✓").write_text("unicode\n")
    shutil.copy2("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = f"{registry.host}/puller/docker-built-{uuid.uuid4().hex[:8]}:v1"
    container = f"puller-export-{uuid.uuid4().hex[:8]}"
    run("docker", "build", "-q", "-t", tag, str(context))
    try:
        run("docker", "push", tag)
        run("docker", "create", "--name", container, tag, "/bin/busybox", "true")
        yield tag
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def test_mount_equals_docker_export(docker_built: str, berth: Berth, tmp_path: Path) -> None:
    berth("pull", docker_built)
    container = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"ancestor={docker_built}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    expected = export_tree(container)
    mounted = berth.mount(docker_built, tmp_path / "mnt")
    try:
        actual = scan_tree(mounted)
    finally:
        berth.umount(mounted)

    assert "data/sub/file" in actual
    assert "gone" not in actual
    assert actual["data/sub/file"].mode == 0o4755
    for path in DOCKER_INIT_LAYER_RECREATED:
        expected[path] = replace(expected[path], mtime=actual[path].mtime)
    problems = differences(expected, actual)
    assert not problems, "\n".join(problems)
    assert link_groups(actual) == link_groups(expected) != set()
