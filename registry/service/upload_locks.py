"""Exclusive per-upload holds that every worker process and every replica sees.

Two requests must never append to one upload at once (a client retrying a chunk whose first
attempt is still in flight would otherwise get both appended). Each request that writes to an
upload holds the lease `upload:<id>` (registry.leases) for as long as it writes, renewing it
while alive. A replica that dies mid-chunk stops renewing, and after `ttl` seconds another
replica may take the upload over: the client's next request (GET for the offset, then PATCH
or PUT) finds it free.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Final

from registry.db import Database
from registry.leases import LeaseBusy, LeaseLost, Leases, process_identity

UPLOAD_LEASE_TTL: Final = 15.0  # seconds a crashed replica's upload stays locked


class UploadBusy(Exception):
    """Another request holds the upload."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is being written by another request")
        self.upload_id = upload_id


class UploadLocks:
    def __init__(self, db: Database, ttl: float = UPLOAD_LEASE_TTL) -> None:
        self._db = db
        self._ttl = ttl
        self._process = process_identity()

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        """Hold the upload, or raise UploadBusy at once if another request has it (or took
        it over from this one, which stalled past the ttl)."""
        # The holder is this request, not the process: two requests of one process exclude
        # each other too.
        leases = Leases(self._db, f"{self._process}:{secrets.token_hex(4)}")
        try:
            async with leases.hold(f"upload:{upload_id}", self._ttl):
                yield
        except (LeaseBusy, LeaseLost):
            raise UploadBusy(upload_id) from None
