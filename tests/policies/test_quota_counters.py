"""The usage counters the triggers keep agree with a recount after every kind of change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from registry.db import Database, upgrade
from registry.quota import Scope, usage
from tests.api.oci import digest_of, push_blob, push_image
from tests.policies.conftest import PolicyClient
from tests.policies.recount import assert_counters_match


async def _check(db: Database) -> None:
    async with db.read() as conn:
        await assert_counters_match(conn)


async def test_counters_follow_pushes_mounts_and_deletes(
    policy_client: PolicyClient, db: Database
) -> None:
    client = await policy_client()
    shared = b"shared layer" * 10
    a, _ = await push_image(client, "ns/a", layer=shared, reference="1")
    await push_image(client, "ns/b", layer=shared, reference="1")
    await push_image(client, "ns/b", layer=b"own", reference="2")
    await push_image(client, "ns", layer=b"top level")  # `ns` itself is in namespace ns
    await push_image(client, "nsx/a", layer=shared)  # another namespace
    mount = await client.post(f"/v2/ns/c/blobs/uploads/?mount={digest_of(shared)}&from=ns/a")
    assert mount.status == 201
    await push_blob(client, "ns/a", shared)  # linked already: no change
    await _check(db)

    assert (await client.delete(f"/v2/ns/a/manifests/{a}")).status == 202
    assert (await client.delete(f"/v2/ns/c/blobs/{digest_of(shared)}")).status == 202
    assert (await client.delete("/v2/ns/b/manifests/2")).status == 202  # a tag: no change
    await _check(db)

    async with db.read() as conn:
        # The shared layer is still linked in ns/a and ns/b: the namespace counts it once.
        assert await usage(conn, Scope("namespace", "ns")) > len(shared)


def test_migration_counts_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0002")
    now = "2026-11-30 07:00:00.000000"
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO repositories (id, name, created_at) VALUES (?, ?, ?)",
            [(1, "team/a", now), (2, "team/b/c", now), (3, "solo", now)],
        )
        db.executemany(
            "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)",
            [("sha256:aa", 100, now), ("sha256:bb", 20, now), ("sha256:cc", 3, now)],
        )
        db.executemany(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)",
            [(r, d, now) for r, d in ((1, "sha256:aa"), (2, "sha256:aa"), (2, "sha256:bb"))]
            + [(3, "sha256:cc", now)],
        )
        db.execute(
            "INSERT INTO manifests (repository_id, digest, media_type, size, payload, created_at)"
            " VALUES (2, 'sha256:m1', 'x', 7, x'00', ?)",
            (now,),
        )
    upgrade(url)
    with sqlite3.connect(path) as db:
        counted = dict(db.execute("SELECT scope, bytes FROM quota_usage"))
    assert counted == {
        "repository:team/a": 100,
        "repository:team/b/c": 127,
        "repository:solo": 3,
        "namespace:team": 127,
        "namespace:solo": 3,
    }
