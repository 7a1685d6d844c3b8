"""`berth mount`: images of many layers mount whole (compared with `docker export` of the same
image), and the view is read-only, nodev and nosuid: device nodes and setuid files in an
image are shown, never live."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.puller.conftest import Berth
from tests.puller.docker_export import DOCKER_INIT_LAYER_RECREATED, export_tree, run
from tests.puller.trees import differences, expected_tree, link_groups, scan_tree
from tests.support import images as img
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

LAYERS = 125

# What dockerd's init layer would add, in the image already, so that only the runtime files
# differ between `docker export` and the mount (as in test_docker_build).
DOCKER_INIT = [
    img.directory("dev"),
    img.directory("dev/pts"),
    img.directory("dev/shm"),
    img.file("dev/console", mode=0o755),
    img.directory("proc"),
    img.directory("sys"),
    img.directory("etc"),
    img.symlink("etc/mtab", "/proc/mounts"),
]


def _many_layers() -> list[list[img.Entry]]:
    """125 layers: each adds a file and rewrites a shared one; some delete an earlier
    layer's file, make a directory opaque, or hardlink within the layer."""
    layers: list[list[img.Entry]] = [
        [*DOCKER_INIT, img.directory("stack"), img.file("stack/shared", b"base\n")]
    ]
    for n in range(1, LAYERS):
        # a hardlink's tar header carries the mode docker gives the inode: keep them equal
        mode = 0o644 if n % 30 == 0 else 0o640 + n % 8
        entries = [
            img.directory("stack"),
            img.file(f"stack/layer-{n:03d}", f"layer {n}\n".encode(), mode=mode),
            img.file("stack/shared", f"rewritten by {n}\n".encode()),
        ]
        if n % 10 == 0:
            entries.append(img.whiteout(f"stack/layer-{n - 5:03d}"))
        if n % 25 == 0:
            entries += [img.directory(f"opaque-{n}"), img.opaque(f"opaque-{n}")]
            entries.append(img.file(f"opaque-{n}/only", b"x"))
        if n % 30 == 0:
            entries.append(img.hardlink(f"stack/link-{n}", f"stack/layer-{n:03d}"))
        layers.append(entries)
    return layers


@pytest.fixture
def many_layers(registry: RunningServer) -> Iterator[tuple[str, str, list[list[img.Entry]]]]:
    layers = _many_layers()
    image = img.build_image(
        [img.build_layer(entries) for entries in layers], fmt="docker", config={"Cmd": ["x"]}
    )
    name = f"puller/many-{uuid.uuid4().hex[:8]}"
    img.push_image(registry.url, name, "v1", image)
    reference = f"{registry.host}/{name}:v1"
    container = f"puller-many-{uuid.uuid4().hex[:8]}"
    try:
        run("docker", "pull", "-q", reference)
        run("docker", "create", "--name", container, reference)
        yield container, reference, layers
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", reference], capture_output=True, check=False)


def test_125_layers_mount_as_docker_exports_them(
    many_layers: tuple[str, str, list[list[img.Entry]]], berth: Berth, tmp_path: Path
) -> None:
    container, reference, layers = many_layers
    berth("pull", reference)
    expected = export_tree(container)
    mounted = berth.mount(reference, tmp_path / "mnt")
    try:
        actual = scan_tree(mounted)
    finally:
        berth.umount(mounted)

    assert len(layers) == LAYERS
    assert actual["stack/shared"].size == len(f"rewritten by {LAYERS - 1}\n")
    assert "stack/layer-005" not in actual
    assert "stack/layer-124" in actual
    for path in DOCKER_INIT_LAYER_RECREATED:
        expected[path] = replace(expected[path], mtime=actual[path].mtime)
    problems = differences(expected, actual)
    assert not problems, "\n".join(problems)
    assert link_groups(actual) == link_groups(expected) != set()
    # and what the layers mean, independently of docker
    model = expected_tree(layers)
    assert {p for p in actual if p.startswith("stack/")} == {
        p for p in model if p.startswith("stack/")
    }
    assert list((berth.root).glob(".mount-*")) == []  # the short links went with the mount


def test_mount_is_read_only_nodev_and_nosuid(
    registry: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    layer = img.build_layer(
        [
            img.device("null", "char", 1, 3, mode=0o666),
            img.device("sda", "block", 8, 0, mode=0o666),
            img.file("suid", b"#!/bin/sh\n", mode=0o4755),
        ]
    )
    img.push_image(registry.url, "puller/devices", "v1", img.build_image([layer]))
    reference = f"{registry.host}/puller/devices:v1"
    berth("pull", reference)
    mounted = berth.mount(reference, tmp_path / "mnt")

    null = mounted / "null"
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert os.major(null.lstat().st_rdev) == 1  # shown as the image has it...
    for device in (null, mounted / "sda"):
        with pytest.raises(PermissionError):  # ...but never live
            os.open(device, os.O_RDONLY)
    assert mounted.joinpath("suid").stat().st_mode & stat.S_ISUID
    flags = os.statvfs(mounted).f_flag
    assert flags & os.ST_NOSUID
    assert flags & os.ST_NODEV
    assert flags & os.ST_RDONLY
    with pytest.raises(OSError, match="Read-only file system") as written:
        (mounted / "new").write_bytes(b"x")
    assert written.value.errno == errno.EROFS
    mounts = Path("/proc/self/mountinfo").read_text()
    line = next(x for x in mounts.splitlines() if f" {mounted} " in x)
    assert "ro," in line
    assert "nosuid" in line
    assert "nodev" in line
