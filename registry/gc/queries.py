"""What garbage collection may remove, as SQL conditions over the metadata tables.

Each condition is evaluated twice: once to list candidates (a read, in keyset batches), and
again inside the transaction that removes or marks them, after their rows are locked, so a
push that committed in between is always seen (docs/gc.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CTE, ColumnElement, Select, and_, exists, func, or_, select, union_all

from registry.db.models import (
    blob_pins,
    blobs,
    manifest_references,
    manifests,
    repository_blobs,
    tags,
)
from registry.service.pins import LIVE


def last_activity() -> ColumnElement[datetime]:
    """When the blob was last uploaded, mounted or found by HEAD (else created)."""
    return func.coalesce(blobs.c.touched_at, blobs.c.created_at)


def reached_manifests(cutoff: datetime, repo_ids: Sequence[int] | None = None) -> CTE:
    """Manifests a tag reaches, or one pushed after `cutoff`, through index children and
    referrers (a manifest whose `subject` is reached is reached too)."""
    parent, child = manifests.alias("parent"), manifests.alias("child")
    ref = manifest_references.alias("ref")
    subject, referrer = manifests.alias("subject"), manifests.alias("referrer")
    children = select(parent.c.id.label("parent"), child.c.id.label("child")).select_from(
        parent.join(ref, and_(ref.c.manifest_id == parent.c.id, ref.c.kind == "manifest")).join(
            child,
            and_(child.c.repository_id == parent.c.repository_id, child.c.digest == ref.c.digest),
        )
    )
    referrers = select(subject.c.id, referrer.c.id).select_from(
        subject.join(
            referrer,
            and_(
                referrer.c.repository_id == subject.c.repository_id,
                referrer.c.subject_digest == subject.c.digest,
            ),
        )
    )
    roots = select(manifests.c.id.label("id")).where(
        or_(
            manifests.c.created_at >= cutoff,
            exists(select(tags.c.name).where(tags.c.manifest_id == manifests.c.id)),
        )
    )
    if repo_ids is not None:
        children = children.where(parent.c.repository_id.in_(repo_ids))
        referrers = referrers.where(subject.c.repository_id.in_(repo_ids))
        roots = roots.where(manifests.c.repository_id.in_(repo_ids))
    edges = union_all(children, referrers).cte("edges")
    reached = roots.cte("reached", recursive=True)
    return reached.union(
        select(edges.c.child).select_from(edges.join(reached, edges.c.parent == reached.c.id))
    )


def doomed_manifests(cutoff: datetime, repo_ids: Sequence[int] | None = None) -> Select[tuple[int]]:
    """Ids of the manifests `reached_manifests` does not reach (in `repo_ids`, if given)."""
    reached = reached_manifests(cutoff, repo_ids)
    query = select(manifests.c.id).where(manifests.c.id.not_in(select(reached.c.id)))
    if repo_ids is not None:
        query = query.where(manifests.c.repository_id.in_(repo_ids))
    return query


def link_removable(cutoff: datetime, doomed: Select[tuple[int]] | None) -> ColumnElement[bool]:
    """For a `repository_blobs` row: no manifest of its repository references the blob (none
    that survives, when `doomed` lists manifests a dry run pretends are gone), and neither the
    link nor the blob was created or touched since `cutoff`."""
    referencing = (
        select(manifest_references.c.digest)
        .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
        .where(
            manifest_references.c.digest == repository_blobs.c.digest,
            manifests.c.repository_id == repository_blobs.c.repository_id,
        )
    )
    if doomed is not None:
        referencing = referencing.where(manifests.c.id.not_in(doomed))
    recent_blob = select(blobs.c.digest).where(
        blobs.c.digest == repository_blobs.c.digest, last_activity() >= cutoff
    )
    return and_(repository_blobs.c.created_at < cutoff, ~exists(recent_blob), ~exists(referencing))


def blob_removable(
    cutoff: datetime, now: datetime, doomed: Select[tuple[int]] | None
) -> ColumnElement[bool]:
    """For a `blobs` row: live, untouched since `cutoff`, unpinned, referenced by no manifest
    and linked nowhere. With `doomed` (a dry run), references from doomed manifests and links
    the link rule would remove do not count."""
    referencing = select(manifest_references.c.digest).where(
        manifest_references.c.digest == blobs.c.digest
    )
    links = select(repository_blobs.c.digest).where(repository_blobs.c.digest == blobs.c.digest)
    if doomed is not None:
        referencing = referencing.where(manifest_references.c.manifest_id.not_in(doomed))
        links = links.where(repository_blobs.c.created_at >= cutoff)
    pins = select(blob_pins.c.digest).where(
        blob_pins.c.digest == blobs.c.digest, blob_pins.c.expires_at > now
    )
    return and_(
        blobs.c.state == LIVE,
        last_activity() < cutoff,
        ~exists(referencing),
        ~exists(links),
        ~exists(pins),
    )
