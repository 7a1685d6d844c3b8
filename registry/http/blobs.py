"""Blob handlers: GET/HEAD (sendfile, Range) and DELETE."""

from __future__ import annotations

from aiohttp import web

from registry.http.keys import BLOBS
from registry.http.params import parse_range, repo_name
from registry.names import parse_digest


async def get_blob(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /v2/{name}/blobs/{digest}"""
    name, digest = repo_name(request), parse_digest(request.match_info["digest"])
    blobs = request.app[BLOBS]
    info = await blobs.stat(name, digest)
    headers = {
        "Docker-Content-Digest": str(info.digest),
        "Content-Type": "application/octet-stream",
        "ETag": f'"{info.digest}"',
        "Accept-Ranges": "bytes",
    }
    path = blobs.local_path(digest)
    if path is None:
        return await _stream(request, info.size, headers)
    response = web.FileResponse(path, headers=headers)
    if _range_ignored(request, info.size):
        # RFC 9110 14.2: an unknown unit, or a range we do not serve (several, malformed), is
        # ignored; FileResponse would answer 416, so it gets to see the request without it.
        without = request.headers.copy()
        del without["Range"]
        await response.prepare(request.clone(headers=without))
    return response


def _range_ignored(request: web.Request, size: int) -> bool:
    value = request.headers.get("Range")
    if value is None:
        return False
    try:
        return parse_range(value, size) is None
    except ValueError:
        return False  # well formed but unsatisfiable: FileResponse answers 416


async def _stream(request: web.Request, size: int, headers: dict[str, str]) -> web.StreamResponse:
    """For stores without local files: stream through the event loop, honouring Range."""
    digest = parse_digest(request.match_info["digest"])
    start, end, status = 0, size, 200
    if "Range" in request.headers:
        try:
            picked = parse_range(request.headers["Range"], size)
        except ValueError:
            raise web.HTTPRequestRangeNotSatisfiable(
                headers={**headers, "Content-Range": f"bytes */{size}"}
            ) from None
        if picked is not None:
            (start, end), status = picked, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method != "HEAD":
        async for chunk in request.app[BLOBS].read(digest, start, end):
            await response.write(chunk)
    await response.write_eof()
    return response


async def delete_blob(request: web.Request) -> web.Response:
    """DELETE /v2/{name}/blobs/{digest}: unlink from the repository."""
    name, digest = repo_name(request), parse_digest(request.match_info["digest"])
    await request.app[BLOBS].delete(name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
