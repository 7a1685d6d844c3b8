"""The same API on PostgreSQL (asyncpg): every write path, discovery, and concurrent pushes."""

from __future__ import annotations

import asyncio
import json

import pytest

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

pytestmark = pytest.mark.postgres


async def test_push_pull_chunked_and_mount(pg_client: Client) -> None:
    response = await pg_client.post("/v2/pg/app/blobs/uploads/")
    location = response.headers["Location"]
    response = await pg_client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
    assert response.status == 202
    bad = await pg_client.patch(location, data=b"zzz", headers={"Content-Range": "9-11"})
    assert bad.status == 416
    done = await pg_client.put(
        f"{response.headers['Location']}?digest={digest_of(b'abcdef')}", data=b"def"
    )
    assert done.status == 201
    assert (
        await (await pg_client.get(f"/v2/pg/app/blobs/{digest_of(b'abcdef')}")).read() == b"abcdef"
    )
    mount = await pg_client.post(
        f"/v2/pg/other/blobs/uploads/?mount={digest_of(b'abcdef')}&from=pg/app"
    )
    assert mount.status == 201


async def test_manifests_tags_referrers_and_delete(pg_client: Client) -> None:
    digest, payload = await push_image(pg_client, "pg/img", reference="v1")
    for tag in ("v2", "v3"):
        response = await pg_client.put(
            f"/v2/pg/img/manifests/{tag}", data=payload, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status == 201
    page = await pg_client.get("/v2/pg/img/tags/list?n=2")
    assert (await page.json())["tags"] == ["v1", "v2"]
    assert page.headers["Link"] == '</v2/pg/img/tags/list?n=2&last=v2>; rel="next"'
    await push_blob(pg_client, "pg/img", b"{}")
    referrer = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/x.sig",
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [],
        "subject": descriptor(OCI_MANIFEST, payload),
    }
    body = json.dumps(referrer).encode()
    response = await pg_client.put(
        f"/v2/pg/img/manifests/{digest_of(body)}", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.headers["OCI-Subject"] == digest
    refs = await (await pg_client.get(f"/v2/pg/img/referrers/{digest}")).json()
    assert refs["mediaType"] == OCI_INDEX
    assert [r["digest"] for r in refs["manifests"]] == [digest_of(body)]
    assert (await pg_client.delete("/v2/pg/img/manifests/v3")).status == 202
    assert (await pg_client.delete(f"/v2/pg/img/manifests/{digest}")).status == 202
    gone = await pg_client.get("/v2/pg/img/manifests/v1")
    assert await error_code(gone) == "MANIFEST_UNKNOWN"
    catalog = await (await pg_client.get("/v2/_catalog")).json()
    assert catalog["repositories"] == ["pg/img"]


async def test_concurrent_pushes_of_one_blob_and_tag(pg_client: Client) -> None:
    results = await asyncio.gather(
        *(push_image(pg_client, "pg/race", reference="t") for _ in range(16))
    )
    assert len({digest for digest, _ in results}) == 1
    assert (await (await pg_client.get("/v2/pg/race/tags/list")).json())["tags"] == ["t"]
