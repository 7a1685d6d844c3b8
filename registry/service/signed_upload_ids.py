"""Upload ids the registry signs, so that starting an upload writes nothing.

POST /v2/<name>/blobs/uploads/ answers with an id that says when it was issued, under an HMAC
(of the repository's name too) with a key every replica derives from the shared secret
(registry.shared_secret). The session's row is written by the first request that sends bytes
or cancels, in the transaction that takes its hold (registry.service.upload_locks): a push of
many small blobs, a POST and a PUT each, saves a write transaction per blob. An id of another
repository, made up, or older than the upload purging age is unknown, as a purged session's is.
The row of a session that ended is kept, ended, until its id would have expired, so that
the id does not start it again.

The id keeps the blobstore's form (32 hex digits, 16 bytes): the second it was issued
(4 bytes), 6 random bytes and the first 6 bytes of HMAC-SHA256(key, repository, the 10 before).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from typing import Final

from blobstore.upload_ids import UPLOAD_ID

PURPOSE: Final = "upload-id"  # registry.shared_secret.derive(secret, PURPOSE)
_ISSUED: Final = struct.Struct(">I")
_SIGNED: Final = 10  # bytes: issued + random
_MAC: Final = 6


class SignedUploadIds:
    def __init__(self, key: bytes, max_age: float) -> None:
        self._key = key
        self._max_age = max_age  # seconds an id stays valid without a session row

    def new(self, repo: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        head = _ISSUED.pack(issued) + os.urandom(_SIGNED - _ISSUED.size)
        return (head + self._mac(repo, head)).hex()

    def issued(self, upload_id: str, repo: str, now: float | None = None) -> bool:
        """Whether this registry issued `upload_id` for `repo`, and it has not expired."""
        if UPLOAD_ID.fullmatch(upload_id) is None:
            return False
        raw = bytes.fromhex(upload_id)
        head = raw[:_SIGNED]
        if not hmac.compare_digest(raw[_SIGNED:], self._mac(repo, head)):
            return False
        issued: int = _ISSUED.unpack_from(head)[0]
        age = (time.time() if now is None else now) - issued
        return -60 <= age <= self._max_age  # a minute of clock skew between replicas

    def _mac(self, repo: str, head: bytes) -> bytes:
        message = repo.encode() + b"\0" + head
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC]
