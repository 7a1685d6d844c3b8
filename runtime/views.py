"""Read-only views of an image on the host (`berth mount`), through the same overlay code as
a container's root filesystem."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from runtime import _linux
from runtime.overlay import image_view, make_links


def mount_image(layers: Sequence[Path], target: Path, *, empty: Path, scratch: Path) -> None:
    """Mount `layers` (base first) read-only, nodev and nosuid, at `target`. Short layer
    links, when the layers need them, live in a temporary dir under `scratch` only while the
    kernel resolves them."""
    links = Path(tempfile.mkdtemp(prefix=".mount-", dir=scratch))
    try:
        overlay = image_view(layers, target, empty=empty, links=links / "l")
        make_links(overlay)
        _linux.apply(overlay.mount)
    finally:
        shutil.rmtree(links)


def unmount(target: Path) -> None:
    """Unmount what `mount_image` mounted at `target`."""
    _linux.umount2(str(target))
