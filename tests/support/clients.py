"""Helpers for the real-client end-to-end tests: run a CLI, talk to the registry over HTTP,
build small images with dockerd, and look at what a registry stored on disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

# Local docker/podman image names made by these tests all start with this, so cleanup is exact.
IMAGE_PREFIX = "berth-e2e-clients"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ALL_MANIFEST_TYPES = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

_BLOB_RE = re.compile(r"/blobs/(sha256|sha512)/[0-9a-f]{2}/([0-9a-f]{64,128})(?:/data)?$")


class CommandFailed(AssertionError):
    """A client command exited non-zero; the message carries its argv and output."""


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client command and capture its output; on failure raise with everything shown."""
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def unique(prefix: str) -> str:
    """A repository path component unique to one test run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


# --- HTTP ------------------------------------------------------------------------------------


def get_manifest(base_url: str, name: str, ref: str) -> tuple[requests.Response, dict[str, Any]]:
    resp = requests.get(
        f"{base_url}/v2/{name}/manifests/{ref}", headers={"Accept": ALL_MANIFEST_TYPES}, timeout=30
    )
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp, json.loads(resp.content)


def manifest_digest(base_url: str, name: str, ref: str) -> str:
    resp = requests.head(
        f"{base_url}/v2/{name}/manifests/{ref}", headers={"Accept": ALL_MANIFEST_TYPES}, timeout=30
    )
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.headers["Docker-Content-Digest"]


def list_tags(base_url: str, name: str) -> list[str]:
    resp = requests.get(f"{base_url}/v2/{name}/tags/list", timeout=30)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return list(resp.json().get("tags") or [])


def delete_manifest(base_url: str, name: str, ref: str) -> requests.Response:
    return requests.delete(f"{base_url}/v2/{name}/manifests/{ref}", timeout=30)


def blob_digests_of(manifest: Mapping[str, Any]) -> set[str]:
    """Config and layer digests an image manifest references."""
    digests = {layer["digest"] for layer in manifest.get("layers", [])}
    if "config" in manifest:
        digests.add(manifest["config"]["digest"])
    return digests


# --- On-disk registry state -------------------------------------------------------------------


def stored_blob_files(data_dir: Path) -> list[tuple[str, Path]]:
    """Every blob file under a registry data dir, as (digest, path).

    Works for Berth's blobstore (`blobs/sha256/ab/<hex>`) and Distribution's
    (`docker/registry/v2/blobs/sha256/ab/<hex>/data`); anything else under a blobs/ dir
    is returned with digest "" so a stray file shows up in a count.
    """
    found: list[tuple[str, Path]] = []
    for root, _dirs, files in os.walk(data_dir):
        if "/blobs" not in root:
            continue
        for name in files:
            path = Path(root, name)
            match = _BLOB_RE.search(str(path))
            found.append((f"{match.group(1)}:{match.group(2)}" if match else "", path))
    return found


def unmount_under(base: Path) -> None:
    """Lazily unmount every mount at or below `base` (overlay snapshots a daemon left)."""
    with contextlib.suppress(OSError):
        targets = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted(targets, reverse=True):
            if target.startswith(str(base)):
                subprocess.run(["umount", "-l", target], check=False, capture_output=True)
