"""ORAS (oras-py) against the registry: OCI 1.1 artifacts with artifactType, artifacts with a
subject, and the referrers API (called directly: oras-py never calls it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import oras.client
import oras.oci
import pytest
import requests

from tests.support.clients import OCI_INDEX, OCI_MANIFEST, get_manifest
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
ARTIFACT_TYPE = "application/vnd.berth.test.artifact.v1"
SIGNATURE_TYPE = "application/vnd.berth.test.signature.v1"
SBOM_TYPE = "application/vnd.berth.test.sbom.v1"
LEGACY_CONFIG_TYPE = "application/vnd.berth.test.legacy-config.v1+json"


@pytest.fixture
def oras_client(client_registry: RunningServer) -> oras.client.OrasClient:
    return oras.client.OrasClient(hostname=client_registry.host, insecure=True)


def descriptor(path: Path, media_type: str, **extra: Any) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "mediaType": media_type,
        "digest": f"sha256:{hashlib.sha256(data).hexdigest()}",
        "size": len(data),
        **extra,
    }


def push_artifact(
    client: oras.client.OrasClient,
    ref: str,
    workdir: Path,
    name: str,
    artifact_type: str,
    subject: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Write an OCI 1.1 artifact by hand (empty config, one file layer, artifactType, optional
    subject) with oras-py's upload_blob/upload_manifest; return (digest, manifest)."""
    workdir.mkdir(parents=True, exist_ok=True)
    payload = workdir / name
    payload.write_text(f"{name} for {ref}\n")
    empty = workdir / "empty.json"
    empty.write_text("{}")
    layer = descriptor(
        payload,
        "application/vnd.berth.test.file.v1+text",
        annotations={"org.opencontainers.image.title": name},
    )
    config = descriptor(empty, EMPTY_MEDIA_TYPE)
    container = client.get_container(ref)
    for path, desc in ((payload, layer), (empty, config)):
        resp = client.upload_blob(str(path), container, desc)
        assert resp.status_code in (200, 201), (resp.status_code, resp.text)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config,
        "layers": [layer],
        "annotations": {"org.opencontainers.image.description": name},
    }
    if subject is not None:
        manifest["subject"] = subject
    resp = client.upload_manifest(manifest, container)
    assert resp.status_code == 201, (resp.status_code, resp.text)
    digest = resp.headers["Docker-Content-Digest"]
    if subject is not None:
        assert resp.headers.get("OCI-Subject") == subject["digest"]  # distribution-spec v1.1
    return digest, manifest


def test_push_pull_artifact_with_artifact_type(
    client_registry: RunningServer, repo: str, oras_client: oras.client.OrasClient, tmp_path: Path
) -> None:
    ref = f"{client_registry.host}/{repo}:v1"
    digest, manifest = push_artifact(
        oras_client, ref, tmp_path / "in", "artifact.txt", ARTIFACT_TYPE
    )
    resp, stored = get_manifest(client_registry.url, repo, "v1")
    assert resp.headers["Docker-Content-Digest"] == digest
    assert resp.headers["Content-Type"] == OCI_MANIFEST
    assert stored == manifest
    assert stored["artifactType"] == ARTIFACT_TYPE

    files = oras_client.pull(target=ref, outdir=str(tmp_path / "out"))
    assert [Path(f).name for f in files] == ["artifact.txt"]
    assert Path(files[0]).read_text() == (tmp_path / "in" / "artifact.txt").read_text()
    assert oras_client.get_tags(f"{client_registry.host}/{repo}") == ["v1"]


