"""Discovery handlers: the API root, tags, the catalog, referrers."""

from __future__ import annotations

import json

from aiohttp import web

from registry.auth import allowed
from registry.http.keys import CATALOG, REFERRERS, TAGS
from registry.http.params import next_link, pagination, repo_name
from registry.manifest import OCI_INDEX
from registry.names import parse_digest


async def api_root(request: web.Request) -> web.Response:
    """GET /v2/"""
    return web.json_response({})


async def list_tags(request: web.Request) -> web.Response:
    """GET /v2/{name}/tags/list[?n=&last=]"""
    name = repo_name(request)
    n, last = pagination(request.query)
    page = await request.app[TAGS].list(name, n, last)
    # The names arrive as a JSON array: splice it in rather than decode and encode it again.
    body = f'{{"name": {json.dumps(name)}, "tags": {page.names_json}}}'
    response = web.Response(text=body, content_type="application/json")
    if page.more and page.last is not None:
        response.headers["Link"] = next_link(request.path, n, page.last)
    return response


async def catalog(request: web.Request) -> web.Response:
    """GET /v2/_catalog[?n=&last=], listing only repositories the caller may pull."""
    n, last = pagination(request.query)
    page = await request.app[CATALOG].list(n, last, lambda repo: allowed(request, repo, "pull"))
    response = web.json_response({"repositories": list(page.items)})
    if page.more and page.items:
        response.headers["Link"] = next_link(request.path, n, page.items[-1])
    return response


async def referrers(request: web.Request) -> web.Response:
    """GET /v2/{name}/referrers/{digest}[?artifactType=]"""
    name, digest = repo_name(request), parse_digest(request.match_info["digest"])
    artifact_type = request.query.get("artifactType") or None
    descriptors = await request.app[REFERRERS].list(name, digest, artifact_type)
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    response = web.Response(body=json.dumps(body).encode(), headers={"Content-Type": OCI_INDEX})
    if artifact_type is not None:
        response.headers["OCI-Filters-Applied"] = "artifactType"
    return response
