"""Exclusive per-upload locks that every worker process on this host sees.

Two requests must never append to one upload at once (a client retrying a chunk whose first
attempt is still in flight would otherwise get both appended). Each upload has a lock file;
`flock` on it is exclusive across processes, and the kernel drops it when its holder dies, so
a crash never leaves an upload locked. Replicas on several hosts will need a SQL lease instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

_UPLOAD_ID: Final = re.compile(r"[0-9a-f]{32}")


class UploadBusy(Exception):
    """Another request holds the upload."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is being written by another request")
        self.upload_id = upload_id


class UploadLocks:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadBusy(upload_id)
        return self._directory / upload_id

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        """Hold the upload's lock, or raise UploadBusy at once if another request has it."""
        # A tiny local file: opening it inline is cheaper than a thread hop.
        fd = os.open(self._path(upload_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UploadBusy(upload_id) from None
        try:
            yield
        finally:
            os.close(fd)  # releases the flock

    async def forget(self, upload_id: str) -> None:
        """Remove the lock file of an upload that is finished."""
        with contextlib.suppress(FileNotFoundError, UploadBusy):
            os.unlink(self._path(upload_id))

    async def ids(self) -> list[str]:
        names = await asyncio.to_thread(os.listdir, self._directory)
        return [name for name in names if _UPLOAD_ID.fullmatch(name)]
