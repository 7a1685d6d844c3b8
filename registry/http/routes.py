"""Every route of the registry API, in one table.

`{name}` may contain slashes (nested repositories); handlers check it against the spec's
grammar and answer NAME_INVALID. Upload routes come before blob routes so that
`blobs/uploads/` is never read as a digest.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from registry.http import blobs, discovery, health, manifests, uploads

_NAME: Final = "{name:.+}"

ROUTES: Final = [
    web.get("/v2/", discovery.api_root, allow_head=True),
    web.get("/v2/_catalog", discovery.catalog, allow_head=False),
    web.post(f"/v2/{_NAME}/blobs/uploads/", uploads.start_upload),
    web.get(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.upload_status, allow_head=False),
    web.patch(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.patch_upload),
    web.put(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.finish_upload),
    web.delete(f"/v2/{_NAME}/blobs/uploads/{{uuid}}", uploads.cancel_upload),
    web.get(f"/v2/{_NAME}/blobs/{{digest}}", blobs.get_blob, allow_head=True),
    web.delete(f"/v2/{_NAME}/blobs/{{digest}}", blobs.delete_blob),
    web.get(f"/v2/{_NAME}/manifests/{{reference}}", manifests.get_manifest, allow_head=True),
    web.put(f"/v2/{_NAME}/manifests/{{reference}}", manifests.put_manifest),
    web.delete(f"/v2/{_NAME}/manifests/{{reference}}", manifests.delete_manifest),
    web.get(f"/v2/{_NAME}/tags/list", discovery.list_tags, allow_head=False),
    web.get(f"/v2/{_NAME}/referrers/{{digest}}", discovery.referrers, allow_head=False),
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
]