def test_artifact_with_subject_found_through_referrers(
    client_registry: RunningServer, repo: str, oras_client: oras.client.OrasClient, tmp_path: Path
) -> None:
    base = f"{client_registry.host}/{repo}"
    subject_digest, subject_manifest = push_artifact(
        oras_client, f"{base}:app", tmp_path / "app", "app.txt", ARTIFACT_TYPE
    )
    subject_size = len(
        requests.get(
            f"{client_registry.url}/v2/{repo}/manifests/{subject_digest}",
            headers={"Accept": OCI_MANIFEST},
            timeout=30,
        ).content
    )
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_size}
    sig_digest, _ = push_artifact(
        oras_client, f"{base}:sig", tmp_path / "sig", "sig.txt", SIGNATURE_TYPE, subject
    )
    sbom_digest, _ = push_artifact(
        oras_client, f"{base}:sbom", tmp_path / "sbom", "sbom.txt", SBOM_TYPE, subject
    )

    # oras-py's own push(subject=...): a pre-1.1 artifact whose type is its config mediaType.
    legacy_file = tmp_path / "legacy" / "legacy.txt"
    legacy_file.parent.mkdir()
    legacy_file.write_text("legacy\n")
    (tmp_path / "legacy" / "config.json").write_text('{"legacy": true}')
    pushed = oras_client.push(
        target=f"{base}:legacy",
        files=[f"{legacy_file}:text/plain"],
        manifest_config=f"{tmp_path / 'legacy' / 'config.json'}:{LEGACY_CONFIG_TYPE}",
        subject=oras.oci.Subject(**subject),
        disable_path_validation=True,
    )
    assert pushed.status_code == 201
    legacy_digest = pushed.headers["Docker-Content-Digest"]

    url = f"{client_registry.url}/v2/{repo}/referrers/{subject_digest}"
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith(OCI_INDEX)
    index = resp.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert set(by_digest) == {sig_digest, sbom_digest, legacy_digest}
    assert by_digest[sig_digest]["artifactType"] == SIGNATURE_TYPE
    assert by_digest[sig_digest]["mediaType"] == OCI_MANIFEST
    assert by_digest[sig_digest]["annotations"] == {
        "org.opencontainers.image.description": "sig.txt"
    }
    assert by_digest[legacy_digest]["artifactType"] == LEGACY_CONFIG_TYPE  # from config.mediaType
    for digest, entry in by_digest.items():
        body = requests.get(
            f"{client_registry.url}/v2/{repo}/manifests/{digest}",
            headers={"Accept": OCI_MANIFEST},
            timeout=30,
        ).content
        assert entry["size"] == len(body)
        assert json.loads(body)["subject"]["digest"] == subject_digest

    filtered = requests.get(url, params={"artifactType": SBOM_TYPE}, timeout=30)
    assert filtered.status_code == 200
    assert filtered.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom_digest]

    pulled = oras_client.pull(target=f"{base}:sig", outdir=str(tmp_path / "pulled"))
    assert [Path(f).read_text() for f in pulled] == [(tmp_path / "sig" / "sig.txt").read_text()]

    none = requests.get(f"{client_registry.url}/v2/{repo}/referrers/{sig_digest}", timeout=30)
    assert none.status_code == 200
    assert none.json()["manifests"] == []
    assert subject_manifest["artifactType"] == ARTIFACT_TYPE


def test_chunked_push_and_pull(
    client_registry: RunningServer, repo: str, oras_client: oras.client.OrasClient, tmp_path: Path
) -> None:
    """oras-py's chunked upload: POST, PATCH per 1 MiB, PUT ?digest=."""
    data = tmp_path / "in" / "blob.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(3 * 2**20 + 12345))
    ref = f"{client_registry.host}/{repo}:chunked"
    resp = oras_client.push(
        target=ref,
        files=[f"{data}:application/octet-stream"],
        do_chunked=True,
        chunk_size=2**20,
        disable_path_validation=True,
    )
    assert resp.status_code == 201
    _, manifest = get_manifest(client_registry.url, repo, "chunked")
    assert manifest["layers"][0]["size"] == data.stat().st_size
    files = oras_client.pull(target=ref, outdir=str(tmp_path / "out"))
    assert Path(files[0]).read_bytes() == data.read_bytes()
