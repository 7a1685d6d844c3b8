"""Pushing to a registry: blob existence checks, cross-repository mounts, blob uploads
(monolithic or chunked) and manifest PUTs, as the OCI distribution spec's push section and
Docker's upload protocol describe them.

A blob's bytes stream from a ranged reader (a content store's `read(digest, start, end)`)
straight into the request bodies, never held in memory: a blob up to `chunk_size` goes in one
PUT; a bigger one in PATCHes of `chunk_size` bytes (or the registry's `OCI-Chunk-Min-Length`,
if larger), then a closing PUT with the digest. A request retried re-reads its range; a
PATCH that failed continues from where the registry says the upload stands (or, when the
registry no longer knows that upload, from a new one).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Final

from blobstore import Digest
from registry_client.client import Body, RegistryClient
from registry_client.errors import AuthenticationFailed, NotFound, RegistryError

DEFAULT_CHUNK_SIZE: Final = 16 * 1024 * 1024
# Streams bytes [start, end) of the blob being uploaded (a content store's ranged read).
RangeReader = Callable[[int, int], AsyncIterator[bytes]]
_OCTETS: Final = {"Content-Type": "application/octet-stream"}


async def blob_exists(client: RegistryClient, repository: str, digest: Digest) -> bool:
    """HEAD the blob in `repository`: True when the registry has it there."""
    try:
        async with client.push_request("HEAD", _blob_path(repository, digest), repository, {}):
            return True
    except NotFound:
        return False


async def mount_blob(
    client: RegistryClient, repository: str, digest: Digest, source: str
) -> str | None:
    """Ask the registry to link `digest` from `source` into `repository` (no bytes sent).
    None when mounted; else the Location of the upload the registry opened instead (it does
    not have the blob in `source`, or may not mount), which the caller can write to."""
    query = urllib.parse.urlencode({"mount": str(digest), "from": source})
    path = f"/v2/{repository}/blobs/uploads/?{query}"
    async with client.push_request(
        "POST", path, repository, {"Content-Length": "0"}, mount_from=source
    ) as resp:
        if resp.status == 201:
            return None
        return _location(resp.headers.get("Location"), path)


async def start_upload(client: RegistryClient, repository: str) -> tuple[str, int]:
    """Open an upload session: its Location, and the smallest PATCH it accepts (0: any)."""
    path = f"/v2/{repository}/blobs/uploads/"
    async with client.push_request("POST", path, repository, {"Content-Length": "0"}) as resp:
        minimum = resp.headers.get("OCI-Chunk-Min-Length", "")
        location = _location(resp.headers.get("Location"), path)
        return location, int(minimum) if minimum.isdigit() else 0


async def upload_blob(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    size: int,
    read: RangeReader,
    *,
    location: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Upload the blob's `size` bytes, read by `read(start, end)`, to `repository` (into the
    upload at `location` if one is open already). `progress` hears the bytes sent so far."""
    minimum = 0
    if location is None:
        location, minimum = await start_upload(client, repository)
    piece = max(chunk_size, minimum)
    report = progress or (lambda sent: None)
    if size <= piece:
        await _finish(client, repository, location, digest, _body(read, 0, size, report), size)
        return
    start = failures = 0
    while start < size:
        end = min(start + piece, size)
        headers = {
            **_OCTETS,
            "Content-Range": f"{start}-{end - 1}",
            "Content-Length": str(end - start),
        }
        try:
            async with client.push_request(
                "PATCH", location, repository, headers, data=_body(read, start, end, report)
            ) as resp:
                location = _location(resp.headers.get("Location"), location)
        except AuthenticationFailed:
            raise
        except RegistryError:
            # the registry may have kept part of the chunk (or all of it, and the answer was
            # lost): ask where the upload stands and go on from there, or start over when
            # the upload is gone (Distribution's Location carries a state that went stale)
            failures += 1
            if failures >= client.retry.attempts:
                raise
            try:
                location, start = await upload_offset(client, repository, location)
            except NotFound:
                (location, _), start = await start_upload(client, repository), 0
            continue
        start, failures = end, 0
    await _finish(client, repository, location, digest, b"", 0)


async def upload_offset(client: RegistryClient, repository: str, location: str) -> tuple[str, int]:
    """Where an upload stands (GET on its Location): its Location and the bytes it holds."""
    async with client.push_request("GET", location, repository, {}) as resp:
        held = resp.headers.get("Range", "")
        location = _location(resp.headers.get("Location"), location)
    _, _, last = held.partition("-")
    # "0-0" is what registries answer for an empty upload (Range ends are inclusive)
    return location, int(last) + 1 if last.isdigit() and int(last) > 0 else 0


async def put_manifest(
    client: RegistryClient, repository: str, reference: str, body: bytes, media_type: str
) -> Digest:
    """PUT a manifest (or index) under a tag or digest; returns its digest."""
    digest = Digest.of(body)
    async with client.push_request(
        "PUT",
        f"/v2/{repository}/manifests/{reference}",
        repository,
        {"Content-Type": media_type},
        data=body,
    ) as resp:
        answered = resp.headers.get("Docker-Content-Digest")
    if answered and answered != str(digest):
        raise RegistryError(
            f"{repository}:{reference}: the registry stored the manifest as {answered}, "
            f"not {digest}"
        )
    return digest


async def _finish(
    client: RegistryClient,
    repository: str,
    location: str,
    digest: Digest,
    body: Body,
    size: int,
) -> None:
    url = _with_query(location, digest=str(digest))
    headers = {**_OCTETS, "Content-Length": str(size)}
    async with client.push_request("PUT", url, repository, headers, data=body) as resp:
        answered = resp.headers.get("Docker-Content-Digest")
    if answered and answered != str(digest):
        raise RegistryError(f"blob {digest}: the registry stored it as {answered}")


def _body(
    read: RangeReader, start: int, end: int, progress: Callable[[int], None]
) -> Callable[[], AsyncIterator[bytes]]:
    """A request body of bytes [start, end), opened anew for each attempt, reporting the
    blob's bytes sent so far as they go."""

    async def stream() -> AsyncIterator[bytes]:
        sent = start
        async for chunk in read(start, end):
            yield chunk
            sent += len(chunk)
            progress(sent)
        if sent != end:
            raise RegistryError(f"the local content ended at byte {sent}, not {end}")

    return stream


def _blob_path(repository: str, digest: Digest) -> str:
    return f"/v2/{repository}/blobs/{digest}"


def _location(value: str | None, request_path: str) -> str:
    """An upload's Location, absolute or relative to the request, as a path or URL."""
    if not value:
        raise RegistryError(f"POST {request_path}: the registry sent no upload Location")
    if value.startswith(("http://", "https://")):
        return value
    return urllib.parse.urljoin(request_path, value)


def _with_query(location: str, **params: str) -> str:
    separator = "&" if urllib.parse.urlsplit(location).query else "?"
    return f"{location}{separator}{urllib.parse.urlencode(params)}"
