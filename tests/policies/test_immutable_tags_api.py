"""Immutable tags over the API: no move, no delete, no delete of their manifest by digest."""

from __future__ import annotations

from registry.config import ImmutableTagRule
from tests.api.oci import OCI_MANIFEST, Client, push_image
from tests.policies.conftest import PolicyClient, denied

RULES = (ImmutableTagRule(("prod/**",), ("v*", "stable")),)


async def _tagged(client: Client, repo: str, tag: str) -> str:
    response = await client.head(f"/v2/{repo}/manifests/{tag}")
    assert response.status == 200
    return response.headers["Docker-Content-Digest"]


async def test_an_immutable_tag_cannot_be_moved(policy_client: PolicyClient) -> None:
    client = await policy_client(immutabletags=RULES)
    first, _ = await push_image(client, "prod/app", layer=b"one", reference="v1")
    await push_image(client, "prod/app", layer=b"one", reference="v1")  # identical: fine
    second, payload = await push_image(client, "prod/app", layer=b"two", reference=None)
    headers = {"Content-Type": OCI_MANIFEST}
    message = (
        f"tag v1 of prod/app is immutable: it points to {first} and cannot be moved to "
        "another manifest"
    )
    response = await client.put("/v2/prod/app/manifests/v1", data=payload, headers=headers)
    assert await denied(response) == message
    by_digest = f"/v2/prod/app/manifests/{second}?tag=v1&tag=other"
    response = await client.put(by_digest, data=payload, headers=headers)
    assert await denied(response) == message
    assert await _tagged(client, "prod/app", "v1") == first
    assert (await client.head("/v2/prod/app/manifests/other")).status == 404  # nothing stored
    # Tags the rules do not name move as usual, in the same repository and elsewhere.
    await push_image(client, "prod/app", layer=b"one", reference="latest")
    await push_image(client, "prod/app", layer=b"two", reference="latest")
    await push_image(client, "dev/app", layer=b"one", reference="v1")
    await push_image(client, "dev/app", layer=b"two", reference="v1")
    assert await _tagged(client, "dev/app", "v1") == second


async def test_an_immutable_tag_cannot_be_deleted(policy_client: PolicyClient) -> None:
    client = await policy_client(immutabletags=RULES)
    digest, _ = await push_image(client, "prod/svc", reference="stable")
    response = await client.delete("/v2/prod/svc/manifests/stable")
    assert await denied(response) == "tag stable of prod/svc is immutable and cannot be deleted"
    response = await client.delete(f"/v2/prod/svc/manifests/{digest}")
    assert await denied(response) == (
        f"manifest {digest} of prod/svc is tagged stable, an immutable tag, and cannot be deleted"
    )
    assert await _tagged(client, "prod/svc", "stable") == digest
    # A mutable tag on the same manifest may go; the manifest stays while `stable` holds it.
    await push_image(client, "prod/svc", reference="latest")
    assert (await client.delete("/v2/prod/svc/manifests/latest")).status == 202
    assert (await client.head("/v2/prod/svc/manifests/latest")).status == 404


async def test_untagged_manifests_of_protected_repositories_may_be_deleted(
    policy_client: PolicyClient,
) -> None:
    client = await policy_client(immutabletags=RULES)
    digest, _ = await push_image(client, "prod/tmp", reference="build-7")
    assert (await client.delete(f"/v2/prod/tmp/manifests/{digest}")).status == 202
    assert (await client.head(f"/v2/prod/tmp/manifests/{digest}")).status == 404
