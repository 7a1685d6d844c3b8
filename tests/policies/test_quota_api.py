"""Quotas over the API: shared blobs count once, refusals store nothing, namespaces add up."""

from __future__ import annotations

import asyncio
import json

from registry import Config
from registry.config import QuotaRule
from tests.api.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    push_blob,
    push_image,
)
from tests.policies.conftest import PolicyClient, blob_file, denied

CONFIG_BLOB = b'{"architecture":"amd64","os":"linux"}'


async def test_shared_layers_count_once_per_repository(policy_client: PolicyClient) -> None:
    layer = b"L" * 600
    limit = len(layer) + len(CONFIG_BLOB) + 2 * 700  # room for the blobs and two manifests
    client = await policy_client(quotas=(QuotaRule(("q/**",), limit),))
    _, first = await push_image(client, "q/app", layer=layer, reference="1")
    # Same layer and config again in a second manifest: only the manifest adds bytes.
    _, second = await push_image(
        client, "q/app", layer=layer, reference="2", extra={"annotations": {}}
    )
    await push_image(client, "q/app", layer=layer, reference="3")  # first manifest, new tag
    await push_blob(client, "q/app", layer)  # re-uploading a held blob adds nothing
    other = b"M" * 600
    response = await client.post(f"/v2/q/app/blobs/uploads/?digest={digest_of(other)}", data=other)
    message = await denied(response)
    used = len(layer) + len(CONFIG_BLOB) + len(first) + len(second)
    assert message == (
        f"storage quota exceeded: repository q/app has a limit of 2.0 KiB ({limit} bytes) "
        f"and uses 1.5 KiB ({used} bytes); this blob needs 600 bytes more"
    )
    # The limit is per repository: another repository under the rule starts from zero.
    await push_image(client, "q/other", layer=other)


async def test_refused_push_stores_nothing(policy_client: PolicyClient, config: Config) -> None:
    client = await policy_client(quotas=(QuotaRule(("small",), 100),))
    data = b"x" * 101
    digest = digest_of(data)
    mono = await client.post(f"/v2/small/blobs/uploads/?digest={digest}", data=data)
    assert "has a limit of 100 bytes and uses 0 bytes" in await denied(mono)

    start = await client.post("/v2/small/blobs/uploads/")
    location = start.headers["Location"]
    patched = await client.patch(location, data=data[:50], headers={"Content-Range": "0-49"})
    assert patched.status == 202
    put = await client.put(f"{location}?digest={digest}", data=data[50:])
    await denied(put)

    whole = await client.post("/v2/small/blobs/uploads/")
    put = await client.put(f"{whole.headers['Location']}?digest={digest}", data=data)
    await denied(put)

    assert (await client.head(f"/v2/small/blobs/{digest}")).status == 404
    assert not blob_file(config, digest).exists()
    assert list((config.blob_root / "ingest").iterdir()) == []
    assert (await client.get(location)).status == 404  # the session is gone
    # Under the limit, the same repository still takes pushes.
    await push_blob(client, "small", b"y" * 100)


async def test_manifest_over_the_limit_is_not_stored(policy_client: PolicyClient) -> None:
    layer = b"layer"
    limit = len(layer) + len(CONFIG_BLOB) + 10  # the blobs fit, the manifest does not
    client = await policy_client(quotas=(QuotaRule(("m",), limit),))
    await push_blob(client, "m", CONFIG_BLOB)
    await push_blob(client, "m", layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, CONFIG_BLOB),
        "layers": [descriptor(OCI_LAYER, layer)],
    }
    payload = json.dumps(manifest).encode()
    response = await client.put(
        "/v2/m/manifests/v1", data=payload, headers={"Content-Type": OCI_MANIFEST}
    )
    message = await denied(response)
    used = limit - 10 + len(payload)
    assert message == (
        f"storage quota exceeded: repository m has a limit of {limit} bytes; "
        f"with this push it would use {used} bytes"
    )
    assert (await client.get("/v2/m/manifests/v1")).status == 404
    assert (await client.get(f"/v2/m/manifests/{digest_of(payload)}")).status == 404
    tags = await client.get("/v2/m/tags/list")
    assert (await tags.json())["tags"] in (None, [])


async def test_namespace_limit_counts_each_blob_once(policy_client: PolicyClient) -> None:
    shared = b"S" * 1000
    rule = QuotaRule(("**",), 4000, scope="namespace")
    client = await policy_client(quotas=(rule,))
    payloads = set()
    for name in ("team/a", "team/b", "team/c/deep"):
        # The same image in three repositories: its blobs and its manifest count once.
        payloads.add((await push_image(client, name, layer=shared))[1])
    mounted = await client.post(f"/v2/team/d/blobs/uploads/?mount={digest_of(shared)}&from=team/a")
    assert mounted.status == 201  # a mount of a held blob adds nothing either
    (manifest,) = payloads
    used = len(shared) + len(CONFIG_BLOB) + len(manifest)
    room = 4000 - used
    fits = b"F" * room
    await push_blob(client, "team/e", fits)  # exactly up to the limit
    one_more = b"B"
    response = await client.post(
        f"/v2/team/e/blobs/uploads/?digest={digest_of(one_more)}", data=one_more
    )
    message = await denied(response)
    assert message == (
        "storage quota exceeded: namespace team has a limit of 3.9 KiB (4000 bytes) "
        "and uses 3.9 KiB (4000 bytes); this blob needs 1 byte more"
    )
    # Another namespace has a limit of its own, and a same-prefix name is not in `team`.
    big = b"B" * 3000
    await push_image(client, "teamx/a", layer=big)
    await push_image(client, "other", layer=big)


async def test_mount_over_the_limit_is_denied(policy_client: PolicyClient) -> None:
    data = b"D" * 300
    client = await policy_client(quotas=(QuotaRule(("tiny/*",), 200),))
    await push_blob(client, "free", data)
    response = await client.post(f"/v2/tiny/x/blobs/uploads/?mount={digest_of(data)}&from=free")
    assert "with this push it would use 300 bytes" in await denied(response)
    assert (await client.head(f"/v2/tiny/x/blobs/{digest_of(data)}")).status == 404


async def test_smallest_matching_limit_applies(policy_client: PolicyClient) -> None:
    client = await policy_client(quotas=(QuotaRule(("**",), 10_000), QuotaRule(("strict/**",), 50)))
    await push_blob(client, "loose", b"z" * 500)
    response = await client.post(
        f"/v2/strict/r/blobs/uploads/?digest={digest_of(b'z' * 60)}", data=b"z" * 60
    )
    assert "has a limit of 50 bytes" in await denied(response)


async def test_racing_uploads_stay_within_the_limit(policy_client: PolicyClient) -> None:
    client = await policy_client(quotas=(QuotaRule(("pair",), 150),))
    first, second = b"1" * 100, b"2" * 100  # each fits alone, not both

    async def upload(data: bytes) -> tuple[str, int]:
        location = (await client.post("/v2/pair/blobs/uploads/")).headers["Location"]
        response = await client.put(f"{location}?digest={digest_of(data)}", data=data)
        return location, response.status

    results = await asyncio.gather(upload(first), upload(second))
    assert sorted(status for _, status in results) == [201, 403]
    for (location, status), data in zip(results, (first, second), strict=True):
        head = await client.head(f"/v2/pair/blobs/{digest_of(data)}")
        assert head.status == (200 if status == 201 else 404)
        assert (await client.get(location)).status == 404  # no session left either way
