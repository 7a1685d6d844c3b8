"""The secret every replica shares: Distribution's `http.secret`, and keys derived from it.

Whatever must be secret and identical on every replica (signed cookies, signed upload
state) is derived from one secret with `derive(secret, purpose)`, so one purpose's key
never serves another. Distribution makes up a random secret per process when `http.secret`
is unset, which breaks as soon as there are two; Berth instead creates a random one once, in
the database, and every replica reads that.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from sqlalchemy import select

from registry.db import Database, WriteConnection, insert_ignore
from registry.db.models import shared_secrets

__all__ = ["derive", "http_secret"]

HTTP_SECRET: Final = "http-secret"


def derive(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for `purpose` (e.g. "ui-session-cookie"), from the shared secret."""
    return hmac.new(secret, b"berth:" + purpose.encode(), hashlib.sha256).digest()


async def http_secret(db: Database, configured: str) -> bytes:
    """`http.secret` if configured; else the random secret in the database, created once."""
    if configured:
        return configured.encode()
    query = select(shared_secrets.c.value).where(shared_secrets.c.name == HTTP_SECRET)
    async with db.read() as conn:
        stored = (await conn.execute(query)).scalar_one_or_none()
    if stored is None:
        fresh = secrets.token_urlsafe(48)

        async def work(conn: WriteConnection) -> str:
            await conn.execute(
                insert_ignore(conn, shared_secrets, ["name"]).values(name=HTTP_SECRET, value=fresh)
            )
            return str((await conn.execute(query)).scalar_one())

        stored = await db.transact(work)
    return str(stored).encode()
