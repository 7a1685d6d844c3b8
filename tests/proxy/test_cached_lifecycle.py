"""Cached content is content like any other: retention deletes cached tags, garbage
collection frees what no tag reaches any more, and a later pull fetches it again."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from blobstore import Digest, FilesystemBlobStore
from registry import Config
from registry.config import RetentionRule
from registry.db import Database
from registry.db.models import manifest_pulls
from registry.gc import GCOptions, collect_garbage
from registry.http.keys import PULLS
from registry.immutable_tags import ImmutableTags
from registry.retention import Retention
from registry.service.upload_locks import UploadLocks
from tests.api.oci import Client, push_image
from tests.proxy.conftest import CacheFactory
from tests.support.server import RunningServer


async def test_retention_and_gc_treat_cached_content_as_local(
    upstream: RunningServer,
    upstream_session: Client,
    make_cache: CacheFactory,
    base_config: Config,
    db: Database,
) -> None:
    old, old_payload = await push_image(
        upstream_session, "life/app", layer=b"old layer", reference="v1"
    )
    new, _ = await push_image(upstream_session, "life/app", layer=b"new layer", reference="v2")
    cache = await make_cache(upstream.url)
    old_layer = json.loads(old_payload)["layers"][0]["digest"]
    for tag in ("v1", "v2"):
        response = await cache.get(f"/v2/up/life/app/manifests/{tag}")
        manifest = json.loads(await response.read())
        for descriptor in (manifest["config"], *manifest["layers"]):
            blob = await cache.get(f"/v2/up/life/app/blobs/{descriptor['digest']}")
            assert blob.status == 200
            await blob.read()  # pulled whole: cached and linked by then
    await cache.app[PULLS].flush()
    async with db.read() as conn:  # pulls of cached manifests are recorded like any other
        assert len((await conn.execute(select(manifest_pulls))).all()) == 2

    rule = RetentionRule(repositories=("up/**",), keeplast=1)
    report = await Retention([rule], ImmutableTags()).run(db)
    assert [(t.repository, t.tag) for t in report.tags] == [("up/life/app", "v1")]
    store = FilesystemBlobStore(base_config.blob_root)
    options = GCOptions(grace=timedelta(0), delete_untagged=True)
    gc_report = await collect_garbage(db, store, UploadLocks(db), options, lambda _: None)
    assert gc_report.blobs >= 1
    assert not store.blob_path(Digest.parse(old_layer)).exists()

    tags = await (await cache.get("/v2/up/life/app/tags/list")).json()
    assert tags["tags"] == ["v2"]
    assert (await cache.get(f"/v2/up/life/app/manifests/{new}")).status == 200
    # Gone from the cache, still upstream: fetched again.
    response = await cache.get("/v2/up/life/app/manifests/v1")
    assert response.headers["Docker-Content-Digest"] == old
    assert (await cache.get(f"/v2/up/life/app/blobs/{old_layer}")).status == 200
