"""Layers that try to escape their snapshot, or bombs, are refused with a clear error, and a
refused pull leaves no snapshot, temporary dir, ingest or image record behind."""

from __future__ import annotations

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
