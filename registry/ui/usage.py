"""Storage use: the whole store, and per namespace (a repository name's first component).

A namespace's usage counts each blob once however many of its repositories link it, plus its
manifests' own bytes. The total counts every blob the registry knows, linked or not (until
garbage collection removes the unreferenced ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case, distinct, func, select
from sqlalchemy.sql.elements import ColumnElement

from registry.db import Database
from registry.db.models import blobs, manifests, repositories, repository_blobs
from registry.ui.pages import PageSpec


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    name: str
    repositories: int
    blob_bytes: int
    manifest_bytes: int

    @property
    def total(self) -> int:
        return self.blob_bytes + self.manifest_bytes


@dataclass(frozen=True, slots=True)
class StorageUsage:
    blobs: int
    blob_bytes: int
    manifests: int
    manifest_bytes: int
    repositories: int
    namespaces: tuple[NamespaceUsage, ...]  # this page of them, largest first
    namespace_count: int
    pages: int

    @property
    def total(self) -> int:
        return self.blob_bytes + self.manifest_bytes


def _namespace(dialect: str) -> ColumnElement[str]:
    name = repositories.c.name
    if dialect == "postgresql":
        return func.split_part(name, "/", 1)
    slash = func.instr(name, "/")
    return case((slash > 0, func.substr(name, 1, slash - 1)), else_=name)


_BLOB_TOTALS = select(
    func.count().label("n"), func.coalesce(func.sum(blobs.c.size), 0).label("bytes")
)
_MANIFEST_TOTALS = select(
    func.count().label("n"), func.coalesce(func.sum(manifests.c.size), 0).label("bytes")
)


async def storage_usage(
    db: Database, page: PageSpec, may_pull: Callable[[str], bool] | None
) -> StorageUsage:
    ns = _namespace(db.engine.dialect.name).label("ns")
    linked = (
        select(ns, repository_blobs.c.digest)
        .distinct()
        .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
        .subquery()
    )
    async with db.read() as conn:
        stored = (await conn.execute(_BLOB_TOTALS)).one()
        manifest_stored = (await conn.execute(_MANIFEST_TOTALS)).one()
        repo_counts = {
            row.ns: int(row.repos)
            for row in await conn.execute(
                select(ns, func.count(distinct(repositories.c.id)).label("repos")).group_by(ns)
            )
        }
        blob_use = {
            row.ns: int(row.size)
            for row in await conn.execute(
                select(linked.c.ns, func.sum(blobs.c.size).label("size"))
                .join(blobs, blobs.c.digest == linked.c.digest)
                .group_by(linked.c.ns)
            )
        }
        manifest_use = {
            row.ns: int(row.size)
            for row in await conn.execute(
                select(ns, func.sum(manifests.c.size).label("size"))
                .join(repositories, repositories.c.id == manifests.c.repository_id)
                .group_by(ns)
            )
        }
        visible: set[str] | None = None
        if may_pull is not None:
            names = (await conn.execute(select(repositories.c.name))).scalars()
            visible = {name.split("/", 1)[0] for name in names if may_pull(name)}
    usage = [
        NamespaceUsage(name, count, blob_use.get(name, 0), manifest_use.get(name, 0))
        for name, count in repo_counts.items()
        if visible is None or name in visible
    ]
    usage.sort(key=lambda u: (-u.total, u.name))
    return StorageUsage(
        blobs=int(stored.n),
        blob_bytes=int(stored.bytes),
        manifests=int(manifest_stored.n),
        manifest_bytes=int(manifest_stored.bytes),
        repositories=sum(repo_counts.values()),
        namespaces=tuple(usage[page.offset : page.offset + page.size]),
        namespace_count=len(usage),
        pages=page.count(len(usage)),
    )
