"""Upload handlers: POST (session, monolithic, mount), PATCH, PUT, GET status, DELETE."""

from __future__ import annotations

import contextlib

from aiohttp import web

from blobstore import SUPPORTED_ALGORITHMS, BlobInfo
from registry.auth import allowed
from registry.errcode import DIGEST_INVALID, RegistryError
from registry.http.keys import BLOBS, UPLOADS
from registry.http.params import body_chunks, local_repo_name, parse_content_range
from registry.names import check_name, parse_digest
from registry.service import UploadState, range_header


def _upload_response(name: str, state: UploadState, status: int) -> web.Response:
    return web.Response(
        status=status,
        headers={
            "Location": f"/v2/{name}/blobs/uploads/{state.id}",
            "Range": range_header(state.size),
            "Docker-Upload-UUID": state.id,
            "Content-Length": "0",
        },
    )


def _created(name: str, info: BlobInfo) -> web.Response:
    return web.Response(
        status=201,
        headers={
            "Location": f"/v2/{name}/blobs/{info.digest}",
            "Docker-Content-Digest": str(info.digest),
            "Content-Length": "0",
        },
    )


async def start_upload(request: web.Request) -> web.Response:
    """POST /v2/{name}/blobs/uploads/ [?digest=] [?mount=&from=]"""
    name = local_repo_name(request)
    query = request.query
    if "mount" in query:
        digest = parse_digest(query["mount"])
        source = check_name(query["from"]) if query.get("from") else None
        info = await request.app[BLOBS].mount(
            name, digest, source, lambda repo: allowed(request, repo, "pull")
        )
        if info is not None:
            return _created(name, info)
    elif "digest" in query:
        digest = parse_digest(query["digest"])
        async with contextlib.aclosing(body_chunks(request)) as body:
            info = await request.app[UPLOADS].upload_whole(name, digest, body)
        return _created(name, info)
    algorithm = query.get("digest-algorithm")
    if algorithm is not None and algorithm not in SUPPORTED_ALGORITHMS:
        raise RegistryError(
            DIGEST_INVALID,
            detail={"digest-algorithm": algorithm, "supported": SUPPORTED_ALGORITHMS},
        )
    state = await request.app[UPLOADS].begin(name)
    return _upload_response(name, state, 202)


async def upload_status(request: web.Request) -> web.Response:
    """GET /v2/{name}/blobs/uploads/{uuid}"""
    name = local_repo_name(request)
    state = await request.app[UPLOADS].status(name, request.match_info["uuid"])
    return _upload_response(name, state, 204)


async def patch_upload(request: web.Request) -> web.Response:
    """PATCH /v2/{name}/blobs/uploads/{uuid}: append a chunk (Content-Range optional)."""
    name = local_repo_name(request)
    chunk_range = parse_content_range(request.headers.get("Content-Range"))
    async with contextlib.aclosing(body_chunks(request)) as body:
        state = await request.app[UPLOADS].append(
            name, request.match_info["uuid"], body, chunk_range, request.content_length
        )
    return _upload_response(name, state, 202)


async def finish_upload(request: web.Request) -> web.Response:
    """PUT /v2/{name}/blobs/uploads/{uuid}?digest=: optional last chunk, verify, publish."""
    name = local_repo_name(request)
    digest = parse_digest(request.query.get("digest", ""))
    chunk_range = parse_content_range(request.headers.get("Content-Range"))
    async with contextlib.aclosing(body_chunks(request)) as body:
        info = await request.app[UPLOADS].complete(
            name, request.match_info["uuid"], digest, body, chunk_range, request.content_length
        )
    return _created(name, info)


async def cancel_upload(request: web.Request) -> web.Response:
    """DELETE /v2/{name}/blobs/uploads/{uuid}"""
    name = local_repo_name(request)
    await request.app[UPLOADS].cancel(name, request.match_info["uuid"])
    return web.Response(status=204)
