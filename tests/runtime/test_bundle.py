"""`berth bundle REF DIR` writes a bundle runc and crun run as they are."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.runtime.conftest import Berth, Images, sh
from tests.support.server import berth_executable

pytestmark = pytest.mark.e2e


def test_bundle_runs_under_runc(berth: Berth, registry_images: Images, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    made = sh(
        berth_executable(),
        "bundle",
        "--root",
        str(berth.root),
        "-e",
        "X=1",
        "-u",
        "app",
        registry_images.app,
        str(bundle),
        "echo $X $(id -u) $(pwd); cat hello.txt",
    )
    try:
        config = json.loads((bundle / "config.json").read_text())
        assert config["process"]["args"] == [
            "/bin/sh",
            "-c",
            "echo $X $(id -u) $(pwd); cat hello.txt",
        ]
        assert config["process"]["user"]["uid"] == 1000
        assert (bundle / "rootfs" / "srv" / "app" / "hello.txt").is_file()
        assert "runc run -b" in made.stdout
        cid = f"berthrt-{uuid.uuid4().hex[:8]}"
        run = subprocess.run(
            ["runc", "run", "-b", str(bundle), cid],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert (run.returncode, run.stdout) == (0, "1 1000 /srv/app\nhello from the image\n")
    finally:
        subprocess.run(["umount", str(bundle / "rootfs")], check=False)
    assert not (bundle / "rootfs" / "srv").exists()  # the overlay is gone once unmounted


def test_bundle_refuses_unknown_users(
    berth: Berth, registry_images: Images, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            berth_executable(),
            "bundle",
            "--root",
            str(berth.root),
            "-u",
            "ghost",
            registry_images.app,
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert (
        proc.stderr
        == "berth bundle: unable to find user ghost: no matching entries in passwd file\n"
    )
    assert not (tmp_path / "b" / "rootfs").is_mount()
