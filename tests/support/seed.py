"""Fill a migrated registry database directly with many repositories, for UI tests and
bench/ui.py: much faster than pushing, and the rows are what pushes would have written
(manifests with their references, tags, linked blobs). No blob bytes are written."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from registry.db.models import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BIG_REPOSITORY = "big/many-tags"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


async def seed(
    database_url: str,
    repositories_count: int = 10_000,
    tags_in_big: int = 1_000,
    namespaces: int = 100,
) -> None:
    """`repositories_count` repositories `ns<k>/app<i>` with two tags each (one shared base
    layer per namespace, one own layer), plus BIG_REPOSITORY with `tags_in_big` tags."""
    engine = create_async_engine(database_url)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    blob_rows: dict[str, dict[str, Any]] = {}
    repo_rows, link_rows, manifest_rows, ref_rows, tag_rows = [], [], [], [], []
    manifest_id = 0
    names = [f"ns{i % namespaces}/app{i}" for i in range(repositories_count)]
    plan = [(name, 2) for name in names] + [(BIG_REPOSITORY, tags_in_big)]
    for repo_id, (name, tag_count) in enumerate(plan, start=1):
        namespace = name.split("/", 1)[0]
        repo_rows.append({"id": repo_id, "name": name, "created_at": start})
        base = (_digest(f"base {namespace}"), 2_000_000)
        for tag_no in range(tag_count):
            pushed = start + timedelta(seconds=repo_id * 10 + tag_no)
            config = (_digest(f"config {name} {tag_no}"), 1500)
            own = (_digest(f"layer {name} {tag_no}"), 300_000 + repo_id + tag_no)
            for digest, size in (base, config, own):
                blob_rows[digest] = {"digest": digest, "size": size, "created_at": pushed}
                link_rows.append({"repository_id": repo_id, "digest": digest})
            payload = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
                    "layers": [
                        {"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in (base, own)
                    ],
                }
            ).encode()
            manifest_id += 1
            manifest_rows.append(
                {
                    "id": manifest_id,
                    "repository_id": repo_id,
                    "digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
                    "media_type": OCI_MANIFEST,
                    "size": len(payload),
                    "payload": payload,
                    "created_at": pushed,
                }
            )
            ref_rows += [
                {"manifest_id": manifest_id, "kind": "config", "digest": config[0]},
                {"manifest_id": manifest_id, "kind": "layer", "digest": base[0]},
                {"manifest_id": manifest_id, "kind": "layer", "digest": own[0]},
            ]
            tag_rows.append(
                {
                    "repository_id": repo_id,
                    "name": f"v{tag_no}",
                    "manifest_id": manifest_id,
                    "updated_at": pushed,
                }
            )
    unique_links = list({(r["repository_id"], r["digest"]): r for r in link_rows}.values())
    async with engine.begin() as conn:
        await conn.execute(insert(repositories), repo_rows)
        await conn.execute(insert(blobs), list(blob_rows.values()))
        await conn.execute(insert(repository_blobs), unique_links)
        await conn.execute(insert(manifests), manifest_rows)
        await conn.execute(insert(manifest_references), ref_rows)
        await conn.execute(insert(tags), tag_rows)
        if engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
            for table in (repositories, manifests):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
                )
    if engine.dialect.name == "postgresql":  # statistics, as autovacuum would gather them
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("ANALYZE"))
    await engine.dispose()
