"""Storage quotas: a limit per repository or per namespace, enforced where bytes get linked.

A scope's usage is the size of the distinct blobs linked into its repositories plus the size
of the distinct manifests stored in them, so a layer shared by ten repositories of a namespace
counts once toward the namespace (and once toward each repository). A namespace is a
repository name's first path component; `alpine` and `alpine/x` share the namespace `alpine`.

Two checks, each refusing with DENIED and a message that states the limit and the usage:

- `admit` runs before an upload publishes its bytes: a refused upload stores nothing.
- `enforce` runs inside the write transaction that links a blob or stores a manifest, after
  the insert: if the usage with the new rows is over a limit, the transaction rolls back.

Usage is a counter per scope that triggers keep in the same transaction as every link and
manifest insert or delete (migration 0006), so a check is one primary-key read. Two pushes
racing past a limit serialize on it: SQLite's write lock (BEGIN IMMEDIATE) orders whole
transactions; on PostgreSQL the second push's trigger waits on the counter row the first one
updated, adds to the committed value, and its check then reads its own updated row. A blob
that `admit` let through but `enforce` refused is published but linked nowhere; garbage
collection reclaims it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select

from blobstore import Digest
from registry.config import QuotaRule
from registry.db import Database, ReadConnection, WriteConnection
from registry.db.models import quota_contents, quota_usage, repositories
from registry.errcode import QUOTA_EXCEEDED, RegistryError
from registry.globs import matches_any

__all__ = ["Quotas", "Scope", "ScopeUsage", "format_bytes", "format_size", "namespace_of", "usage"]


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    kind: str  # "namespace" or "repository"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def key(self) -> str:
        """The scope's key in the quota_usage and quota_contents tables."""
        return f"{self.kind}:{self.name}"


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
    """Bytes in `scope`, each blob and manifest counted once: the counter the database's
    triggers keep (migration 0006), one primary-key read however large the scope."""
    query = select(quota_usage.c.bytes).where(quota_usage.c.scope == scope.key)
    return int((await conn.execute(query)).scalar_one_or_none() or 0)


async def _holds(conn: ReadConnection, scope: Scope, digest: str) -> bool:
    query = select(quota_contents.c.refs).where(
        quota_contents.c.scope == scope.key, quota_contents.c.digest == digest
    )
    return (await conn.execute(query)).first() is not None


def _detail(scope: Scope, limit: int, used: int) -> Mapping[str, object]:
    return {"scope": scope.kind, "name": scope.name, "limit": limit, "usage": used}
