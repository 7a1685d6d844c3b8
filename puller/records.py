"""Image records (reference -> manifest), kept in one JSON file replaced atomically.

Writers take an exclusive `flock` on `images.lock` around read-modify-write, so two `berth`
processes never lose each other's records; readers need no lock, since the file is only
ever replaced whole by `os.replace`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from blobstore import Digest


class ImageRecord(NamedTuple):
    """A pulled image. `manifest_digest` is the platform's image manifest; `index_digest`
    the index it was chosen from, if the reference named one."""

    reference: str
    manifest_digest: Digest
    config_digest: Digest
    layers: tuple[Digest, ...]
    chain_ids: tuple[Digest, ...]
    size: int  # unpacked bytes of all layers
    created: str  # the image config's `created`, or ""
    pulled: str  # when this record was written (RFC 3339, UTC)
    index_digest: Digest | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "manifest_digest": str(self.manifest_digest),
            "config_digest": str(self.config_digest),
            "layers": [str(d) for d in self.layers],
            "chain_ids": [str(d) for d in self.chain_ids],
            "size": self.size,
            "created": self.created,
            "pulled": self.pulled,
            "index_digest": str(self.index_digest) if self.index_digest else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecord:
        index = data.get("index_digest")
        return cls(
            reference=data["reference"],
            manifest_digest=Digest.parse(data["manifest_digest"]),
            config_digest=Digest.parse(data["config_digest"]),
            layers=tuple(Digest.parse(d) for d in data["layers"]),
            chain_ids=tuple(Digest.parse(d) for d in data["chain_ids"]),
            size=int(data["size"]),
            created=str(data.get("created", "")),
            pulled=str(data.get("pulled", "")),
            index_digest=Digest.parse(index) if index else None,
        )


class RecordStore:
    def __init__(self, root: Path) -> None:
        self._path = root / "images.json"
        self._lock = root / "images.lock"
        root.mkdir(parents=True, exist_ok=True)

    def all(self) -> list[ImageRecord]:
        try:
            document = json.loads(self._path.read_text())
        except FileNotFoundError:
            return []
        return [ImageRecord.from_json(item) for item in document.get("images", [])]

    def get(self, reference: str) -> ImageRecord | None:
        return next((r for r in self.all() if r.reference == reference), None)

    def put(self, record: ImageRecord) -> None:
        with self._locked():
            kept = [r for r in self.all() if r.reference != record.reference]
            self._write([*kept, record])

    def delete(self, reference: str) -> ImageRecord | None:
        with self._locked():
            records = self.all()
            found = next((r for r in records if r.reference == reference), None)
            if found is not None:
                self._write([r for r in records if r.reference != reference])
            return found

    def _write(self, records: list[ImageRecord]) -> None:
        tmp = self._path.with_name(f".images.{os.getpid()}.tmp")
        ordered = sorted(records, key=lambda r: r.reference)
        with open(tmp, "w") as f:
            json.dump({"version": 1, "images": [r.to_json() for r in ordered]}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
