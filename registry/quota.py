"""Storage quotas: a limit per repository or per namespace, enforced where bytes get linked.

A scope's usage is the size of the distinct blobs linked into its repositories plus the size
of the distinct manifests stored in them, so a layer shared by ten repositories of a namespace
counts once toward the namespace (and once toward each repository). A namespace is a
repository name's first path component; `alpine` and `alpine/x` share the namespace `alpine`.

Two checks, each refusing with DENIED and a message that states the limit and the usage:

- `admit` runs before an upload publishes its bytes: a refused upload stores nothing.
- `enforce` runs inside the write transaction that links a blob or stores a manifest, after
  the insert: if the usage with the new rows is over a limit, the transaction rolls back.
  Two pushes racing past a limit serialize there. SQLite's write lock (BEGIN IMMEDIATE) does
  it; on PostgreSQL a transaction-scoped advisory lock per scope, taken just before the usage
  query, makes the second push wait for the first to commit, and under READ COMMITTED its
  usage query (a fresh snapshot) then counts the first push's rows. Scopes are locked in one
  order, so two pushes never wait on each other. A blob that `admit` let through but
  `enforce` refused is published but linked nowhere; garbage collection reclaims it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.sql import Select

from blobstore import Digest
from registry.config import QuotaRule
from registry.db import Database, ReadConnection, WriteConnection
from registry.db.models import blobs, manifests, repositories, repository_blobs
from registry.errcode import QUOTA_EXCEEDED, RegistryError
from registry.globs import matches_any

__all__ = ["Quotas", "Scope", "ScopeUsage", "format_bytes", "format_size", "namespace_of", "usage"]

_LOCK_PREFIX: Final = "berth-quota:"


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    kind: str  # "namespace" or "repository"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    scope: Scope
    limit: int
    used: int


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def format_size(size: int) -> str:
    """`1.5 MiB`, in binary units as limits are usually written."""
    value, unit = float(size), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    if unit == "bytes":
        return "1 byte" if size == 1 else f"{size} bytes"
    return f"{value:.1f} {unit}"


def format_bytes(size: int) -> str:
    """`1.5 MiB (1572864 bytes)`: readable, and exact for whoever compares with the limit."""
    short = format_size(size)
    return short if short.endswith(("byte", "bytes")) else f"{short} ({size} bytes)"


class Quotas:
    """The `quotas:` rules. With none configured, every check returns without a query."""

    def __init__(self, rules: Iterable[QuotaRule] = ()) -> None:
        self._rules = tuple(rules)

    def limits(self, repository: str) -> dict[Scope, int]:
        """The scopes a push to `repository` counts toward, each with its smallest limit."""
        found: dict[Scope, int] = {}
        for rule in self._rules:
            if not matches_any(rule.repositories, repository):
                continue
            name = repository if rule.scope == "repository" else namespace_of(repository)
            scope = Scope(rule.scope, name)
            found[scope] = min(rule.limit, found.get(scope, rule.limit))
        return found

    async def admit(self, db: Database, repository: str, digest: Digest, size: int) -> None:
        """Refuse, before it is published, a blob of `size` bytes that would go over a limit
        (a blob the scope holds already adds nothing)."""
        limits = self.limits(repository)
        if not limits:
            return
        async with db.read() as conn:
            for scope, limit in sorted(limits.items()):
                used = await usage(conn, scope)
                held = await _holds(conn, scope, str(digest))
                if not held and used + size > limit:
                    raise RegistryError(
                        QUOTA_EXCEEDED,
                        message=f"storage quota exceeded: {scope} has a limit of "
                        f"{format_bytes(limit)} and uses {format_bytes(used)}; this blob needs "
                        f"{format_bytes(size)} more",
                        detail={**_detail(scope, limit, used), "needed": size},
                    )

    async def enforce(self, conn: WriteConnection, repository: str) -> None:
        """Inside the transaction that just linked a blob or stored a manifest in
        `repository`: roll it back (DENIED) if a scope is now over its limit."""
        for scope, limit in sorted(self.limits(repository).items()):
            await _lock(conn, scope)
            used = await usage(conn, scope)
            if used > limit:
                raise RegistryError(
                    QUOTA_EXCEEDED,
                    message=f"storage quota exceeded: {scope} has a limit of "
                    f"{format_bytes(limit)}; with this push it would use {format_bytes(used)}",
                    detail=_detail(scope, limit, used),
                )

    async def report(self, conn: ReadConnection) -> list[ScopeUsage]:
        """Every scope with a limit and at least one repository, with its usage."""
        limits: dict[Scope, int] = {}
        names = await conn.execute(select(repositories.c.name).order_by(repositories.c.name))
        for name in names.scalars():
            for scope, limit in self.limits(name).items():
                limits[scope] = min(limit, limits.get(scope, limit))
        return [
            ScopeUsage(scope, limit, await usage(conn, scope))
            for scope, limit in sorted(limits.items())
        ]


async def usage(conn: ReadConnection, scope: Scope) -> int:
    """Bytes in `scope`, each blob and each manifest counted once (SQL aggregates)."""
    ids = _repository_ids(scope)
    linked = select(repository_blobs.c.digest).where(repository_blobs.c.repository_id.in_(ids))
    blob_bytes = (
        select(func.coalesce(func.sum(blobs.c.size), 0))
        .where(blobs.c.digest.in_(linked))
        .scalar_subquery()
    )
    stored = (
        select(manifests.c.digest, manifests.c.size)
        .where(manifests.c.repository_id.in_(ids))
        .distinct()
        .subquery()
    )
    manifest_bytes = select(func.coalesce(func.sum(stored.c.size), 0)).scalar_subquery()
    return int((await conn.execute(select(blob_bytes + manifest_bytes))).scalar_one())


def _repository_ids(scope: Scope) -> Select[tuple[int]]:
    name = repositories.c.name
    where: ColumnElement[bool] = name == scope.name
    if scope.kind == "namespace":
        where = or_(where, name.startswith(scope.name + "/", autoescape=True))
    return select(repositories.c.id).where(where)


async def _holds(conn: ReadConnection, scope: Scope, digest: str) -> bool:
    query = select(
        exists().where(
            repository_blobs.c.digest == digest,
            repository_blobs.c.repository_id.in_(_repository_ids(scope)),
        )
    )
    return bool((await conn.execute(query)).scalar_one())


async def _lock(conn: WriteConnection, scope: Scope) -> None:
    """Serialize quota checks of one scope across PostgreSQL transactions (until commit)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: the transaction already holds the database's only write lock
    name = f"{_LOCK_PREFIX}{scope.kind}:{scope.name}".encode()
    key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
    await conn.execute(select(func.pg_advisory_xact_lock(key)))


def _detail(scope: Scope, limit: int, used: int) -> Mapping[str, object]:
    return {"scope": scope.kind, "name": scope.name, "limit": limit, "usage": used}
