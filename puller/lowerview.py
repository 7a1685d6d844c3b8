"""Read-only lookups in the lower snapshots of a layer being applied, as overlayfs sees them.

Snapshots hold overlay upper directories: a 0/0 character device is a whiteout, and a
directory with `trusted.overlay.opaque=y` hides what lower layers hold beneath it. `lookup`
walks the layers top first with the kernel's rules, never following a symlink.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

OPAQUE_XATTR: Final = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class LowerView:
    """The merged view of `layers` (snapshot fs dirs, top layer first)."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self.layers = list(layers)

    def lookup(self, relative: str) -> tuple[Path, os.stat_result] | None:
        """Where the merged view finds `relative` ("a/b"), with its lstat; None if it does
        not exist there (absent, whited out, or below a non-directory)."""
        parts = relative.split("/")
        for layer in self.layers:
            path = layer
            hidden_below = False
            for index, part in enumerate(parts):
                path = path / part
                st = _lstat(path)
                if st is None:
                    break
                if is_whiteout(st):
                    return None
                if index == len(parts) - 1:
                    return path, st
                if not stat.S_ISDIR(st.st_mode):
                    return None
                if is_opaque(path):
                    hidden_below = True
            if hidden_below:
                return None
        return None
