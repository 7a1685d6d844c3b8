"""Reading what the UI shows from a stored manifest's JSON, tolerating anything."""

from __future__ import annotations

import json
from typing import Any, Final

INDEX_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


def load_document(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def descriptors(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key)
    return [d for d in items if isinstance(d, dict)] if isinstance(items, list) else []


def platform_of(descriptor: dict[str, Any]) -> str:
    """`os/architecture[/variant]`, or "" when absent or an attestation's unknown/unknown."""
    platform = descriptor.get("platform")
    if not isinstance(platform, dict):
        return ""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    text = "/".join(str(p) for p in parts if p)
    return "" if text in ("", "unknown/unknown") else text


def index_platforms(media_type: str, payload: bytes) -> tuple[str, ...]:
    if media_type not in INDEX_TYPES:
        return ()
    found = (platform_of(d) for d in descriptors(load_document(payload), "manifests"))
    return tuple(dict.fromkeys(p for p in found if p))
