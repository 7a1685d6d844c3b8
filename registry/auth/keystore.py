"""The token signing key every replica shares, kept in the database.

Without `auth.token.signingkey` in the config, the key is a row of `shared_secrets`: the
first process to start generates it (or takes the key file an older single-host Berth left
at <datadir>/auth/token-signing-key.pem) and inserts it; every other worker and replica
reads that row, so they all issue and verify the same tokens. Racing starters each try an
INSERT .. ON CONFLICT DO NOTHING and then all read back the one row that won.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from registry.auth.jws import PrivateKey
from registry.config import DatabasePoolConfig
from registry.db import Database, WriteConnection, insert_ignore
from registry.db.models import shared_secrets

__all__ = ["load_shared_signing_key", "shared_signing_key"]

SIGNING_KEY: Final = "token-signing-key"


def _pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _load(pem: bytes, source: str) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{source}: the token signing key must be EC or RSA")
    return key


async def shared_signing_key(db: Database, seed: Path | None = None) -> PrivateKey:
    """The key in the database, created once: from the PEM file `seed` if it exists, else
    a new EC P-256 key."""
    query = select(shared_secrets.c.value).where(shared_secrets.c.name == SIGNING_KEY)
    async with db.read() as conn:
        stored = (await conn.execute(query)).scalar_one_or_none()
    if stored is None:
        seeded = await asyncio.to_thread(_read_seed, seed)
        pem = _pem(seeded or ec.generate_private_key(ec.SECP256R1()))

        async def work(conn: WriteConnection) -> str:
            await conn.execute(
                insert_ignore(conn, shared_secrets, ["name"]).values(name=SIGNING_KEY, value=pem)
            )
            return str((await conn.execute(query)).scalar_one())

        stored = await db.transact(work)
    return _load(str(stored).encode("ascii"), f"database {SIGNING_KEY}")


def _read_seed(seed: Path | None) -> PrivateKey | None:
    if seed is None or not seed.exists():
        return None
    return _load(seed.read_bytes(), str(seed))


def load_shared_signing_key(
    url: str, pool: DatabasePoolConfig | None = None, seed: Path | None = None
) -> PrivateKey:
    """`shared_signing_key` for synchronous callers (the app is being built, its event loop
    may be running): on a connection of its own, in a thread with its own loop."""
    result: list[PrivateKey] = []
    errors: list[BaseException] = []

    async def fetch() -> None:
        db = Database(url, pool)
        try:
            result.append(await shared_signing_key(db, seed))
        finally:
            await db.dispose()

    def run() -> None:
        try:
            asyncio.run(fetch())
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            errors.append(exc)

    thread = threading.Thread(target=run, name="berth-signing-key")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
