"""Retention: keep the newest N, keep by pattern, delete by age, dry run, immutable tags."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from registry import Config
from registry.config import EndpointConfig, ImmutableTagRule, RetentionRule
from registry.db import Database
from registry.db.models import utcnow, webhook_outbox
from registry.immutable_tags import ImmutableTags
from registry.retention import Retention, RetentionReport
from registry.webhooks import Outbox
from tests.api.oci import Client, push_image
from tests.policies.conftest import PolicyClient


async def _push_tags(client: Client, repo: str, names: list[str]) -> None:
    """One image per tag, pushed in this order (oldest first)."""
    for i, name in enumerate(names):
        await push_image(client, repo, layer=f"layer {name} {i}".encode(), reference=name)


async def _tags(client: Client, repo: str) -> list[str]:
    response = await client.get(f"/v2/{repo}/tags/list")
    assert response.status == 200
    return list((await response.json())["tags"] or [])


async def _run(
    config: Config,
    rules: tuple[RetentionRule, ...],
    *,
    dry_run: bool = False,
    immutable: tuple[ImmutableTagRule, ...] = (),
    later: timedelta = timedelta(0),
) -> RetentionReport:
    db = Database(config.database_url)
    try:
        retention = Retention(rules, ImmutableTags(immutable))
        return await retention.run(db, dry_run=dry_run, now=utcnow() + later)
    finally:
        await db.dispose()


def _gone(report: RetentionReport) -> list[tuple[str, str]]:
    return sorted((t.repository, t.tag) for t in report.tags)


async def test_keep_the_newest_n(policy_client: PolicyClient, config: Config) -> None:
    client = await policy_client()
    await _push_tags(client, "ci/app", ["b1", "b2", "b3", "b4", "b5"])
    await _push_tags(client, "other/app", ["b1", "b2", "b3"])
    await push_image(client, "ci/app", layer=b"layer b1 0", reference="b1")  # pushed again
    report = await _run(config, (RetentionRule(("ci/**",), keeplast=2),))
    assert _gone(report) == [("ci/app", "b2"), ("ci/app", "b3"), ("ci/app", "b4")]
    assert report.lines()[0] == f"deleted tag ci/app:b4 ({report.tags[0].digest})"
    assert await _tags(client, "ci/app") == ["b1", "b5"]
    assert await _tags(client, "other/app") == ["b1", "b2", "b3"]  # no rule: untouched
    for name in ("b2", "b3", "b4"):
        assert (await client.head(f"/v2/ci/app/manifests/{name}")).status == 404
    # The manifests stay (garbage collection removes untagged ones): fetchable by digest.
    assert (await client.head(f"/v2/ci/app/manifests/{report.tags[0].digest}")).status == 200
    again = await _run(config, (RetentionRule(("ci/**",), keeplast=2),))
    assert again.tags == ()


async def test_keep_by_pattern(policy_client: PolicyClient, config: Config) -> None:
    client = await policy_client()
    await _push_tags(client, "keep/app", ["v1.0", "sha-1", "v1.1", "sha-2", "latest", "sha-3"])
    rule = RetentionRule(("keep/*",), keeplast=1, keeptags=("v*", "latest"))
    report = await _run(config, (rule,))
    # The patterns keep v1.0, v1.1, latest; of the others only the newest one stays.
    assert _gone(report) == [("keep/app", "sha-1"), ("keep/app", "sha-2")]
    assert await _tags(client, "keep/app") == ["latest", "sha-3", "v1.0", "v1.1"]


async def test_delete_older_than(policy_client: PolicyClient, config: Config) -> None:
    client = await policy_client()
    await _push_tags(client, "age/app", ["old1", "old2"])
    rule = RetentionRule(("age/app",), olderthan=timedelta(days=30).total_seconds())
    assert (await _run(config, (rule,), later=timedelta(days=29))).tags == ()
    await _push_tags(client, "age/app", ["new"])
    report = await _run(config, (rule,), later=timedelta(days=30, seconds=1), dry_run=True)
    assert _gone(report) == [("age/app", "new"), ("age/app", "old1"), ("age/app", "old2")]
    # keeplast with olderthan: the newest N stay whatever their age.
    both = RetentionRule(("age/app",), keeplast=1, olderthan=rule.olderthan)
    report = await _run(config, (both,), later=timedelta(days=31))
    assert _gone(report) == [("age/app", "old1"), ("age/app", "old2")]
    assert await _tags(client, "age/app") == ["new"]


async def test_dry_run_lists_and_deletes_nothing(
    policy_client: PolicyClient, config: Config
) -> None:
    client = await policy_client()
    await _push_tags(client, "dry/app", ["a", "b", "c"])
    report = await _run(config, (RetentionRule(("dry/**",), keeplast=1),), dry_run=True)
    assert report.dry_run
    assert [t.tag for t in report.tags] == ["b", "a"]  # newest first
    assert report.lines() == [f"would delete tag dry/app:{t.tag} ({t.digest})" for t in report.tags]
    assert report.as_json()["tags"] == [
        {
            "repository": t.repository,
            "tag": t.tag,
            "digest": t.digest,
            "pushed_at": t.pushed_at.isoformat(),
        }
        for t in report.tags
    ]
    assert await _tags(client, "dry/app") == ["a", "b", "c"]


async def test_every_matching_rule_must_agree(policy_client: PolicyClient, config: Config) -> None:
    client = await policy_client()
    await _push_tags(client, "team/app", ["a", "b", "c", "d"])
    rules = (RetentionRule(("team/**",), keeplast=1), RetentionRule(("team/app",), keeplast=3))
    report = await _run(config, rules)
    assert _gone(report) == [("team/app", "a")]


async def test_immutable_tags_are_never_deleted(
    policy_client: PolicyClient, config: Config
) -> None:
    immutable = (ImmutableTagRule(("rel/**",), ("v*",)),)
    client = await policy_client(immutabletags=immutable)
    await _push_tags(client, "rel/app", ["v1", "v2", "tmp1", "tmp2", "tmp3"])
    rule = RetentionRule(("**",), keeplast=1, olderthan=1.0)
    report = await _run(config, (rule,), immutable=immutable, later=timedelta(hours=1))
    assert _gone(report) == [("rel/app", "tmp1"), ("rel/app", "tmp2")]
    assert await _tags(client, "rel/app") == ["tmp3", "v1", "v2"]


async def test_deleted_tags_are_webhook_delete_events(
    policy_client: PolicyClient, config: Config
) -> None:
    client = await policy_client()
    await _push_tags(client, "ci/hooked", ["a1", "a2", "a3"])
    endpoint = EndpointConfig(name="ci", url="http://127.0.0.1:9/")
    db = Database(config.database_url)
    try:
        retention = Retention(
            (RetentionRule(("ci/**",), keeplast=1),), ImmutableTags(), Outbox((endpoint,))
        )
        report = await retention.run(db)
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(webhook_outbox.c.action, webhook_outbox.c.payload).where(
                        webhook_outbox.c.action == "delete"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert _gone(report) == [("ci/hooked", "a1"), ("ci/hooked", "a2")]
    targets = sorted(json.loads(row.payload)["target"]["tag"] for row in rows)
    assert targets == ["a1", "a2"]
