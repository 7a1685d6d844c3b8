"""Manifest handlers: GET/HEAD/PUT/DELETE by tag or digest."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from registry.errcode import MANIFEST_TOO_LARGE, RegistryError
from registry.http.keys import MANIFESTS, PROXY, PULLS
from registry.http.params import local_repo_name, proxied, repo_name
from registry.names import check_tag, parse_reference

MANIFEST_LIMIT: Final = 4 * 1024 * 1024


async def get_manifest(request: web.Request) -> web.Response:
    """GET|HEAD /v2/{name}/manifests/{reference}"""
    name, reference = repo_name(request), parse_reference(request.match_info["reference"])
    route = proxied(request, name)
    if route is None:
        stored = await request.app[MANIFESTS].get(name, reference)
    else:
        stored = await request.app[PROXY].manifests.get(route, reference)
    headers = {
        "Docker-Content-Digest": stored.digest,
        "ETag": f'"{stored.digest}"',
        "Content-Type": stored.media_type,
    }
    if request.method == "GET":
        request.app[PULLS].saw(name, stored.digest)
    if headers["ETag"] in request.headers.get("If-None-Match", ""):
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(stored.payload))
        return web.Response(headers=headers)
    return web.Response(body=stored.payload, headers=headers)


async def put_manifest(request: web.Request) -> web.Response:
    """PUT /v2/{name}/manifests/{reference}[?tag=...]"""
    name, reference = local_repo_name(request), parse_reference(request.match_info["reference"])
    extra_tags = [check_tag(tag) for tag in request.query.getall("tag", [])]
    payload = await _read_limited(request)
    result = await request.app[MANIFESTS].put(
        name, reference, payload, request.headers.get("Content-Type"), extra_tags
    )
    response = web.Response(
        status=201,
        headers={
            "Location": f"/v2/{name}/manifests/{result.digest}",
            "Docker-Content-Digest": str(result.digest),
            "Content-Length": "0",
        },
    )
    if result.subject is not None:
        response.headers["OCI-Subject"] = str(result.subject)
    for tag in result.tags:
        response.headers.add("OCI-Tag", tag)
    return response


async def delete_manifest(request: web.Request) -> web.Response:
    """DELETE /v2/{name}/manifests/{reference}: by digest the manifest, by tag the tag only."""
    name, reference = local_repo_name(request), parse_reference(request.match_info["reference"])
    await request.app[MANIFESTS].delete(name, reference)
    return web.Response(status=202)


async def _read_limited(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MANIFEST_LIMIT:
        raise RegistryError(MANIFEST_TOO_LARGE, detail={"limit": MANIFEST_LIMIT})
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > MANIFEST_LIMIT:
            raise RegistryError(MANIFEST_TOO_LARGE, detail={"limit": MANIFEST_LIMIT})
    return bytes(body)
