"""Manifests: every kind, by tag and by digest, validation, limits, subject, ?tag=, DELETE."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest

from tests.api.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Client,
    descriptor,
    digest_of,
    error_code,
    push_blob,
    push_image,
)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
async def test_image_manifest_round_trip(client: Client, media_type: str) -> None:
    digest, payload = await push_image(client, "img/app", media_type=media_type)
    for reference in ("latest", digest):
        response = await client.get(f"/v2/img/app/manifests/{reference}")
        assert response.status == 200
        assert await response.read() == payload
        assert response.headers["Content-Type"] == media_type
        assert response.headers["Docker-Content-Digest"] == digest
        head = await client.head(f"/v2/img/app/manifests/{reference}")
        assert head.status == 200
        assert head.headers["Content-Length"] == str(len(payload))
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.headers["Content-Type"] == media_type


async def test_exact_bytes_are_kept(client: Client) -> None:
    config, layer = b"{}", b"l"
    await push_blob(client, "exact", config)
    await push_blob(client, "exact", layer)
    config_json = json.dumps(descriptor(OCI_CONFIG, config))
    layer_json = json.dumps(descriptor(OCI_LAYER, layer))
    payload = (
        f'{{\n   "schemaVersion" : 2,  "mediaType": "{OCI_MANIFEST}",\n'
        f' "config": {config_json}, "layers": [{layer_json}] }}\n\n'
    ).encode()
    response = await client.put(
        "/v2/exact/manifests/v1", data=payload, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/exact/manifests/{digest_of(payload)}"
    assert await (await client.get("/v2/exact/manifests/v1")).read() == payload


@pytest.mark.parametrize(
    ("index_type", "child_type"), [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)]
)
async def test_index_round_trip(client: Client, index_type: str, child_type: str) -> None:
    _child, child_payload = await push_image(client, "multi", media_type=child_type, reference=None)
    index = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            {
                **descriptor(child_type, child_payload),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    payload = json.dumps(index).encode()
    response = await client.put(
        "/v2/multi/manifests/list", data=payload, headers={"Content-Type": index_type}
    )
    assert response.status == 201, await response.text()
    got = await client.get("/v2/multi/manifests/list")
    assert got.headers["Content-Type"] == index_type
    assert await got.read() == payload


async def test_index_with_missing_child_is_manifest_blob_unknown(client: Client) -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(b"absent"), "size": 6}],
    }
    response = await client.put(
        "/v2/idx/manifests/x", data=json.dumps(index), headers={"Content-Type": OCI_INDEX}
    )
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"


async def test_missing_layer_is_manifest_blob_unknown(client: Client) -> None:
    config = b"{}"
    await push_blob(client, "miss", config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, b"never uploaded")],
    }
    response = await client.put(
        "/v2/miss/manifests/v1", data=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 400
    body = await response.json()
    assert body["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert body["errors"][0]["detail"]["digest"] == digest_of(b"never uploaded")
    assert (await client.get("/v2/miss/manifests/v1")).status == 404


async def test_layer_linked_only_in_another_repository_is_unknown(client: Client) -> None:
    await push_image(client, "first")
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer bytes"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer)],
    }
    response = await client.put(
        "/v2/second/manifests/v1", data=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"


async def test_non_distributable_layer_need_not_be_present(client: Client) -> None:
    config = b"{}"
    await push_blob(client, "foreign", config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", config),
        "layers": [
            {
                **descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"win"),
                "urls": ["https://example.com/layer"],
            }
        ],
    }
    response = await client.put(
        "/v2/foreign/manifests/v1",
        data=json.dumps(manifest),
        headers={"Content-Type": DOCKER_MANIFEST},
    )
    assert response.status == 201, await response.text()


async def test_helm_manifest_without_media_type_field(client: Client) -> None:
    config, chart = b'{"name":"c","version":"0.1.0"}', b"chart tgz"
    await push_blob(client, "charts/c", config)
    await push_blob(client, "charts/c", chart)
    manifest = {
        "schemaVersion": 2,
        "config": descriptor("application/vnd.cncf.helm.config.v1+json", config),
        "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart)],
    }
    payload = json.dumps(manifest).encode()
    response = await client.put(
        f"/v2/charts/c/manifests/{digest_of(payload)}",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    got = await client.get("/v2/charts/c/manifests/" + digest_of(payload))
    assert got.headers["Content-Type"] == OCI_MANIFEST


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b"not json", OCI_MANIFEST),
        (b"[1, 2]", OCI_MANIFEST),
        (b'{"schemaVersion": 1, "mediaType": "%s"}' % OCI_MANIFEST.encode(), OCI_MANIFEST),
        (b'{"schemaVersion": 2, "mediaType": "%s"}' % OCI_MANIFEST.encode(), OCI_MANIFEST),
        (
            b'{"schemaVersion": 2, "mediaType": "%s", "manifests": []}' % OCI_INDEX.encode(),
            OCI_MANIFEST,
        ),
        (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "text/plain"),
        (b'{"schemaVersion": 2, "manifests": "nope"}', OCI_INDEX),
        (
            b'{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "bad", "size": 1}]}',
            OCI_INDEX,
        ),
        (
            b'{"schemaVersion": 2, "manifests": '
            b'[{"mediaType": "x", "digest": "sha256:%s", "size": -1}]}' % (b"a" * 64),
            OCI_INDEX,
        ),
    ],
)
async def test_invalid_manifests_are_manifest_invalid(
    client: Client, payload: bytes, content_type: str
) -> None:
    response = await client.put(
        "/v2/bad/manifests/v1", data=payload, headers={"Content-Type": content_type}
    )
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_INVALID"


async def test_manifest_over_4_mib_is_413(client: Client) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
        "annotations": {"pad": "x" * (4 * 1024 * 1024)},
    }
    response = await client.put(
        "/v2/big/manifests/v1",
        data=io.BytesIO(json.dumps(manifest).encode()),
        headers={"Content-Type": OCI_INDEX},
    )
    assert response.status == 413
    assert await error_code(response) == "SIZE_INVALID"


async def test_manifest_just_under_4_mib_is_accepted(client: Client) -> None:
    head = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "annotations": {"pad": ""}}
    room = 4 * 1024 * 1024 - len(json.dumps(head))
    head["annotations"] = {"pad": "x" * room}
    payload = json.dumps(head).encode()
    assert len(payload) == 4 * 1024 * 1024
    response = await client.put(
        "/v2/big/manifests/v1", data=io.BytesIO(payload), headers={"Content-Type": OCI_INDEX}
    )
    assert response.status == 201


async def test_put_by_digest_must_match(client: Client) -> None:
    _, payload = await push_image(client, "dig", reference="v1")
    response = await client.put(
        f"/v2/dig/manifests/{digest_of(b'other')}",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


async def test_put_by_digest_with_tag_parameters(client: Client) -> None:
    digest, payload = await push_image(client, "tagged", reference="first")
    tags = ["1.2.3", "1.2", "1", "latest"]
    query = "&".join(f"tag={t}" for t in tags)
    response = await client.put(
        f"/v2/tagged/manifests/{digest}?{query}",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    assert response.headers.getall("OCI-Tag") == tags
    for tag in tags:
        got = await client.get(f"/v2/tagged/manifests/{tag}")
        assert got.headers["Docker-Content-Digest"] == digest


async def test_invalid_tag_parameter_is_rejected(client: Client) -> None:
    digest, payload = await push_image(client, "badtag", reference="ok")
    response = await client.put(
        f"/v2/badtag/manifests/{digest}?tag=-nope",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_INVALID"


@pytest.mark.parametrize("tag", ["-lead", ".dot", "x" * 129, "sp ace"])
async def test_invalid_tag_reference(client: Client, tag: str) -> None:
    response = await client.get(f"/v2/repo/manifests/{tag}")
    assert response.status == 400


async def test_subject_gives_oci_subject_header(client: Client) -> None:
    subject, subject_payload = await push_image(client, "subj")
    empty = b"{}"
    await push_blob(client, "subj", empty)
    referrer = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor("application/vnd.oci.empty.v1+json", empty)],
        "subject": descriptor(OCI_MANIFEST, subject_payload),
    }
    payload = json.dumps(referrer).encode()
    response = await client.put(
        f"/v2/subj/manifests/{digest_of(payload)}",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    assert response.headers["OCI-Subject"] == subject


async def test_subject_need_not_exist(client: Client) -> None:
    empty = b"{}"
    await push_blob(client, "dangling", empty)
    referrer = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [],
        "subject": descriptor(OCI_MANIFEST, b"not pushed yet"),
    }
    payload = json.dumps(referrer).encode()
    response = await client.put(
        f"/v2/dangling/manifests/{digest_of(payload)}",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    assert response.headers["OCI-Subject"] == digest_of(b"not pushed yet")


async def test_unknown_manifest_and_unknown_repository(client: Client) -> None:
    await push_image(client, "exists")
    response = await client.get("/v2/exists/manifests/nope")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    response = await client.get(f"/v2/exists/manifests/{digest_of(b'nope')}")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    response = await client.get("/v2/does/not/exist/manifests/latest")
    assert response.status == 404
    assert await error_code(response) == "NAME_UNKNOWN"
    assert (await client.head("/v2/exists/manifests/nope")).status == 404


async def test_retag_moves_the_tag(client: Client) -> None:
    first, _ = await push_image(client, "move", layer=b"one", reference="v")
    second, _ = await push_image(client, "move", layer=b"two", reference="v")
    assert first != second
    response = await client.get("/v2/move/manifests/v")
    assert response.headers["Docker-Content-Digest"] == second
    assert (await client.get(f"/v2/move/manifests/{first}")).status == 200


async def test_delete_by_tag_removes_only_the_tag(client: Client) -> None:
    digest, _ = await push_image(client, "deltag", reference="v1")
    response = await client.delete("/v2/deltag/manifests/v1")
    assert response.status == 202
    assert (await client.get("/v2/deltag/manifests/v1")).status == 404
    assert (await client.get(f"/v2/deltag/manifests/{digest}")).status == 200
    again = await client.delete("/v2/deltag/manifests/v1")
    assert again.status == 404
    assert await error_code(again) == "MANIFEST_UNKNOWN"


async def test_delete_by_digest_removes_manifest_and_its_tags(client: Client) -> None:
    digest, _ = await push_image(client, "deldig", reference="v1")
    response = await client.delete(f"/v2/deldig/manifests/{digest}")
    assert response.status == 202
    assert (await client.get(f"/v2/deldig/manifests/{digest}")).status == 404
    assert (await client.get("/v2/deldig/manifests/v1")).status == 404
    tags = await (await client.get("/v2/deldig/tags/list")).json()
    assert tags["tags"] == []
    again = await client.delete(f"/v2/deldig/manifests/{digest}")
    assert again.status == 404
    assert await error_code(again) == "MANIFEST_UNKNOWN"


async def test_delete_in_unknown_repository_is_name_unknown(client: Client) -> None:
    response = await client.delete(f"/v2/ghost/manifests/{digest_of(b'x')}")
    assert response.status == 404
    assert await error_code(response) == "NAME_UNKNOWN"


async def test_delete_disabled(client_no_delete: Client) -> None:
    digest, _ = await push_image(client_no_delete, "keep")
    response = await client_no_delete.delete(f"/v2/keep/manifests/{digest}")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"
    assert (await client_no_delete.get("/v2/keep/manifests/latest")).status == 200


async def test_concurrent_pushes_of_the_same_tag(client: Client) -> None:
    results = await asyncio.gather(
        *(push_image(client, "race", reference="same") for _ in range(10))
    )
    assert len({digest for digest, _ in results}) == 1
    tags = await (await client.get("/v2/race/tags/list")).json()
    assert tags["tags"] == ["same"]


async def test_oversized_manifest_without_content_length_is_413(client: Client) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"schemaVersion": 2, "mediaType": "%s", "manifests": [], "annotations": {"p": "' % (
            OCI_INDEX.encode()
        )
        for _ in range(5):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    response = await client.put(
        "/v2/chunked/manifests/v1", data=body(), headers={"Content-Type": OCI_INDEX}
    )
    assert response.status == 413
    assert await error_code(response) == "SIZE_INVALID"
    assert (await client.get("/v2/chunked/manifests/v1")).status == 404


async def test_if_none_match_gives_304(client: Client) -> None:
    digest, _ = await push_image(client, "etag", reference="v1")
    first = await client.get("/v2/etag/manifests/v1")
    assert first.headers["ETag"] == f'"{digest}"'
    again = await client.get("/v2/etag/manifests/v1", headers={"If-None-Match": f'"{digest}"'})
    assert again.status == 304
    assert again.headers["Docker-Content-Digest"] == digest
    assert await again.read() == b""
    other = await client.get("/v2/etag/manifests/v1", headers={"If-None-Match": '"sha256:0"'})
    assert other.status == 200


async def test_concurrent_pushes_of_one_image_and_tag(client: Client) -> None:
    results = await asyncio.gather(*(push_image(client, "race", reference="t") for _ in range(16)))
    assert len({digest for digest, _ in results}) == 1
    assert (await (await client.get("/v2/race/tags/list")).json())["tags"] == ["t"]
