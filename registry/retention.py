"""Retention: delete the tags that the `retention:` rules no longer keep.

In a repository matching a rule, a tag is kept when it matches one of the rule's `keeptags`,
when it is among the rule's `keeplast` most recently pushed of the other tags, or when it was
pushed less than `olderthan` ago; the rule deletes the rest. With several rules matching a
repository, a tag goes only if every one of them would delete it. Immutable tags are never
deleted, and do not take one of the `keeplast` places. "Pushed" is the tag's last PUT.

Retention deletes tags, not manifests: garbage collection with deleteuntagged removes the
manifests left untagged and frees their blobs. The plan is read first; then each repository's
deletions run in one transaction, each deleting its tag only if the tag still points at the
manifest the plan saw, pushed at the same moment, so a tag pushed again meanwhile stays.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from registry.config import Config, RetentionRule
from registry.db import Database, ReadConnection, WriteConnection
from registry.db.models import as_utc, manifests, repositories, tags, utcnow
from registry.globs import compile_pattern, matches_any
from registry.immutable_tags import ImmutableTags
from registry.webhooks import Outbox

__all__ = ["ExpiredTag", "Retention", "RetentionReport", "retain_on_schedule"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExpiredTag:
    repository: str
    tag: str
    digest: str
    pushed_at: datetime


@dataclass(frozen=True, slots=True)
class _Planned:
    tag: ExpiredTag
    manifest_id: int
    stored_at: datetime  # updated_at as the database returned it, to compare with


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What retention deleted, or with `dry_run`, what it would delete. `changed`: tags left
    alone because they were pushed again between the plan and the deletion."""

    dry_run: bool
    tags: tuple[ExpiredTag, ...]
    changed: int = 0

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        shown = [f"{verb} tag {t.repository}:{t.tag} ({t.digest})" for t in self.tags]
        if self.changed:
            shown.append(f"kept {self.changed} tag(s) pushed again while retention ran")
        return shown

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "tags": [
                {
                    "repository": t.repository,
                    "tag": t.tag,
                    "digest": t.digest,
                    "pushed_at": t.pushed_at.isoformat(),
                }
                for t in self.tags
            ],
        }


class Retention:
    def __init__(
        self,
        rules: Iterable[RetentionRule],
        immutable: ImmutableTags,
        events: Outbox | None = None,
    ) -> None:
        self._rules = tuple(rules)
        self._immutable = immutable
        self._events = events or Outbox()

    @classmethod
    def from_config(cls, config: Config) -> Retention:
        """Rules, immutable tags and webhook endpoints (a deleted tag is a delete event)."""
        events = Outbox(config.notifications.endpoints)
        return cls(config.retention, ImmutableTags(config.immutabletags), events)

    async def run(
        self, db: Database, *, dry_run: bool = False, now: datetime | None = None
    ) -> RetentionReport:
        """Delete (or with `dry_run` only list) the tags the rules no longer keep."""
        now = now or utcnow()
        deleted: list[ExpiredTag] = []
        changed = 0
        if not self._rules:
            return RetentionReport(dry_run, ())
        async with db.read() as conn:
            names = await conn.execute(select(repositories.c.id, repositories.c.name))
            matching = [
                (row.id, row.name, rules)
                for row in names
                if (rules := [r for r in self._rules if matches_any(r.repositories, row.name)])
            ]
        for repo_id, name, rules in sorted(matching, key=lambda m: m[1]):
            async with db.read() as conn:
                expired = await self._plan(conn, repo_id, name, rules, now)
            if not expired:
                continue
            if dry_run:
                deleted += (planned.tag for planned in expired)
                continue
            done = await db.transact(
                functools.partial(_delete, repo_id=repo_id, expired=expired, events=self._events)
            )
            changed += len(expired) - len(done)
            for tag in done:
                log.info("retention deleted tag %s:%s (%s)", tag.repository, tag.tag, tag.digest)
            deleted += done
        return RetentionReport(dry_run, tuple(deleted), changed)

    async def _plan(
        self,
        conn: ReadConnection,
        repo_id: int,
        repository: str,
        rules: Sequence[RetentionRule],
        now: datetime,
    ) -> list[_Planned]:
        query = (
            select(tags.c.name, tags.c.manifest_id, tags.c.updated_at, manifests.c.digest)
            .join(manifests, manifests.c.id == tags.c.manifest_id)
            .where(tags.c.repository_id == repo_id)
            .order_by(tags.c.updated_at.desc(), tags.c.name)
        )
        candidates = [
            _Planned(
                ExpiredTag(repository, row.name, row.digest, as_utc(row.updated_at)),
                row.manifest_id,
                row.updated_at,
            )
            for row in await conn.execute(query)
            if not self._immutable.protects(repository, row.name)
        ]
        newest_first = [planned.tag for planned in candidates]
        doomed = set.intersection(*(_expired_by(rule, newest_first, now) for rule in rules))
        return [planned for planned in candidates if planned.tag.tag in doomed]


def _expired_by(rule: RetentionRule, newest_first: Sequence[ExpiredTag], now: datetime) -> set[str]:
    keep = [compile_pattern(p) for p in rule.keeptags]
    counted = [t for t in newest_first if not any(p.fullmatch(t.tag) for p in keep)]
    cutoff = now - timedelta(seconds=rule.olderthan)
    return {
        t.tag
        for i, t in enumerate(counted)
        if not (rule.keeplast and i < rule.keeplast)
        and not (rule.olderthan and t.pushed_at > cutoff)
    }


async def _delete(
    conn: WriteConnection, *, repo_id: int, expired: Sequence[_Planned], events: Outbox
) -> list[ExpiredTag]:
    done = []
    for planned in expired:
        result = await conn.execute(
            delete(tags).where(
                tags.c.repository_id == repo_id,
                tags.c.name == planned.tag.tag,
                tags.c.manifest_id == planned.manifest_id,
                tags.c.updated_at == planned.stored_at,
            )
        )
        if result.rowcount:
            done.append(planned.tag)
            await events.tag_deleted(conn, planned.tag.repository, planned.tag.tag)
    return done


async def retain_on_schedule(db: Database, config: Config) -> None:
    """The scheduled garbage collection's first step: apply `config.retention`, if any.
    A failure is logged and leaves the collection to run."""
    if not config.retention:
        return
    try:
        report = await Retention.from_config(config).run(db)
    except Exception:
        log.exception("retention failed")
        return
    if report.tags:
        log.info("retention deleted %d tag(s)", len(report.tags))
