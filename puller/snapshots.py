"""Snapshot directories, one per chain ID: the unpacked layers, ready as overlay lowerdirs.

    <root>/snapshots/
    ├── <chain-id hex>/
    │   ├── fs/               the layer as an overlayfs upper dir (whiteouts as 0/0 devices)
    │   └── metadata.json     chain_id, parent, diff_id, layer digest, size, created
    ├── .tmp-<random>/        a snapshot being unpacked; never used; swept by `prune`
    └── .empty/               an empty dir, to pad overlay mounts of one-layer images

A snapshot appears under its chain ID only by a rename of a complete temporary directory,
so a half-unpacked layer is never seen; when two pulls race, the second rename loses and its
copy is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

from blobstore import Digest, InvalidDigest

_TMP_PREFIX: Final = ".tmp-"


class SnapshotInfo(NamedTuple):
    chain_id: str
    parent: str | None
    diff_id: str
    layer: str
    size: int
    created: str


class SnapshotStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, chain_id: Digest) -> Path:
        return self.root / chain_id.hex

    def fs(self, chain_id: Digest) -> Path:
        return self.path(chain_id) / "fs"

    def empty_dir(self) -> Path:
        """An empty directory (overlayfs wants two lowerdirs when there is no upperdir)."""
        path = self.root / ".empty"
        path.mkdir(exist_ok=True)
        return path

    def exists(self, chain_id: Digest) -> bool:
        return (self.path(chain_id) / "metadata.json").is_file()

    def info(self, chain_id: Digest) -> SnapshotInfo:
        document = json.loads((self.path(chain_id) / "metadata.json").read_text())
        return SnapshotInfo(**document)

    @contextlib.contextmanager
    def prepare(self) -> Iterator[Path]:
        """A fresh temporary snapshot dir (with an empty `fs/`), deleted on exit unless
        `commit` renamed it away."""
        tmp = self.root / f"{_TMP_PREFIX}{os.urandom(16).hex()}"
        (tmp / "fs").mkdir(parents=True)
        os.chmod(tmp / "fs", 0o755)
        try:
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    def commit(self, tmp: Path, info: SnapshotInfo) -> None:
        (tmp / "metadata.json").write_text(json.dumps(info._asdict(), indent=2))
        target = self.path(Digest.parse(info.chain_id))
        try:
            os.rename(tmp, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # another pull committed the same chain ID first: identical content

    def remove(self, chain_id: Digest) -> None:
        path = self.path(chain_id)
        if path.exists():
            doomed = self.root / f"{_TMP_PREFIX}{os.urandom(16).hex()}"
            os.rename(path, doomed)  # vanish at once, then delete at leisure
            shutil.rmtree(doomed)

    def walk(self) -> list[Digest]:
        found: list[Digest] = []
        for entry in os.scandir(self.root):
            if entry.name.startswith(_TMP_PREFIX):
                continue
            with contextlib.suppress(InvalidDigest):
                found.append(Digest("sha256", entry.name))
        return found

    def sweep_temporaries(self, older_than: float) -> int:
        """Delete temporary dirs (left by interrupted pulls) last modified before the
        timestamp `older_than`; returns how many."""
        count = 0
        for entry in os.scandir(self.root):
            if entry.name.startswith(_TMP_PREFIX) and entry.stat().st_mtime < older_than:
                shutil.rmtree(entry.path, ignore_errors=True)
                count += 1
        return count
