"""Every route of the registry API, in one table.

`{name}` may contain slashes (nested repositories); handlers check it against the spec's
grammar and answer NAME_INVALID. No path matches two patterns: a digest, a reference and an
upload id have no slash, so the last segments decide (`/blobs/uploads/` ends in a slash, and
`/blobs/uploads/ID` has two segments after `blobs`).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from registry.http import blobs, discovery, health, manifests, uploads

_NAME: Final = "{name:.+}"

ROUTES: Final = [
    # aiohttp tries routes in order: the ones every pull hits come first.
    web.get(f"/v2/{_NAME}/manifests/{{reference}}", manifests.get_manifest, allow_head=True),
    web.get(f"/v2/{_NAME}/blobs/{{digest}}", blobs.get_blob, allow_head=True),
    web.get("/v2/", discovery.api_root, allow_head=True),
    web.get("/v2/_catalog", discovery.catalog, allow_head=False),
    web.post(f"/v2/{_NAME}/blobs/uploads/", uploads.start_upload),
    web.get(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.upload_status, allow_head=False),
    web.patch(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.patch_upload),
    web.put(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.finish_upload),
    web.delete(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.cancel_upload),
    web.delete(f"/v2/{_NAME}/blobs/{{digest}}", blobs.delete_blob),
    web.put(f"/v2/{_NAME}/manifests/{{reference}}", manifests.put_manifest),
    web.delete(f"/v2/{_NAME}/manifests/{{reference}}", manifests.delete_manifest),
    web.get(f"/v2/{_NAME}/tags/list", discovery.list_tags, allow_head=False),
    web.get(f"/v2/{_NAME}/referrers/{{digest}}", discovery.referrers, allow_head=False),
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
]
