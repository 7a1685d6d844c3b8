"""Read a file of an image from its unpacked snapshots, top layer first, honouring whiteouts."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path


def _whiteout(path: Path) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def _opaque(directory: Path) -> bool:
    try:
        return os.getxattr(directory, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


def read_image_file(layers: Sequence[Path], path: str, limit: int = 1 << 20) -> str | None:
    """The text of `path` as the merged root would show it, or None when absent."""
    rel = path.lstrip("/")
    for layer in reversed(layers):  # top first
        candidate = layer / rel
        if _whiteout(candidate):
            return None
        if candidate.is_file() and not candidate.is_symlink():
            with open(candidate, "rb") as f:
                return f.read(limit).decode(errors="replace")
        parents = [layer / p for p in Path(rel).parents if str(p) != "."]
        if any(_whiteout(p) or (p.is_dir() and _opaque(p)) for p in parents):
            return None
    return None
