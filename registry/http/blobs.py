"""Blob handlers: GET/HEAD (zero-copy sendfile, Range) and DELETE."""

from __future__ import annotations

from aiohttp import web

from blobstore import BlobInfo, Digest
from registry.errcode import BLOB_RANGE_INVALID, RegistryError
from registry.http.keys import BLOBS, PROXY, SENDFILE_POOL, TOUCHES
from registry.http.params import local_repo_name, parse_range, proxied, repo_name
from registry.http.sendfile import send_file, sendfile_socket
from registry.names import parse_digest
from registry.proxy import Listener, Route


async def get_blob(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /v2/{name}/blobs/{digest}"""
    name, digest = repo_name(request), parse_digest(request.match_info["digest"])
    blobs = request.app[BLOBS]
    route = proxied(request, name)
    if route is None:
        # A GET also checks that the bytes are there; a HEAD answers from the database.
        head = request.method == "HEAD"
        info = await (blobs.linked(name, digest) if head else blobs.stat(name, digest))
    else:
        found = await _through_cache(request, route, digest)
        if isinstance(found, Listener):
            return await _stream_fetch(request, name, digest, found)
        info = found
    if request.method == "HEAD":
        request.app[TOUCHES].touch(str(digest))  # garbage collection's grace (docs/gc.md)
    elif (url := await blobs.redirect_url(digest)) is not None:
        await blobs.pulled(name, info)
        raise web.HTTPTemporaryRedirect(url, headers={"Docker-Content-Digest": str(digest)})
    headers = {
        "Docker-Content-Digest": str(info.digest),
        "Content-Type": "application/octet-stream",
        "ETag": f'"{info.digest}"',
        "Accept-Ranges": "bytes",
    }
    span = _requested_span(request, info.size, headers)
    if request.method != "HEAD":
        await blobs.pulled(name, info)  # after the Range check: a 416 is no pull
    start, stop, status = (0, info.size, 200) if span is None else (*span, 206)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{info.size}"
    if request.method == "HEAD":  # headers only: no stream, no sendfile thread
        headers["Content-Length"] = str(stop - start)
        return web.Response(status=status, headers=headers)
    path = blobs.local_path(digest)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = stop - start
    if path is not None and sendfile_socket(request) is not None:
        await send_file(request, response, path, start, stop - start, request.app[SENDFILE_POOL])
        return response
    # No local file, or TLS: stream through the event loop.
    await response.prepare(request)
    async for chunk in blobs.read(digest, start, stop):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _through_cache(request: web.Request, route: Route, digest: Digest) -> BlobInfo | Listener:
    """A cached blob; else for a HEAD its size upstream, for a GET its download (a Range
    request waits for the whole blob to be cached, then is served from it)."""
    cache = request.app[PROXY].blobs
    info = await cache.find(route, digest)
    if info is not None:
        return info
    if request.method == "HEAD":
        return BlobInfo(digest, await cache.upstream_size(route, digest))
    listener = cache.fetch(route, digest)
    if "Range" not in request.headers:
        return listener
    try:
        return await listener.committed()
    finally:
        listener.close()


async def _stream_fetch(
    request: web.Request, name: str, digest: Digest, listener: Listener
) -> web.StreamResponse:
    """A blob as it arrives from the upstream. Cut short if its bytes fail verification."""
    try:
        size = await listener.size()
        await request.app[BLOBS].pulled(name, BlobInfo(digest, size))
        response = web.StreamResponse(
            headers={
                "Docker-Content-Digest": str(digest),
                "Content-Type": "application/octet-stream",
                "ETag": f'"{digest}"',
            }
        )
        response.content_length = size
        await response.prepare(request)
        async for chunk in listener.chunks():
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        listener.close()


def _requested_span(
    request: web.Request, size: int, headers: dict[str, str]
) -> tuple[int, int] | None:
    """The [start, stop) a satisfiable Range asks for; None when there is none to honour.
    An unsatisfiable one is answered 416 here."""
    value = request.headers.get("Range")
    if value is None:
        return None
    try:
        return parse_range(value, size)
    except ValueError:
        raise RegistryError(
            BLOB_RANGE_INVALID,
            detail={"range": value, "size": size},
            headers={"Accept-Ranges": "bytes", "Content-Range": f"bytes */{size}"},
        ) from None


async def delete_blob(request: web.Request) -> web.Response:
    """DELETE /v2/{name}/blobs/{digest}: unlink from the repository."""
    name, digest = local_repo_name(request), parse_digest(request.match_info["digest"])
    await request.app[BLOBS].delete(name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
