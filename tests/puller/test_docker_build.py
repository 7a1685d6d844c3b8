"""An image built by `docker build` and pushed by dockerd: `berth mount` shows exactly the
tree `docker export` gives for a container of that image, minus Docker's runtime files."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.puller.conftest import Berth
from tests.puller.trees import Node, differences, link_groups, scan_tree
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# Written into every container by dockerd, not part of the image.
DOCKER_RUNTIME_FILES = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"}
# dockerd's init layer re-creates these even when the image has them: same node, new mtime.
DOCKER_INIT_LAYER_RECREATED = {"dev/console", "etc/mtab"}

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


def _run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stderr.decode(errors='replace')}"
    return proc


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
    _run("docker", "build", "-q", "-t", tag, str(context))
    try:
        _run("docker", "push", tag)
        _run("docker", "create", "--name", container, tag, "/bin/busybox", "true")
        yield tag
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def _export_tree(container: str) -> dict[str, Node]:
    exported = _run("docker", "export", container).stdout
    tree: dict[str, Node] = {}
    inode = 0
    with tarfile.open(fileobj=io.BytesIO(exported), mode="r:") as tar:
        for member in tar:
            path = member.name.strip("/").removeprefix("./")
            inode += 1
            if member.islnk():
                tree[path] = tree[member.linkname.strip("/")]
                continue
            data = b""
            if member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                data = source.read()
            kind = (
                "file"
                if member.isreg()
                else "dir"
                if member.isdir()
                else "symlink"
                if member.issym()
                else "fifo"
                if member.isfifo()
                else "char"
                if member.ischr()
                else "block"
            )
            tree[path] = Node(
                kind=kind,
                mode=0 if member.issym() else member.mode & 0o7777,
                uid=member.uid,
                gid=member.gid,
                size=len(data) if member.isreg() else 0,
                sha256=hashlib.sha256(data).hexdigest() if member.isreg() else "",
                target=member.linkname if member.issym() else "",
                rdev=(member.devmajor, member.devminor) if kind in ("char", "block") else (0, 0),
                mtime=0 if member.isdir() else int(member.mtime),
                inode=inode,
                xattrs=tuple(
                    sorted(
                        (k[len("SCHILY.xattr.") :], v.encode("utf-8", "surrogateescape"))
                        for k, v in member.pax_headers.items()
                        if k.startswith("SCHILY.xattr.")
                    )
                ),
            )
    return {p: n for p, n in tree.items() if p and p not in DOCKER_RUNTIME_FILES}


def test_mount_equals_docker_export(docker_built: str, berth: Berth, tmp_path: Path) -> None:
    berth("pull", docker_built)
    container = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"ancestor={docker_built}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    expected = _export_tree(container)
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
