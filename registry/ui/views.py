"""The read-only pages: repositories, a repository, a manifest, storage."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from blobstore import Digest, InvalidDigest
from registry.gc.collect import GC_LEASE
from registry.gc.history import recent_runs
from registry.http.keys import BLOBS, CONFIG, DATABASE, REFERRERS
from registry.leases import Leases
from registry.names import is_repository_name
from registry.quota import Quotas
from registry.ui.keys import VIEWER
from registry.ui.listing import list_repositories
from registry.ui.manifest import load_manifest
from registry.ui.paging import PageSpec, page_number
from registry.ui.render import page
from registry.ui.repository import list_tags
from registry.ui.usage import read_usage

REPOSITORIES_PER_PAGE: Final = 50
TAGS_PER_PAGE: Final = 100
NAMESPACES_PER_PAGE: Final = 100
SEARCH_MAX: Final = 255


def _search(request: web.Request) -> str:
    return request.query.get("q", "").strip()[:SEARCH_MAX]


def visible_repository(request: web.Request) -> str:
    """The `{name}` of the URL, if it is one the viewer may see; else 404 (not 403, so a
    name's existence is not revealed)."""
    name = request.match_info["name"]
    if not is_repository_name(name) or not request[VIEWER].may_pull(name):
        raise web.HTTPNotFound(text=f"No repository {name!r} here.")
    return name


def digest_in_url(request: web.Request) -> Digest:
    try:
        return Digest.parse(request.match_info["digest"])
    except InvalidDigest:
        raise web.HTTPNotFound(text="That is not a digest.") from None


async def repositories(request: web.Request) -> web.Response:
    """GET /ui/?q=&after=|before="""
    search = _search(request).lower()
    found = await list_repositories(
        request.config_dict[DATABASE],
        search,
        REPOSITORIES_PER_PAGE,
        request[VIEWER].visibility,
        after=request.query.get("after") or None,
        before=request.query.get("before") or None,
    )
    return page(request, "repositories.html", listing=found, search=search)


async def repository(request: web.Request) -> web.Response:
    """GET /ui/r/{name}?q=&page="""
    name = visible_repository(request)
    search = _search(request)
    spec = PageSpec(page_number(request.query.get("page")), TAGS_PER_PAGE)
    found = await list_tags(request.config_dict[DATABASE], name, search, spec)
    if found is None:
        raise web.HTTPNotFound(text=f"No repository {name!r} here.")
    return page(
        request,
        "repository.html",
        name=name,
        listing=found,
        search=search,
        page_no=spec.number,
        host=request.host,
        deleted=request.query.get("deleted", "")[:200],
    )


async def manifest(request: web.Request) -> web.Response:
    """GET /ui/r/{name}/-/manifests/{digest}"""
    name = visible_repository(request)
    digest = digest_in_url(request)
    detail = await load_manifest(
        request.config_dict[DATABASE],
        request.config_dict[BLOBS],
        request.config_dict[REFERRERS],
        name,
        digest,
    )
    if detail is None:
        raise web.HTTPNotFound(text=f"No manifest {digest} in {name}.")
    return page(request, "manifest.html", m=detail, host=request.host)


async def storage(request: web.Request) -> web.Response:
    """GET /ui/storage?page="""
    spec = PageSpec(page_number(request.query.get("page")), NAMESPACES_PER_PAGE)
    sees_all = request[VIEWER].pull_filter is None
    db = request.config_dict[DATABASE]
    usage = await read_usage(db, spec, per_namespace=sees_all)
    config = request.config_dict[CONFIG]
    async with db.read() as conn:
        last_gc = next(iter(await recent_runs(conn, limit=1)), None)
        quotas_shown = sees_all and bool(config.quotas)
        quota_usage = await Quotas(config.quotas).report(conn) if quotas_shown else []
    return page(
        request,
        "storage.html",
        usage=usage,
        page_no=spec.number,
        sees_all=sees_all,
        gc=config.gc,
        gc_running=await Leases(db).holder_of(GC_LEASE) is not None,
        last_gc=last_gc,
        quotas=config.quotas,
        quota_usage=quota_usage,
    )
