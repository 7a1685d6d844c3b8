"""Where the filesystem driver keeps a committed blob (the layout is drawn in
`blobstore.filesystem`), as a pure function: readers that only need a path, such as
`berth run` opening an image config, need neither the driver nor asyncio."""

from __future__ import annotations

from pathlib import Path

from blobstore.digest import Digest


def blob_path(root: Path, digest: Digest) -> Path:
    """The file of `digest` in the filesystem blobstore at `root`."""
    return root / "blobs" / digest.algorithm / digest.hex[:2] / digest.hex
