"""Progress of a pull, reported as events to a one-method sink."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from blobstore import Digest


class Phase(Enum):
    RESOLVED = "resolved"  # the manifest is known; `total` is the number of layers
    EXISTS = "already exists"  # the blob was in the local content store: nothing downloaded
    DOWNLOADING = "downloading"
    RETRYING = "retrying"  # a connection dropped or the registry asked to slow down
    DOWNLOADED = "downloaded"
    UNPACKING = "unpacking"
    UNPACKED = "unpacked"  # a new snapshot was created (or already existed)


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    phase: Phase
    digest: Digest
    done: int = 0  # bytes so far (DOWNLOADING), or the layer's index (UNPACK*)
    total: int = 0  # expected bytes
    detail: str = ""


class ProgressSink(Protocol):
    """Receives pull events; called from the event loop, so it must not block."""

    def __call__(self, event: ProgressEvent) -> None: ...
