"""Memory stays flat: a pull of layers much larger than the process's growth allowance
streams them (download, verify, decompress, unpack) without holding one whole, and so does
the push of them to another registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import images as img
from tests.support.server import RunningServer, start_berth

pytestmark = pytest.mark.e2e

# Runs the CLI in-process and reports how far its resident set grew above where it stood
# once everything was imported. clear_refs "5" resets the kernel's peak (VmHWM), which
# otherwise still holds the forking parent's size across exec.
_MEASURE = """
import sys
from berth.cli import build_parser, main

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))

build_parser()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
code = main(sys.argv[1:])
print(f"growth_kib={status('VmHWM') - base}", file=sys.stderr)
sys.exit(code)
"""


def _rss_growth_mib(*args: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("growth_kib="))
    return int(line.split("=")[1]) / 1024


def test_large_layers_stream_with_flat_memory(registry: RunningServer, tmp_path: Path) -> None:
    big_download = img.build_layer([img.file("random.bin", os.urandom(64 * 1024 * 1024))], "")
    big_unpack = img.build_layer([img.file("zeros.bin", zeros=192 * 1024 * 1024)], "gzip")
    image = img.build_image([big_download, big_unpack])
    img.push_image(registry.url, "puller/large", "v1", image)
    root = str(tmp_path / "state")

    growth = _rss_growth_mib("pull", "--root", root, f"{registry.host}/puller/large:v1")

    snapshot_files = [p.stat().st_size for p in (tmp_path / "state" / "snapshots").rglob("*.bin")]
    assert sorted(snapshot_files) == [64 * 1024 * 1024, 192 * 1024 * 1024]
    print(f"peak RSS growth during the pull: {growth:.1f} MiB")
    assert growth < 48, f"peak RSS grew by {growth:.0f} MiB while pulling 256 MiB of layers"

    # and back out: the 64 MiB layer goes up in 16 MiB PATCHes streamed from the content store
    target = start_berth(tmp_path / "target")
    try:
        name = f"{target.host}/pushed/large:v1"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "berth",
                "tag",
                "--root",
                root,
                f"{registry.host}/puller/large:v1",
                name,
            ],
            check=True,
            timeout=60,
        )
        growth = _rss_growth_mib("push", "--root", root, name)
    finally:
        target.stop()
    print(f"peak RSS growth during the push: {growth:.1f} MiB")
    assert growth < 48, f"peak RSS grew by {growth:.0f} MiB while pushing 64 MiB of layers"
