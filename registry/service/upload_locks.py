"""Exclusive per-upload holds that every worker process and every replica sees.

Two requests must never append to one upload at once (a client retrying a chunk whose first
attempt is still in flight would otherwise get both appended). Each request that writes to an
upload holds the lease `upload:<id>` (registry.leases) for as long as it writes, renewing it
while alive. A replica that dies mid-chunk stops renewing, and after `ttl` seconds another
replica may take the upload over: the client's next request (GET for the offset, then PATCH
or PUT) finds it free.

A holder that was a process of this very machine (same boot, same PID namespace) and is no
longer running is known dead, so its lease is released at once instead of waiting for the
ttl: a server restarted after a crash resumes its uploads immediately, as it did with flock.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from registry.db import Database
from registry.leases import LeaseBusy, LeaseLost, Leases

UPLOAD_LEASE_TTL: Final = 15.0  # seconds a crashed replica's upload stays locked


class UploadBusy(Exception):
    """Another request holds the upload."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is being written by another request")
        self.upload_id = upload_id


@functools.cache
def _machine() -> str:
    """This boot of this machine and this PID namespace: where a PID means one process."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.readlink("/proc/self/ns/pid")
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:16]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead, just not yet reaped
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _known_dead(holder: str) -> bool:
    parts = holder.split(":")  # host:pid:machine:request
    if len(parts) != 4 or not parts[1].isdigit() or parts[2] != _machine():
        return False
    return int(parts[1]) != os.getpid() and not _running(int(parts[1]))


class UploadLocks:
    def __init__(self, db: Database, ttl: float = UPLOAD_LEASE_TTL) -> None:
        self._db = db
        self._ttl = ttl
        self._process = f"{socket.gethostname()}:{os.getpid()}:{_machine()}"

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        """Hold the upload, or raise UploadBusy at once if another request has it (or took
        it over from this one, which stalled past the ttl)."""
        name = f"upload:{upload_id}"
        # The holder is this request, not the process: two requests of one process exclude
        # each other too.
        leases = Leases(self._db, f"{self._process}:{secrets.token_hex(4)}")
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    await stack.enter_async_context(leases.hold(name, self._ttl))
                except LeaseBusy as busy:
                    if busy.holder is None or not _known_dead(busy.holder):
                        raise
                    await Leases(self._db, busy.holder).release(name)  # the dead one's only
                    await stack.enter_async_context(leases.hold(name, self._ttl))
                yield
        except (LeaseBusy, LeaseLost):
            raise UploadBusy(upload_id) from None
