"""Layers that try to escape their snapshot, or bombs, are refused with a clear error, and a
refused pull leaves no snapshot, temporary dir, ingest or image record behind."""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.puller.conftest import Berth, state_leftovers
from tests.support import images as img
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

BASE = [img.file("etc/passwd", b"root\n"), img.directory("dir")]


def _pull_refused(
    registry: RunningServer, berth: Berth, name: str, layers: list[img.Layer], *extra: str
) -> str:
    image = img.build_image(layers)
    img.push_image(registry.url, f"puller/evil-{name}", "v1", image)
    reference = f"{registry.host}/puller/evil-{name}:v1"
    proc = berth("pull", *extra, reference, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("berth pull: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert state_leftovers(berth.root) == []
    assert not (berth.root / "images.json").exists()  # no image record
    return proc.stderr


def _snapshots(berth: Berth) -> int:
    return sum(1 for p in (berth.root / "snapshots").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([img.file("../escaped", b"x")], "leaves the layer through '..'"),
        ([img.file("dir/../../escaped", b"x")], "leaves the layer through '..'"),
        ([img.file("/abs-escaped", b"x")], "is absolute"),
        (
            [img.symlink("out", "/tmp"), img.file("out/escaped", b"x")],
            "writes through the symlink 'out'",
        ),
        (
            [img.symlink("out", "../../../../../.."), img.directory("out/sub")],
            "writes through the symlink 'out'",
        ),
        ([img.hardlink("hl", "../../../etc/passwd")], "hardlink target '../../../etc/passwd'"),
        ([img.hardlink("hl", "/etc/shadow")], "hardlink target '/etc/shadow' is absolute"),
        ([img.hardlink("hl", "no/such/file")], "which does not exist"),
        ([img.file("dir/.wh..", b"")], "whiteout of nothing"),
        ([img.directory("d"), img.hardlink("hl", "d")], "is a hardlink to a directory"),
    ],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "symlink-file",
        "symlink-dir",
        "hardlink-dotdot",
        "hardlink-absolute",
        "hardlink-missing",
        "whiteout-dotdot",
        "hardlink-dir",
    ],
)
def test_escaping_layer_is_refused(
    registry: RunningServer,
    berth: Berth,
    entries: list[img.Entry],
    message: str,
    request: pytest.FixtureRequest,
) -> None:
    name = request.node.callspec.id
    error = _pull_refused(registry, berth, name, [img.build_layer(entries)])
    assert message in error
    assert not Path("/tmp/escaped").exists()
    assert _snapshots(berth) == 0


