"""Pull images with tricky layers from the registry, mount them, and compare every entry
with what the layers mean (tests.puller.trees.expected_tree)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from blobstore.filesystem import FilesystemBlobStore
from puller import ImageStore
from tests.puller.conftest import Berth, state_leftovers
from tests.puller.trees import comparable, differences, expected_tree, link_groups, scan_tree
from tests.support import images as img
from tests.support.server import RunningServer, berth_executable

pytestmark = pytest.mark.e2e

DEEP = "/".join(f"level{i:03d}" for i in range(100))

BASE = [
    img.directory("etc"),
    img.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
    img.hardlink("etc/passwd-same-layer", "etc/passwd"),
    img.directory("usr/bin"),  # no usr/ entry: an implicit parent
    img.file("usr/bin/tool", b"\x7fELF tool", mode=0o4755),
    img.file("usr/bin/grouptool", b"sgid", mode=0o2755, gid=50),
    img.directory("tmp", mode=0o1777),
    img.directory("home/user", mode=0o700, uid=1000, gid=1000),
    img.file("home/user/.profile", b"export A=1\n", mode=0o600, uid=1000, gid=1000),
    img.file("nobody-owned", b"n", uid=65534, gid=65534, mode=0o640),
    img.symlink("abs-link", "/etc/passwd"),
    img.symlink("rel-link", "etc/passwd"),
    img.symlink("up-link", "../../../etc/passwd"),
    img.symlink("dangling", "/does/not/exist"),
    img.symlink("dir-link", "usr/bin"),
    img.symlink("link-to-link", "abs-link"),
    img.symlink("loop-a", "loop-b"),
    img.symlink("loop-b", "loop-a"),
    img.symlink("owned-link", "etc", uid=1000, gid=1000),
    img.fifo("run-fifo", mode=0o620),
    img.device("dev-null", "char", 1, 3, mode=0o666),
    img.device("dev-loop", "block", 7, 0),
    img.file(f"{DEEP}/bottom.txt", b"deep"),
    img.file("données/ünïcödé-文字-🚢.txt", "héllo wörld ✓".encode()),
    img.file("with-xattr", b"x", xattrs={"user.berth": "yes"}),
    img.file("gone-file", b"bye"),
    img.file("gone-dir/sub/deeper", b"bye too"),
    img.file("opaque-dir/old-a", b"a"),
    img.file("opaque-dir/sub/old-b", b"b"),
    img.file("recreated/old", b"old"),
    img.file("turns-into-dir", b"file first"),
    img.file("was-dir/inner", b"dir first"),
    img.directory("chowned", mode=0o755),
    img.directory("xattr-dir", mode=0o750, xattrs={"user.dir": "kept on copy-up"}),
    img.file("xattr-dir/old", b"old", xattrs={"user.file": "1", "user.other": "2"}),
    img.file("big", zeros=3 * 1024 * 1024 + 17),
    img.file("late/old", b"old"),
    img.file("kept-despite-whiteout", b"base"),
]
MIDDLE = [
    img.whiteout("gone-file"),
    img.whiteout("gone-dir"),
    img.opaque("opaque-dir"),
    img.file("opaque-dir/new-c", b"c"),
    img.whiteout("recreated"),  # deleted and recreated in the same layer
    img.directory("recreated", mode=0o750),
    img.file("recreated/new", b"new"),
    img.hardlink("links/tool-across-layers", "usr/bin/tool"),
    img.file("etc/passwd", b"root:x:0:0:root:/root:/bin/ash\n"),
    img.hardlink("etc/passwd", "etc/passwd"),  # a link to itself: nothing changes
    img.directory("turns-into-dir", mode=0o711),
    img.file("turns-into-dir/child", b"child"),
    img.file("was-dir", b"now a file"),
    img.directory("chowned", mode=0o700, uid=33, gid=33),
    img.file("xattr-dir/new", b"new"),  # xattr-dir is copied up, with its xattr
    img.hardlink("xattr-dir/old-link", "xattr-dir/old"),  # copied up with its xattrs
    img.whiteout("run-fifo"),
    img.whiteout("home/user/.profile"),  # below a lower dir this layer has no entry for
    img.whiteout("loop-b"),
    img.whiteout("never-existed"),
    img.symlink("run-fifo", "replaced/by/symlink"),
]
TOP = [
    img.directory("gone-dir", mode=0o755),  # deleted in MIDDLE, recreated here
    img.file("gone-dir/reborn", b"reborn"),
    img.file("opaque-dir/sub/top", b"top"),
    img.file(f"{DEEP}/bottom.txt", b"deeper still"),
    # whiteouts after this layer's own entries still only hide the lower layers
    img.directory("late", mode=0o700),
    img.file("late/new", b"new"),
    img.whiteout("late"),
    img.file("kept-despite-whiteout", b"top"),
    img.whiteout("kept-despite-whiteout"),
    img.opaque("opaque-dir/sub"),  # after TOP wrote opaque-dir/sub/top
]


def _push(
    registry: RunningServer,
    repository: str,
    layers: list[list[img.Entry]],
    compressions: list[str],
    fmt: str = "oci",
) -> tuple[str, img.Image]:
    built = [img.build_layer(e, c) for e, c in zip(layers, compressions, strict=True)]
    image = img.build_image(built, fmt=fmt, config={"Cmd": ["/bin/sh"]})
    img.push_image(registry.url, repository, "v1", image)
    return f"{registry.host}/{repository}:v1", image


def _compare_mounted(
    berth: Berth, reference: str, layers: list[list[img.Entry]], mountpoint: Path
) -> None:
    berth.mount(reference, mountpoint)
    try:
        actual = scan_tree(mountpoint)
        expected = expected_tree(layers)
        problems = differences(expected, actual)
        assert not problems, "\n".join(problems)
        assert link_groups(actual) == link_groups(expected)
        assert os.getxattr(mountpoint / "with-xattr", "user.berth") == b"yes"
        with pytest.raises(OSError, match="Read-only file system"):
            (mountpoint / "new-file").write_text("no")
    finally:
        berth.umount(mountpoint)


@pytest.mark.parametrize(
    ("compressions", "fmt"),
    [(["gzip", "zstd", ""], "oci"), (["gzip", "gzip", "gzip"], "docker")],
    ids=["oci-gzip-zstd-plain", "docker-gzip"],
)
def test_tricky_layers_pull_and_mount_exactly(
    registry: RunningServer, berth: Berth, tmp_path: Path, compressions: list[str], fmt: str
) -> None:
    layers = [BASE, MIDDLE, TOP]
    reference, image = _push(registry, f"puller/tricky-{fmt}", layers, compressions, fmt)

    pulled = berth("pull", reference)

    assert f"Digest: {image.digest}" in pulled.stdout
    assert comparable(expected_tree(layers))  # the model is not empty
    _compare_mounted(berth, reference, layers, tmp_path / "mnt")
    assert state_leftovers(berth.root) == []


def test_each_prefix_of_the_image_mounts_as_its_layers_mean(
    registry: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    """One- and two-layer images share snapshots with the three-layer one."""
    for count in (1, 2, 3):
        layers = [BASE, MIDDLE, TOP][:count]
        reference, _ = _push(registry, f"puller/prefix{count}", layers, ["gzip"] * count)
        berth("pull", reference)
        _compare_mounted(berth, reference, layers, tmp_path / f"mnt{count}")
    snapshots = [p for p in (berth.root / "snapshots").iterdir() if not p.name.startswith(".")]
    assert len(snapshots) == 3


def test_second_pull_downloads_nothing_and_shared_layers_are_stored_once(
    registry: RunningServer, berth: Berth
) -> None:
    shared = img.build_layer([img.file("shared", b"s" * 5000)])
    first = img.build_image([shared, img.build_layer([img.file("one", b"1")])])
    second = img.build_image([shared, img.build_layer([img.file("two", b"2")])])
    img.push_image(registry.url, "puller/share-a", "v1", first)
    img.push_image(registry.url, "puller/share-b", "v1", second)

    out_first = berth("pull", f"{registry.host}/puller/share-a:v1").stdout
    again = berth("pull", f"{registry.host}/puller/share-a:v1").stdout
    out_second = berth("pull", f"{registry.host}/puller/share-b:v1").stdout

    assert "downloading" in out_first or "downloaded" in out_first
    assert "downloaded" not in again
    assert "Status: Image is up to date for" in again
    assert "Status: Downloaded newer image for" in out_first
    assert again.count("already exists") == 2
    assert again.count("snapshot exists") == 2
    assert f"{shared.digest.split(':')[1][:12]}: already exists" in out_second
    blobs = [p for p in (berth.root / "content" / "blobs").rglob("*") if p.is_file()]
    # manifests 2 + configs 2 + layers 3 (the shared one once)
    assert len(blobs) == 7
    assert sum(1 for p in blobs if p.name == shared.digest.split(":")[1]) == 1
    snapshots = [p for p in (berth.root / "snapshots").iterdir() if not p.name.startswith(".")]
    assert len(snapshots) == 3


def test_index_resolves_to_the_requested_platform(
    registry: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    amd = img.build_image([img.build_layer([img.file("arch", b"amd64")])], architecture="amd64")
    arm = img.build_image(
        [img.build_layer([img.file("arch", b"arm64")])], architecture="arm64", variant="v8"
    )
    index = img.build_index([(amd, "linux/amd64"), (arm, "linux/arm64/v8")], fmt="docker")
    img.push_index(registry.url, "puller/multi", "v1", index)
    reference = f"{registry.host}/puller/multi:v1"

    default = berth("pull", reference)
    assert f"Digest: {amd.digest}" in default.stdout
    berth("pull", "--platform", "linux/arm64", reference)
    mounted = berth.mount(reference, tmp_path / "mnt")
    assert (mounted / "arch").read_bytes() == b"arm64"
    berth.umount(mounted)

    missing = berth("pull", "--platform", "linux/s390x", reference, check=False)
    assert missing.returncode == 1
    assert "no manifest for platform linux/s390x" in missing.stderr
    assert "linux/amd64" in missing.stderr


def test_pull_by_digest_and_images_rmi_prune(registry: RunningServer, berth: Berth) -> None:
    layer = img.build_layer([img.file("hello", b"hello world")])
    image = img.build_image([layer])
    img.push_image(registry.url, "puller/digest", "v1", image)
    by_digest = f"{registry.host}/puller/digest@{image.digest}"

    berth("pull", by_digest)
    berth("pull", f"{registry.host}/puller/digest:v1")
    listing = berth("images", "--no-trunc").stdout.splitlines()

    assert listing[0].split() == ["REFERENCE", "DIGEST", "SIZE", "CREATED"]
    assert any(line.startswith(by_digest) and image.digest in line for line in listing[1:])
    assert any(
        line.startswith(f"{registry.host}/puller/digest:v1 ")
        and "11B" in line
        and "2024-01-02 03:04:05" in line
        for line in listing[1:]
    )

    assert berth("rmi", f"{registry.host}/puller/digest:v1").stdout.startswith("Untagged: ")
    nothing = berth("prune").stdout
    assert "Deleted 0 blobs" in nothing
    assert "0 snapshots" in nothing
    berth("rmi", by_digest)
    pruned = berth("prune").stdout
    assert "Deleted 3 blobs" in pruned
    assert "1 snapshots" in pruned
    assert berth("images").stdout.splitlines()[1:] == []
    assert not [p for p in (berth.root / "content" / "blobs").rglob("*") if p.is_file()]

    gone = berth("rmi", f"{registry.host}/puller/digest:v1", check=False)
    assert gone.returncode == 1
    assert gone.stderr.startswith("berth rmi: no local image")


def test_records_survive_and_config_is_readable(registry: RunningServer, berth: Berth) -> None:
    image = img.build_image(
        [img.build_layer([img.file("f", b"x")])], config={"Env": ["A=1"], "Cmd": ["/f"]}
    )
    img.push_image(registry.url, "puller/config", "v1", image)
    port = registry.host.split(":")[1]
    berth("pull", f"localhost:{port}/puller/config:v1")  # plain HTTP: a loopback name
    berth("pull", "--plain-http", f"{registry.host}/puller/config:v1")

    records = json.loads((berth.root / "images.json").read_text())
    assert [r["reference"] for r in records["images"]] == [
        f"{registry.host}/puller/config:v1",
        f"localhost:{port}/puller/config:v1",
    ]
    config_digest = records["images"][0]["config_digest"].split(":")[1]
    config_path = berth.root / "content/blobs/sha256" / config_digest[:2] / config_digest
    assert json.loads(config_path.read_bytes())["config"] == {"Env": ["A=1"], "Cmd": ["/f"]}


def _on_terminal(argv: list[str]) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run `argv` with stdout on a pseudo-terminal of 120 columns; returns what it showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = subprocess.run(
            argv,
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        os.close(terminal)
        output = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 65536):
                output += chunk
    finally:
        os.close(controller)
    return proc, output.decode()


def test_progress_on_a_terminal_shows_bars(registry: RunningServer, berth: Berth) -> None:
    """On a terminal each layer gets a rich progress bar with its bytes, then docker's
    "Pull complete"; a second pull of a sharing image says "Already exists"."""
    shared = img.build_layer([img.file("shared", os.urandom(300_000))])
    layers = [shared, img.build_layer([img.file("own", os.urandom(600_000))])]
    image = img.build_image(layers)
    img.push_image(registry.url, "puller/tty", "v1", image)
    argv = [berth_executable(), "pull", "--root", str(berth.root)]
    proc, text = _on_terminal([*argv, f"{registry.host}/puller/tty:v1"])

    assert proc.returncode == 0, proc.stderr
    assert "\x1b[2K" in text  # the bars are redrawn in place
    for layer in layers:
        short = layer.digest[7:19]
        final = [line for line in text.splitlines() if f"{short}: Pull complete" in line][-1]
        assert "━" in final  # the bar
        shown = f"{len(layer.data) / 1000:.1f}"
        assert f"{shown}/{shown} kB" in final, final  # all bytes of the layer, as rich counts
    assert f"Digest: {image.digest}" in text
    assert "downloading" not in text  # the plain lines are for pipes

    other = img.build_image([shared, img.build_layer([img.file("b", b"b")])])
    img.push_image(registry.url, "puller/tty2", "v1", other)
    proc, again = _on_terminal([*argv, f"{registry.host}/puller/tty2:v1"])
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"{shared.digest[7:19]}: Already exists", again), again


def test_concurrent_pulls_into_one_root(registry: RunningServer, berth: Berth) -> None:
    """Two `berth pull` processes racing on one state dir both succeed, and share snapshots."""
    base = img.build_layer([img.file("base", os.urandom(200_000))])
    images = [
        img.build_image([base, img.build_layer([img.file("own", bytes([i]) * 10)])])
        for i in range(2)
    ]
    for i, image in enumerate(images):
        img.push_image(registry.url, f"puller/race{i}", "v1", image)
    argv = [
        [
            berth_executable(),
            "pull",
            "--root",
            str(berth.root),
            f"{registry.host}/puller/race{i}:v1",
        ]
        for i in range(2)
    ]
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in argv]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]

    assert [code for _, _, code in results] == [0, 0], results
    snapshots = [p for p in (berth.root / "snapshots").iterdir() if not p.name.startswith(".")]
    assert len(snapshots) == 3
    assert state_leftovers(berth.root) == []
    listed = berth("images").stdout
    assert "puller/race0:v1" in listed
    assert "puller/race1:v1" in listed


async def test_prune_sweeps_only_stale_leftovers(berth: Berth) -> None:
    """Abandoned downloads and unpacks go after an hour; a pull running now keeps its own."""
    store = ImageStore(berth.root)
    uploads = []
    for _ in range(2):
        upload = await store.content.begin()
        await upload.write(b"partial download")
        await upload.close()
        uploads.append(upload.id)
    stale_tmp = berth.root / "snapshots" / ".tmp-stale"
    fresh_tmp = berth.root / "snapshots" / ".tmp-fresh"
    for tmp in (stale_tmp, fresh_tmp):
        (tmp / "fs").mkdir(parents=True)
    two_hours_ago = time.time() - 7200
    os.utime(berth.root / "content" / "ingest" / uploads[0], (two_hours_ago, two_hours_ago))
    os.utime(stale_tmp, (two_hours_ago, two_hours_ago))

    proc = await asyncio.create_subprocess_exec(
        berth_executable(), "prune", "--root", str(berth.root), stdout=asyncio.subprocess.PIPE
    )
    await proc.communicate()

    assert proc.returncode == 0
    content = store.content
    assert isinstance(content, FilesystemBlobStore)
    assert sorted(await content.ingest_ids()) == [uploads[1]]
    assert not stale_tmp.exists()
    assert fresh_tmp.exists()
