"""Progress of a pull or a push, reported as events to a one-method sink."""

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
    # pushes (EXISTS too: the registry has the blob in the repository already)
    PREPARING = "preparing"  # the layer is about to be checked and sent
    PUSHING = "pushing"  # `done` bytes of `total` sent
    PUSHED = "pushed"
    MOUNTED = "mounted"  # linked from the repository in `detail`, no bytes sent


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    phase: Phase
    digest: Digest
    done: int = 0  # bytes so far (DOWNLOADING), or the layer's index (UNPACK*)
    total: int = 0  # expected bytes
    detail: str = ""


class ProgressSink(Protocol):
    """Receives pull and push events; called from the event loop, so it must not block."""

    def __call__(self, event: ProgressEvent) -> None: ...