def test_symlink_from_a_lower_layer_is_not_followed(
    registry: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    lower = img.build_layer([*BASE, img.symlink("sneaky", str(outside))])
    upper = img.build_layer([img.file("sneaky/pwned", b"gotcha")])
    error = _pull_refused(registry, berth, "lower-symlink", [lower, upper])
    assert "writes through the symlink 'sneaky' of a lower layer" in error
    assert list(outside.iterdir()) == []
    assert _snapshots(berth) == 1  # the good base layer stays, usable by other images


def test_decompression_bomb_is_refused(registry: RunningServer, berth: Berth) -> None:
    bomb = img.build_layer([img.file("zeros", zeros=64 * 1024 * 1024)], "gzip")
    assert len(bomb.data) < 1024 * 1024
    error = _pull_refused(registry, berth, "bomb", [bomb], "--max-layer-size", "8000000")
    assert f"layer {bomb.digest} unpacks to more than 8000000 bytes" in error
    assert _snapshots(berth) == 0


def test_zstd_bomb_is_refused(registry: RunningServer, berth: Berth) -> None:
    bomb = img.build_layer([img.file("zeros", zeros=32 * 1024 * 1024)], "zstd")
    error = _pull_refused(registry, berth, "zbomb", [bomb], "--max-layer-size", "1000000")
    assert "unpacks to more than 1000000 bytes" in error


def test_wrong_diff_id_is_refused(registry: RunningServer, berth: Berth) -> None:
    honest = img.build_layer([img.file("a", b"a")])
    liar = img.raw_layer(honest.data, "sha256:" + "0" * 64)
    error = _pull_refused(registry, berth, "diffid", [liar])
    assert "image config says sha256:" + "0" * 64 in error


def test_corrupt_gzip_is_refused(registry: RunningServer, berth: Berth) -> None:
    honest = img.build_layer([img.file("a", b"a" * 10000)])
    truncated = img.raw_layer(honest.data[: len(honest.data) // 2], honest.diff_id)
    error = _pull_refused(registry, berth, "truncated", [truncated])
    assert "gzip stream is truncated" in error


def test_forged_overlay_xattrs_are_dropped(
    registry: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    lower = img.build_layer([img.file("d/kept", b"k")])
    upper = img.build_layer([img.directory("d", xattrs={"trusted.overlay.opaque": "y"})])
    img.push_image(registry.url, "puller/evil-xattr", "v1", img.build_image([lower, upper]))
    reference = f"{registry.host}/puller/evil-xattr:v1"
    berth("pull", reference)
    mounted = berth.mount(reference, tmp_path / "mnt")
    assert (mounted / "d" / "kept").read_bytes() == b"k"


def _zeros_bomb(gib: int) -> img.Layer:
    """A gzip layer of one file of `gib` GiB of zeros, about 1 MB a GiB: the tar header, then
    one member of 64 MiB of zeros repeated, then the end-of-archive blocks (zeros too). Its
    diff_id is made up: hashing the real tar would take minutes, and it is never reached."""
    info = tarfile.TarInfo("zeros")
    info.size = gib * 1024**3
    zeros = gzip.compress(bytes(64 * 1024**2), compresslevel=9, mtime=0)
    data = b"".join(
        [
            gzip.compress(info.tobuf(tarfile.PAX_FORMAT), mtime=0),
            zeros * (gib * 16),
            gzip.compress(bytes(1024), mtime=0),
        ]
    )
    return img.raw_layer(data, "sha256:" + "b0" * 32)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "berth-test", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_twenty_gib_of_zeros_is_refused_early_with_nothing_left(
    registry: RunningServer, tmp_path: Path
) -> None:
    bomb = _zeros_bomb(20)
    assert 15e6 < len(bomb.data) < 25e6
    img.push_image(registry.url, "puller/evil-20g", "v1", img.build_image([bomb]))
    peak = 0
    # 1.1 GiB of disk: were the guard late, the unpack would fail with ENOSPC instead
    with _tmpfs(tmp_path / "disk", "1126m") as disk:
        berth = Berth(disk / "state")
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.wait(0.005):
                peak = max(peak, _used(disk))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            proc = berth("pull", f"{registry.host}/puller/evil-20g:v1", check=False)
        finally:
            done.set()
            watcher.join()
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.startswith(f"berth pull: layer {bomb.digest} inflates more than 100x")
        assert "decompression bomb" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert state_leftovers(berth.root) == []
        assert not (berth.root / "images.json").exists()
        assert _snapshots(berth) == 0
        assert not any((berth.root / "content").rglob(bomb.digest.split(":")[1]))
        assert _used(disk) < 1024**2  # the manifest and config, a few kB
    print(f"peak disk use {peak / 1024**3:.3f} GiB; {proc.stderr.strip()}")
    assert 1024**3 < peak < 1.1 * 1024**3, peak


def test_expansion_limits_are_options(registry: RunningServer, berth: Berth) -> None:
    layer = img.build_layer([img.file("zeros", zeros=64 * 1024 * 1024)], "gzip")
    img.push_image(registry.url, "puller/expands", "v1", img.build_image([layer]))
    reference = f"{registry.host}/puller/expands:v1"
    refused = berth("pull", "--expansion-floor", "16m", reference, check=False)
    assert refused.returncode == 1
    assert "inflates more than 100x" in refused.stderr
    allowed = berth("pull", "--expansion-floor", "16m", "--max-expansion", "0", reference)
    assert "Digest: " in allowed.stdout
    bad = berth("pull", "--max-expansion", "0.5", reference, check=False)
    assert bad.returncode == 2
    assert "is not a ratio of at least 1" in bad.stderr
