"""Reading /etc/passwd through the snapshots as the overlay will show it (root: whiteouts are
0/0 character devices)."""

import os
import stat
from pathlib import Path

from runtime.layers import read_image_file


def _whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def test_top_layer_wins_and_whiteouts_hide(tmp_path: Path) -> None:
    base, mid, top = (tmp_path / n for n in ("base", "mid", "top"))
    for layer in (base, mid, top):
        (layer / "etc").mkdir(parents=True)
    (base / "etc" / "passwd").write_text("base\n")
    (mid / "etc" / "passwd").write_text("mid\n")
    (base / "etc" / "group").write_text("group\n")
    assert read_image_file([base, mid, top], "/etc/passwd") == "mid\n"
    assert read_image_file([base, mid, top], "/etc/group") == "group\n"
    _whiteout(top / "etc" / "group")
    assert read_image_file([base, mid, top], "/etc/group") is None
    assert read_image_file([base, mid, top], "/etc/shadow") is None


def test_a_whited_out_or_opaque_parent_hides_lower_files(tmp_path: Path) -> None:
    base, top = tmp_path / "base", tmp_path / "top"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "passwd").write_text("base\n")
    top.mkdir()
    _whiteout(top / "etc")
    assert read_image_file([base, top], "/etc/passwd") is None
    os.unlink(top / "etc")
    (top / "etc").mkdir()
    os.setxattr(top / "etc", "trusted.overlay.opaque", b"y")
    assert read_image_file([base, top], "/etc/passwd") is None
