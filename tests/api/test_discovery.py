"""Tags and catalog pagination with Link headers, and the referrers API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry import Config, create_app
from registry.config import DatabaseConfig
from tests.api.conftest import ClientFactory
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
from tests.support.postgres import PostgresServer

TAGS = ["b", "A", "a", "1.0", "latest", "_x", "Z9"]


async def _tagged(client: Client, repo: str) -> str:
    digest, payload = await push_image(client, repo, reference=TAGS[0])
    for tag in TAGS[1:]:
        response = await client.put(
            f"/v2/{repo}/manifests/{tag}", data=payload, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status == 201
    return digest


async def test_tags_list_in_ascii_order(client: Client) -> None:
    await _tagged(client, "t/all")
    response = await client.get("/v2/t/all/tags/list")
    assert response.status == 200
    assert await response.json() == {"name": "t/all", "tags": sorted(TAGS)}
    assert "Link" not in response.headers


async def test_tags_pagination_follows_link(client: Client) -> None:
    await _tagged(client, "pages")
    seen: list[str] = []
    url: str | None = "/v2/pages/tags/list?n=3"
    pages = 0
    while url:
        response = await client.get(url)
        assert response.status == 200
        body = await response.json()
        assert len(body["tags"]) <= 3
        seen += body["tags"]
        pages += 1
        link = response.headers.get("Link")
        if link is None:
            url = None
        else:
            assert link.endswith('>; rel="next"')
            url = link[1 : link.index(">")]
            assert url.startswith("/v2/pages/tags/list?")
    assert seen == sorted(TAGS)
    assert pages == 3


@pytest.mark.postgres
async def test_tags_in_byte_order_whatever_the_postgres_collation(
    aiohttp_client: ClientFactory,
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    # A case-insensitive, punctuation-blind order ("_x" < "1.0" < "a" < "A" < "b" < ...),
    # as a database created with an ICU or glibc locale sorts by default.
    postgres_server.sql(
        'ALTER TABLE tags ALTER COLUMN name TYPE varchar(128) COLLATE "en-x-icu"',
        postgres_url.rsplit("/", 1)[1],
    )
    config = Config(datadir=str(tmp_path), database=DatabaseConfig(url=postgres_url))
    client = await aiohttp_client(create_app(config))
    await _tagged(client, "icu")
    response = await client.get("/v2/icu/tags/list")
    assert (await response.json())["tags"] == sorted(TAGS)
    seen: list[str] = []
    url: str | None = "/v2/icu/tags/list?n=2"
    while url is not None:
        response = await client.get(url)
        seen += (await response.json())["tags"]
        link = response.headers.get("Link")
        url = None if link is None else link[1 : link.index(">")]
    assert seen == sorted(TAGS)


async def test_tags_last_without_n(client: Client) -> None:
    await _tagged(client, "last")
    response = await client.get("/v2/last/tags/list?last=a")
    assert (await response.json())["tags"] == [t for t in sorted(TAGS) if t > "a"]


async def test_tags_n_zero_is_empty_without_link(client: Client) -> None:
    await _tagged(client, "zero")
    response = await client.get("/v2/zero/tags/list?n=0")
    assert response.status == 200
    assert (await response.json())["tags"] == []
    assert "Link" not in response.headers


async def test_tags_exact_page_has_no_link(client: Client) -> None:
    await _tagged(client, "exact")
    response = await client.get(f"/v2/exact/tags/list?n={len(TAGS)}")
    assert len((await response.json())["tags"]) == len(TAGS)
    assert "Link" not in response.headers


async def test_tags_bad_n(client: Client) -> None:
    await _tagged(client, "badn")
    for bad in ("-1", "x", "1.5"):
        response = await client.get(f"/v2/badn/tags/list?n={bad}")
        assert response.status == 400


async def test_tags_of_unknown_repository(client: Client) -> None:
    response = await client.get("/v2/unknown/tags/list")
    assert response.status == 404
    assert await error_code(response) == "NAME_UNKNOWN"


async def test_catalog_lists_and_paginates(client: Client) -> None:
    names = ["c/one", "a/two", "b", "a/one", "z"]
    for name in names:
        await push_blob(client, name, b"x")
    response = await client.get("/v2/_catalog")
    assert await response.json() == {"repositories": sorted(names)}
    first = await client.get("/v2/_catalog?n=2")
    assert (await first.json())["repositories"] == sorted(names)[:2]
    link = first.headers["Link"]
    assert link == f'</v2/_catalog?n=2&last={sorted(names)[1].replace("/", "%2F")}>; rel="next"'
    second = await client.get(link[1 : link.index(">")])
    assert (await second.json())["repositories"] == sorted(names)[2:4]
    third = await client.get(second.headers["Link"][1 : second.headers["Link"].index(">")])
    assert (await third.json())["repositories"] == sorted(names)[4:]
    assert "Link" not in third.headers
    empty = await client.get("/v2/_catalog?n=0")
    assert (await empty.json())["repositories"] == []


async def _referrer(
    client: Client,
    repo: str,
    subject_payload: bytes,
    *,
    artifact_type: str | None,
    annotations: dict[str, str] | None = None,
    config_type: str = "application/vnd.oci.empty.v1+json",
    index: bool = False,
) -> tuple[str, bytes]:
    empty = b"{}"
    await push_blob(client, repo, empty)
    manifest: dict[str, Any] = {"schemaVersion": 2}
    if index:
        manifest.update(mediaType=OCI_INDEX, manifests=[])
    else:
        manifest.update(
            mediaType=OCI_MANIFEST,
            config=descriptor(config_type, empty),
            layers=[descriptor("application/vnd.oci.empty.v1+json", empty)],
        )
    if artifact_type:
        manifest["artifactType"] = artifact_type
    if annotations:
        manifest["annotations"] = annotations
    manifest["subject"] = descriptor(OCI_MANIFEST, subject_payload)
    payload = json.dumps(manifest).encode()
    media_type = OCI_INDEX if index else OCI_MANIFEST
    response = await client.put(
        f"/v2/{repo}/manifests/{digest_of(payload)}",
        data=payload,
        headers={"Content-Type": media_type},
    )
    assert response.status == 201, await response.text()
    return digest_of(payload), payload


async def test_referrers_list_and_filter(client: Client) -> None:
    subject, subject_payload = await push_image(client, "refs")
    sbom, sbom_payload = await _referrer(
        client,
        "refs",
        subject_payload,
        artifact_type="application/vnd.example.sbom",
        annotations={"org.example.format": "json"},
    )
    sig, _ = await _referrer(
        client,
        "refs",
        subject_payload,
        artifact_type=None,
        config_type="application/vnd.example.signature",
    )
    idx, _ = await _referrer(client, "refs", subject_payload, artifact_type=None, index=True)
    response = await client.get(f"/v2/refs/referrers/{subject}")
    assert response.status == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in response.headers
    body = await response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in body["manifests"]}
    assert set(by_digest) == {sbom, sig, idx}
    assert by_digest[sbom] == {
        "mediaType": OCI_MANIFEST,
        "digest": sbom,
        "size": len(sbom_payload),
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"org.example.format": "json"},
    }
    assert by_digest[sig]["artifactType"] == "application/vnd.example.signature"
    assert "artifactType" not in by_digest[idx]
    filtered = await client.get(
        f"/v2/refs/referrers/{subject}?artifactType=application/vnd.example.sbom"
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in (await filtered.json())["manifests"]] == [sbom]


async def test_referrers_none_is_empty_index(client: Client) -> None:
    subject, _ = await push_image(client, "norefs")
    response = await client.get(f"/v2/norefs/referrers/{subject}")
    assert response.status == 200
    assert (await response.json())["manifests"] == []
    unknown_repo = await client.get(f"/v2/never/referrers/{subject}")
    assert unknown_repo.status == 200
    assert (await unknown_repo.json())["manifests"] == []


async def test_referrers_bad_digest_is_400(client: Client) -> None:
    response = await client.get("/v2/refs/referrers/sha256:nothex")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


async def test_deleted_referrer_disappears(client: Client) -> None:
    subject, subject_payload = await push_image(client, "gone")
    ref, _ = await _referrer(client, "gone", subject_payload, artifact_type="application/x")
    assert (await client.delete(f"/v2/gone/manifests/{ref}")).status == 202
    body = await (await client.get(f"/v2/gone/referrers/{subject}")).json()
    assert body["manifests"] == []


async def test_catalog_skips_repositories_with_only_an_upload_started(client: Client) -> None:
    await push_blob(client, "has/blob", b"x")
    response = await client.post("/v2/only/upload/blobs/uploads/")
    assert response.status == 202
    catalog = await (await client.get("/v2/_catalog")).json()
    assert catalog["repositories"] == ["has/blob"]
