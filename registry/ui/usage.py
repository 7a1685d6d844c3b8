"""Storage use, per namespace (a repository name's first component) and for the registry.

Counting it means reading every blob link, so it is not done per page view: one replica
(elected through a lease) recomputes a snapshot every `ui.usage.interval` into the
`storage_usage` table, and the storage page reads that. A namespace counts each blob once
however many of its repositories link it, plus its manifests' own bytes. The registry row
(namespace "") counts every blob the registry knows, linked or not, until garbage
collection removes the unreferenced ones.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, delete, distinct, func, insert, select
from sqlalchemy.sql.elements import ColumnElement

from registry.db import Database, WriteConnection
from registry.db.models import (
    blobs,
    manifests,
    repositories,
    repository_blobs,
    storage_usage,
    utcnow,
)
from registry.leases import Leases, run_as_leader
from registry.ui.paging import PageSpec
from registry.ui.times import as_utc

log = logging.getLogger(__name__)

REGISTRY: Final = ""  # the namespace key of the whole registry's row
LEASE: Final = "ui-storage-usage"


@dataclass(frozen=True, slots=True)
class Usage:
    namespace: str
    repositories: int
    blobs: int
    blob_bytes: int
    manifests: int
    manifest_bytes: int

    @property
    def total(self) -> int:
        return self.blob_bytes + self.manifest_bytes


@dataclass(frozen=True, slots=True)
class StorageUsage:
    registry: Usage | None  # None until the first snapshot
    computed: datetime | None
    namespaces: tuple[Usage, ...]  # this page of them, largest first
    namespace_count: int
    pages: int


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


async def compute_usage(db: Database) -> list[Usage]:
    """Every namespace's usage and the registry's (namespace REGISTRY), now."""
    ns = _namespace(db.engine.dialect.name).label("ns")
    linked = (
        select(ns, repository_blobs.c.digest, blobs.c.size)
        .distinct()
        .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
        .join(blobs, blobs.c.digest == repository_blobs.c.digest)
        .subquery()
    )
    counts: dict[str, dict[str, int]] = {}

    def add(namespace: str, **figures: int) -> None:
        counts.setdefault(namespace, {}).update(figures)

    # Reads every link: through the async engine, so on SQLite it runs in aiosqlite's thread
    # and never holds up the event loop (db.read() would run it in the loop's thread).
    async with db.engine.connect() as conn:
        for row in await conn.execute(
            select(ns, func.count(distinct(repositories.c.id)).label("n")).group_by(ns)
        ):
            add(row.ns, repositories=int(row.n))
        for row in await conn.execute(
            select(
                linked.c.ns, func.count().label("n"), func.sum(linked.c.size).label("bytes")
            ).group_by(linked.c.ns)
        ):
            add(row.ns, blobs=int(row.n), blob_bytes=int(row.bytes))
        for row in await conn.execute(
            select(ns, func.count().label("n"), func.sum(manifests.c.size).label("bytes"))
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .group_by(ns)
        ):
            add(row.ns, manifests=int(row.n), manifest_bytes=int(row.bytes))
        everything = (await conn.execute(_BLOB_TOTALS)).one()
        manifest_totals = (await conn.execute(_MANIFEST_TOTALS)).one()
    usage = [
        Usage(
            namespace,
            f.get("repositories", 0),
            f.get("blobs", 0),
            f.get("blob_bytes", 0),
            f.get("manifests", 0),
            f.get("manifest_bytes", 0),
        )
        for namespace, f in counts.items()
        if namespace != REGISTRY
    ]
    registry = Usage(
        REGISTRY,
        sum(u.repositories for u in usage),
        int(everything.n),
        int(everything.bytes),
        int(manifest_totals.n),
        int(manifest_totals.bytes),
    )
    return [registry, *usage]


async def refresh_usage(db: Database) -> None:
    """Replace the snapshot with figures computed now."""
    usage = await compute_usage(db)
    now = utcnow()
    rows = [
        {
            "namespace": u.namespace,
            "repositories": u.repositories,
            "blobs": u.blobs,
            "blob_bytes": u.blob_bytes,
            "manifests": u.manifests,
            "manifest_bytes": u.manifest_bytes,
            "computed_at": now,
        }
        for u in usage
    ]

    async def work(conn: WriteConnection) -> None:
        await conn.execute(delete(storage_usage))
        await conn.execute(insert(storage_usage), rows)  # executemany

    await db.transact(work)


async def keep_usage_fresh(db: Database, interval: float) -> None:
    """Forever, on whichever replica holds the lease: recompute every `interval` seconds."""

    async def job() -> None:
        while True:
            try:
                await refresh_usage(db)
            except Exception:
                log.exception("could not compute storage usage")
            await asyncio.sleep(max(interval, 1.0))

    await run_as_leader(Leases(db), LEASE, job)


_TOTAL = storage_usage.c.blob_bytes + storage_usage.c.manifest_bytes


def _usage(row: Any) -> Usage:
    return Usage(
        row.namespace,
        row.repositories,
        row.blobs,
        row.blob_bytes,
        row.manifests,
        row.manifest_bytes,
    )


async def read_usage(db: Database, page: PageSpec, per_namespace: bool) -> StorageUsage:
    """The snapshot: the registry's row, and a page of namespaces when `per_namespace`."""
    columns = [
        storage_usage.c.namespace,
        storage_usage.c.repositories,
        storage_usage.c.blobs,
        storage_usage.c.blob_bytes,
        storage_usage.c.manifests,
        storage_usage.c.manifest_bytes,
    ]
    async with db.read() as conn:
        top = (
            await conn.execute(
                select(*columns, storage_usage.c.computed_at).where(
                    storage_usage.c.namespace == REGISTRY
                )
            )
        ).first()
        rows: list[Any] = []
        count = 0
        if per_namespace:
            others = storage_usage.c.namespace != REGISTRY
            count = (await conn.execute(select(func.count()).where(others))).scalar_one()
            query = (
                select(*columns)
                .where(others)
                .order_by(_TOTAL.desc(), storage_usage.c.namespace)
                .limit(page.size)
                .offset(page.offset)
            )
            rows = list(await conn.execute(query))
    return StorageUsage(
        registry=_usage(top) if top is not None else None,
        computed=as_utc(top.computed_at) if top is not None else None,
        namespaces=tuple(_usage(row) for row in rows),
        namespace_count=count,
        pages=page.count(count),
    )
