"""Garbage collection, one rule at a time: `collect_garbage` against a serving app's data."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text, update

from blobstore import Digest, FilesystemBlobStore
from registry import Config
from registry.db import Database, WriteConnection
from registry.db.models import blobs, manifests, repository_blobs, utcnow
from registry.gc import GCOptions, GCReport, Removal, collect_garbage
from registry.gc.history import KEPT, recent_runs
from registry.http.keys import TOUCHES
from registry.service.upload_locks import UploadLocks
from tests.api.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Client,
    descriptor,
    digest_of,
    error_code,
    push_blob,
    push_image,
)
from tests.support.server import berth_executable

NOW = timedelta(0)
HOUR = timedelta(hours=1)


async def gc(
    config: Config, db: Database, grace: timedelta = NOW, **options: object
) -> tuple[GCReport, list[Removal]]:
    removed: list[Removal] = []
    store = FilesystemBlobStore(config.blob_root)
    locks = UploadLocks(db)
    chosen = GCOptions(grace=grace, **options)  # type: ignore[arg-type]  # keyword options
    report = await collect_garbage(db, store, locks, chosen, removed.append)
    return report, removed


async def age(db: Database, hours: float = 2) -> None:
    """Make everything stored so far look `hours` old."""
    then = utcnow() - timedelta(hours=hours)

    async def work(conn: WriteConnection) -> None:
        await conn.execute(update(blobs).values(created_at=then))
        await conn.execute(
            update(blobs).where(blobs.c.touched_at.is_not(None)).values(touched_at=then)
        )
        await conn.execute(update(repository_blobs).values(created_at=then))
        await conn.execute(update(manifests).values(created_at=then))

    await db.transact(work)


def stored(config: Config) -> set[str]:
    root = config.blob_root / "blobs" / "sha256"
    return {f"sha256:{p.name}" for p in root.glob("*/*")} if root.exists() else set()


async def test_deleted_manifest_frees_its_layers_but_not_shared_ones(
    client: Client, config: Config, db: Database
) -> None:
    shared = b"shared layer"
    gone, _ = await push_image(client, "app", layer=b"only in gone", reference="old")
    await push_image(client, "app", layer=shared, reference="keep")
    await push_image(client, "other", layer=shared, reference="keep")
    assert (await client.delete(f"/v2/app/manifests/{gone}")).status == 202

    report, removed = await gc(config, db)

    assert {(r.kind, r.repository, r.digest) for r in removed if r.kind == "link"} == {
        ("link", "app", digest_of(b"only in gone"))
    }
    assert [r.digest for r in removed if r.kind == "blob"] == [digest_of(b"only in gone")]
    assert report.blobs == 1
    assert report.bytes_freed == len(b"only in gone")
    assert digest_of(b"only in gone") not in stored(config)
    assert digest_of(shared) in stored(config)
    head = await client.head(f"/v2/app/blobs/{digest_of(b'only in gone')}")
    assert head.status == 404
    for repo in ("app", "other"):
        assert (await client.get(f"/v2/{repo}/manifests/keep")).status == 200
        assert (await client.get(f"/v2/{repo}/blobs/{digest_of(shared)}")).status == 200


async def test_unreferenced_link_goes_but_the_blob_stays_linked_elsewhere(
    client: Client, config: Config, db: Database
) -> None:
    data = b"pushed to two repos, referenced by one"
    await push_image(client, "used", layer=data)
    digest = await push_blob(client, "loose", data)

    report, _ = await gc(config, db)

    assert (report.links, report.blobs) == (1, 0)
    assert (await client.head(f"/v2/loose/blobs/{digest}")).status == 404
    assert (await client.head(f"/v2/used/blobs/{digest}")).status == 200


async def test_grace_keeps_a_blob_uploaded_but_not_yet_referenced(
    client: Client, config: Config, db: Database
) -> None:
    digest = await push_blob(client, "pending", b"a layer whose manifest is coming")

    report, _ = await gc(config, db, grace=HOUR)

    assert (report.links, report.blobs) == (0, 0)
    assert (await client.head(f"/v2/pending/blobs/{digest}")).status == 200
    await age(db)
    report, _ = await gc(config, db, grace=HOUR)
    assert (report.links, report.blobs) == (1, 1)
    assert digest not in stored(config)


async def test_head_renews_the_grace(client: Client, config: Config, db: Database) -> None:
    digest = await push_blob(client, "r", b"found by a client that will reference it")
    await age(db)
    assert (await client.head(f"/v2/r/blobs/{digest}")).status == 200
    await client.app[TOUCHES].flush()

    report, _ = await gc(config, db, grace=HOUR)

    assert (report.links, report.blobs) == (0, 0)
    assert (await client.head(f"/v2/r/blobs/{digest}")).status == 200


async def test_a_manifest_put_after_the_link_went_is_manifest_blob_unknown(
    client: Client, config: Config, db: Database
) -> None:
    layer, cfg = b"layer uploaded, then collected", b'{"os":"linux"}'
    await push_blob(client, "late", layer)
    await push_blob(client, "late", cfg)
    await gc(config, db)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", cfg),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    }
    response = await client.put(
        "/v2/late/manifests/v1",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    # Pushed again, it is accepted and pulls.
    await push_blob(client, "late", layer)
    await push_blob(client, "late", cfg)
    again = await client.put(
        "/v2/late/manifests/v1",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert again.status == 201
    pulled = await client.get(f"/v2/late/blobs/{digest_of(layer)}")
    assert await pulled.read() == layer


async def test_untagged_manifests_only_with_delete_untagged(
    client: Client, config: Config, db: Database
) -> None:
    untagged, _ = await push_image(client, "u", layer=b"untagged", reference=None)
    await age(db)

    kept, _ = await gc(config, db, delete_untagged=False)
    assert kept.manifests == 0
    assert (await client.get(f"/v2/u/manifests/{untagged}")).status == 200

    report, removed = await gc(config, db, delete_untagged=True)
    assert [(r.kind, r.repository, r.digest) for r in removed if r.kind == "manifest"] == [
        ("manifest", "u", untagged)
    ]
    assert report.blobs == 2  # its config and layer
    assert (await client.get(f"/v2/u/manifests/{untagged}")).status == 404


async def test_delete_untagged_keeps_what_tags_reach(
    client: Client, config: Config, db: Database
) -> None:
    child, child_bytes = await push_image(client, "x", layer=b"child", reference=None)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, child_bytes)],
    }
    response = await client.put(
        "/v2/x/manifests/multi",
        data=json.dumps(index).encode(),
        headers={"Content-Type": OCI_INDEX},
    )
    assert response.status == 201
    subject = {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_bytes)}
    referrer, _ = await push_image(
        client, "x", layer=b"signature", reference=None, extra={"subject": subject}
    )
    orphan_subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"gone"), "size": 4}
    dangling, _ = await push_image(
        client, "x", layer=b"dangling", reference=None, extra={"subject": orphan_subject}
    )
    await age(db)

    _, removed = await gc(config, db, delete_untagged=True)

    assert [r.digest for r in removed if r.kind == "manifest"] == [dangling]
    for digest in (child, referrer):
        assert (await client.get(f"/v2/x/manifests/{digest}")).status == 200
    assert (await client.get(f"/v2/x/blobs/{digest_of(b'child')}")).status == 200
    assert (await client.get(f"/v2/x/blobs/{digest_of(b'signature')}")).status == 200


async def test_delete_untagged_spares_a_young_manifest(
    client: Client, config: Config, db: Database
) -> None:
    digest, _ = await push_image(client, "y", layer=b"young", reference=None)
    report, _ = await gc(config, db, grace=HOUR, delete_untagged=True)
    assert report.manifests == 0
    assert (await client.get(f"/v2/y/manifests/{digest}")).status == 200


async def test_orphan_file_and_interrupted_mark_are_finished(
    client: Client, config: Config, db: Database
) -> None:
    store = FilesystemBlobStore(config.blob_root)
    orphan = b"a file the database never heard of"
    upload = await store.begin()
    await upload.write(orphan)
    await upload.commit(Digest.parse(digest_of(orphan)))
    marked = await push_blob(client, "m", b"marked by a pass that crashed")
    await client.delete(f"/v2/m/blobs/{marked}")
    await db.transact(
        lambda conn: conn.execute(
            text("UPDATE blobs SET state = 'deleting' WHERE digest = :d"), {"d": marked}
        )
    )

    report, removed = await gc(config, db, grace=HOUR)

    assert {r.digest for r in removed if r.kind == "blob"} == {digest_of(orphan), marked}
    assert report.bytes_freed == len(orphan) + len(b"marked by a pass that crashed")
    assert stored(config) == set()


async def test_a_pinned_blob_is_kept_even_without_grace(
    client: Client, config: Config, db: Database
) -> None:
    from registry.service.pins import pin_blob

    digest = await push_blob(client, "p", b"being uploaded again right now")
    await client.delete(f"/v2/p/blobs/{digest}")
    await pin_blob(db, Digest.parse(digest), 30, "an-upload")

    report, _ = await gc(config, db)

    assert report.blobs == 0
    assert digest in stored(config)


async def test_dry_run_lists_what_a_real_pass_removes(
    client: Client, config: Config, db: Database
) -> None:
    await push_image(client, "d", layer=b"tagged")
    untagged, _ = await push_image(client, "d", layer=b"untagged", reference=None)
    await push_blob(client, "d", b"loose")
    await age(db)
    before = stored(config)

    dry, would = await gc(config, db, dry_run=True, delete_untagged=True)

    assert stored(config) == before
    assert (await client.get(f"/v2/d/manifests/{untagged}")).status == 200
    real, did = await gc(config, db, delete_untagged=True)
    assert sorted((r.kind, r.digest) for r in would) == sorted((r.kind, r.digest) for r in did)
    assert (dry.manifests, dry.links, dry.blobs) == (real.manifests, real.links, real.blobs)
    assert (dry.manifests, dry.links, dry.blobs) == (1, 2, 2)
    assert dry.bytes_freed == real.bytes_freed


async def test_expired_upload_sessions_and_orphaned_ingests_are_purged(
    client: Client, config: Config, db: Database
) -> None:
    response = await client.post("/v2/s/blobs/uploads/")
    assert response.status == 202
    upload_id = response.headers["Docker-Upload-UUID"]
    assert (await client.patch(response.headers["Location"], data=b"abandoned")).status == 202
    store = FilesystemBlobStore(config.blob_root)
    orphan = await store.begin()  # a one-request upload whose process died mid-way
    await orphan.write(b"half a blob")
    await orphan.close()

    report, removed = await gc(config, db, upload_age=timedelta(0))

    assert [(r.kind, r.digest) for r in removed] == [("upload", upload_id), ("ingest", orphan.id)]
    assert (report.uploads, report.ingests) == (1, 1)
    assert (await client.get(f"/v2/s/blobs/uploads/{upload_id}")).status == 404
    assert await store.idle_uploads(0) == []


def berth(*args: str, database: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BERTH_DATABASE_URL": database}
    return subprocess.run(
        [berth_executable(), *args], capture_output=True, text=True, check=False, env=env
    )


async def test_cli_text_json_and_dry_run(client: Client, config: Config) -> None:
    digest = await push_blob(client, "cli", b"loose blob for the cli")
    data_dir, url = str(config.data_dir), config.database.url

    dry = berth("gc", "--data-dir", data_dir, "--grace", "0s", "--dry-run", database=url)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove link cli {digest}" in dry.stdout
    assert f"would remove blob {digest} (22B)" in dry.stdout
    assert "Would remove 0 manifest(s), 1 link(s), 1 blob(s) (22B)" in dry.stdout

    real = berth("gc", "--data-dir", data_dir, "--grace", "0s", "--json", database=url)
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    assert report["dry_run"] is False
    assert report["removed"] == {
        "manifests": 0,
        "links": 1,
        "blobs": 1,
        "uploads": 0,
        "ingests": 0,
    }
    assert report["bytes_freed"] == 22
    assert digest not in stored(config)


async def test_history_lists_real_passes_newest_first(client: Client, config: Config) -> None:
    data_dir, url = str(config.data_dir), config.database.url
    empty = berth("gc", "--data-dir", data_dir, "--history", database=url)
    assert (empty.returncode, empty.stdout) == (0, "no garbage collection pass has run yet\n")

    await push_blob(client, "hist", b"first loose blob")
    assert berth("gc", "--data-dir", data_dir, "--grace", "0s", database=url).returncode == 0
    dry = berth("gc", "--data-dir", data_dir, "--grace", "0s", "--dry-run", database=url)
    assert dry.returncode == 0
    await push_blob(client, "hist", b"second, longer loose blob")
    assert berth("gc", "--data-dir", data_dir, "--grace", "0s", database=url).returncode == 0

    listed = berth("gc", "--data-dir", data_dir, "--history", "--json", database=url)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["trigger"], r["bytes_freed"], r["error"]) for r in runs] == [
        ("command", len(b"second, longer loose blob"), None),
        ("command", len(b"first loose blob"), None),
    ]  # the dry run is not a pass
    assert runs[0]["removed"]["blobs"] == 1
    assert runs[0]["started"] > runs[1]["started"]
    text = berth("gc", "--data-dir", data_dir, "--history", database=url).stdout.splitlines()
    assert text[0].split() == [
        "STARTED", "TRIGGER", "SECONDS", "BLOBS", "FREED", "MANIFESTS", "RESULT"
    ]  # fmt: skip
    assert len(text) == 3
    assert text[1].split()[2:] == ["command", text[1].split()[3], "1", "25B", "0", "ok"]


async def test_history_keeps_the_newest_passes_only(config: Config, db: Database) -> None:
    for _ in range(KEPT + 3):
        await gc(config, db)
    async with db.read() as conn:
        runs = await recent_runs(conn, limit=KEPT + 10)
    assert len(runs) == KEPT
    assert all(r.trigger == "command" and r.error is None for r in runs)


def test_cli_rejects_a_bad_grace_and_a_bad_config(tmp_path: Path) -> None:
    result = berth("gc", "--data-dir", str(tmp_path), "--grace", "soon")
    assert result.returncode == 2
    expected = "berth gc: --grace: 'soon' is not a duration such as 30s or 168h"
    assert result.stderr.strip() == expected
    config = tmp_path / "config.yml"
    config.write_text("gc:\n  intervall: 1h\n")
    result = berth("gc", "--config", str(config), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "berth gc: gc.intervall: unknown configuration key"


async def test_head_touches_at_most_once_a_minute(
    client: Client, config: Config, db: Database
) -> None:
    digest = await push_blob(client, "t", b"headed twice")
    await age(db)

    async def touched_at() -> object:
        async with db.read() as conn:
            query = select(blobs.c.touched_at).where(blobs.c.digest == digest)
            return (await conn.execute(query)).scalar_one()

    old = await touched_at()
    assert (await client.head(f"/v2/t/blobs/{digest}")).status == 200
    await client.app[TOUCHES].flush()
    first = await touched_at()
    assert first != old
    assert (await client.head(f"/v2/t/blobs/{digest}")).status == 200
    await client.app[TOUCHES].flush()
    assert await touched_at() == first


def test_exports() -> None:
    import registry.gc

    assert sorted(registry.gc.__all__) == sorted(
        {
            "DEFAULT_GRACE",
            "GCOptions",
            "GCReport",
            "GC_LEASE",
            "Removal",
            "collect_garbage",
        }
    )
