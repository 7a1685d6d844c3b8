"""What one garbage collection pass removed (or, dry, would remove)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["manifest", "link", "blob", "upload", "ingest"]


@dataclass(frozen=True, slots=True)
class Removal:
    """One thing removed: a manifest or link names its repository; a blob frees `size` bytes;
    an upload is an expired session and an ingest the data of a one-request upload whose
    process died (`digest` holds their id)."""

    kind: Kind
    digest: str
    repository: str | None = None
    size: int = 0


OnRemoval = Callable[[Removal], None]


@dataclass(slots=True)
class GCReport:
    """Counts only, so a pass over any store keeps its memory flat; each removal is also
    handed to the caller's `on_removal` as it happens."""

    dry_run: bool
    manifests: int = 0
    links: int = 0
    blobs: int = 0
    uploads: int = 0
    ingests: int = 0
    bytes_freed: int = 0
    seconds: float = 0.0

    def add(self, removal: Removal) -> None:
        if removal.kind == "manifest":
            self.manifests += 1
        elif removal.kind == "link":
            self.links += 1
        elif removal.kind == "blob":
            self.blobs += 1
            self.bytes_freed += removal.size
        elif removal.kind == "upload":
            self.uploads += 1
        else:
            self.ingests += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "removed": {
                "manifests": self.manifests,
                "links": self.links,
                "blobs": self.blobs,
                "uploads": self.uploads,
                "ingests": self.ingests,
            },
            "bytes_freed": self.bytes_freed,
            "seconds": round(self.seconds, 3),
        }
