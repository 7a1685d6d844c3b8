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
    span = _requested_span(request, info.size, headers)
    path = blobs.local_path(digest)
    if path is not None and (span is not None or "Range" not in request.headers):
        return web.FileResponse(path, headers=headers)  # sendfile; FileResponse applies the Range
    # No local file, or a Range header that RFC 9110 says to ignore (unknown unit, several
    # ranges, malformed): FileResponse would still act on it, so stream it ourselves.
    start, stop, status = (0, info.size, 200) if span is None else (*span, 206)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{info.size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = stop - start
    await response.prepare(request)
    if request.method != "HEAD":
        async for chunk in blobs.read(digest, start, stop):
            await response.write(chunk)
    await response.write_eof()
    return response


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
        raise web.HTTPRequestRangeNotSatisfiable(
            headers={**headers, "Content-Range": f"bytes */{size}"}
        ) from None


async def delete_blob(request: web.Request) -> web.Response:
    """DELETE /v2/{name}/blobs/{digest}: unlink from the repository."""
    name, digest = repo_name(request), parse_digest(request.match_info["digest"])
    await request.app[BLOBS].delete(name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
