"""Overlay mount options for a read-only view of an image (pure)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from puller.errors import PullerError

# The kernel takes mount options in one page.
MAX_OPTIONS: Final = 4095


def readonly_overlay_options(layer_dirs: Sequence[Path], empty: Path, base: Path) -> str:
    """`ro,lowerdir=TOP:...:BASE` for `layer_dirs` (base first), with paths relative to
    `base` (the mount runs with `base` as its working dir) to fit more layers in a page.
    overlayfs needs two lowerdirs without an upperdir, so `empty` pads a one-layer image."""
    dirs = [*reversed(layer_dirs)]
    if len(dirs) < 2:
        dirs.append(empty)
    relative = [os.path.relpath(d, base) for d in dirs]
    for path in relative:
        if any(c in path for c in ":,\\"):
            raise PullerError(f"snapshot path {path!r} cannot be used in overlay options")
    options = "ro,lowerdir=" + ":".join(relative)
    if len(options) > MAX_OPTIONS:
        raise PullerError(f"{len(layer_dirs)} layers do not fit in one overlay mount")
    return options
