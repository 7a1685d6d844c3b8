"""The push side of online garbage collection (docs/gc.md).

Bytes are published only under a pin: `pin_blob` runs, in one transaction, an upsert of the
blob's row, a share lock on it and a check that garbage collection is not deleting it, and
records the pin. The collector marks a blob `deleting` only in a transaction that locks the
row and finds no pin, link or reference, so a pinned blob's bytes stay until `link_blob`
(or `unpin_blob`) releases the pin. A blob being deleted is waited for: once its row is gone
the upload publishes fresh bytes.
"""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import timedelta
from typing import Final

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.sql.dml import Insert

from blobstore import BlobInfo, Digest
from registry.db import Database, WriteConnection, dialect_insert, insert_ignore
from registry.db.models import blob_pins, blobs, repository_blobs, utcnow
from registry.errcode import BLOB_UPLOAD_INVALID, TOOMANYREQUESTS, RegistryError

LIVE: Final = "live"
DELETING: Final = "deleting"
PIN_TTL: Final = timedelta(hours=1)  # outlives any commit; a crashed worker's pin expires
_WAIT_FOR_DELETION: Final = 60.0  # seconds; a collector deletes a batch in well under this

# Built once: every push runs these (see registry.db.insert_ignore).
_UNPIN = delete(blob_pins).where(
    blob_pins.c.digest == bindparam("_digest"), blob_pins.c.holder == bindparam("_holder")
)
_LINK_LIVE = (
    update(blobs)
    .where(blobs.c.digest == bindparam("_digest"), blobs.c.state == LIVE)
    .values(size=bindparam("_size"), touched_at=bindparam("_now"))
)


@functools.cache
def _pin_if_live(dialect: str) -> Insert:
    """Pin a blob whose row is live, under a share lock on that row (which a collection
    marking the blob waits for, and which waits for one); rowcount 0: not pinned."""
    live = (
        select(
            bindparam("_digest", type_=blob_pins.c.digest.type),
            bindparam("_holder", type_=blob_pins.c.holder.type),
            bindparam("_expires", type_=blob_pins.c.expires_at.type),
        )
        .where(blobs.c.digest == bindparam("_digest"), blobs.c.state == LIVE)
        .with_for_update(read=True)
    )
    pin = dialect_insert(dialect, blob_pins).from_select(["digest", "holder", "expires_at"], live)
    return pin.on_conflict_do_update(  # type: ignore[no-any-return]  # dialect inserts are untyped
        index_elements=["digest", "holder"], set_={"expires_at": pin.excluded.expires_at}
    )


async def try_pin(conn: WriteConnection, digest: Digest, size: int, holder: str) -> bool:
    """`pin_blob`'s one attempt, in the caller's transaction: False, pinning nothing, while a
    collection is deleting the blob. `size` is recorded only for a blob new to the database
    (`link_blob` records the size of the bytes published)."""
    await conn.execute(
        insert_ignore(conn, blobs, ["digest"]), {"digest": str(digest), "size": size}
    )
    # Not pinned while the row is `deleting`, or gone (a collection deleted it after our
    # insert found it).
    values = {"_digest": str(digest), "_holder": holder, "_expires": utcnow() + PIN_TTL}
    return (await conn.execute(_pin_if_live(conn.dialect.name), values)).rowcount == 1


async def pin_blob(db: Database, digest: Digest, size: int, holder: str) -> None:
    """Keep garbage collection off `digest` until `link_blob`/`unpin_blob` for `holder`.
    Waits while a collection is deleting the blob's current bytes."""
    deadline = time.monotonic() + _WAIT_FOR_DELETION
    delay = 0.01
    while not await db.transact(lambda conn: try_pin(conn, digest, size, holder)):
        if time.monotonic() > deadline:
            raise RegistryError(
                TOOMANYREQUESTS,
                detail={"digest": str(digest), "reason": "being garbage-collected; retry"},
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def unpin_blob(conn: WriteConnection, digest: Digest, holder: str) -> None:
    await conn.execute(_UNPIN, {"_digest": str(digest), "_holder": holder})


async def link_blob(
    conn: WriteConnection, repo_id: int, info: BlobInfo, *, pinned: bool = False
) -> None:
    """Record `info` (whose bytes are published) as linked into the repository. Refused when
    garbage collection is deleting the blob, which a pin taken before publishing prevents.
    `pinned`: the caller holds a pin, so the blob's row exists (and is checked all the same)."""
    digest = str(info.digest)
    if not pinned:
        await conn.execute(
            insert_ignore(conn, blobs, ["digest"]), {"digest": digest, "size": info.size}
        )
    result = await conn.execute(
        _LINK_LIVE, {"_digest": digest, "_size": info.size, "_now": utcnow()}
    )
    if result.rowcount != 1:
        raise RegistryError(
            BLOB_UPLOAD_INVALID,
            detail={"digest": digest, "reason": "garbage-collected during the upload"},
        )
    await conn.execute(
        insert_ignore(conn, repository_blobs, ["repository_id", "digest"]),
        {"repository_id": repo_id, "digest": digest},
    )


async def link_existing_blob(conn: WriteConnection, repo_id: int, digest: Digest) -> bool:
    """Link a blob some repository already links (a mount). False when no link is left or
    garbage collection is deleting it: its bytes may be gone."""
    linked = select(repository_blobs.c.digest).where(repository_blobs.c.digest == str(digest))
    result = await conn.execute(
        update(blobs)
        .where(blobs.c.digest == str(digest), blobs.c.state == LIVE, linked.exists())
        .values(touched_at=utcnow())
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        insert_ignore(conn, repository_blobs, ["repository_id", "digest"]).values(
            repository_id=repo_id, digest=str(digest)
        )
    )
    return True
