"""An image's config blob, read with a size cap, and the fields the manifest page shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from blobstore import Digest
from registry.service import BlobService

CONFIG_LIMIT: Final = 1024 * 1024  # configs are a few KiB; never read a large blob whole
CONFIG_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    created: str
    created_by: str
    comment: str
    empty_layer: bool
    layer: int | None  # index into the manifest's layers, for entries that made one


@dataclass(frozen=True, slots=True)
class ImageConfig:
    platform: str
    created: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: tuple[str, ...]
    working_dir: str
    user: str
    labels: tuple[tuple[str, str], ...]
    exposed_ports: tuple[str, ...]
    history: tuple[HistoryEntry, ...] = field(default=())


class ConfigUnavailable(Exception):
    """Why the config is not shown (too large, missing, not JSON)."""


async def read_config(blobs: BlobService, repository: str, digest: Digest) -> bytes:
    """The config blob's bytes, at most CONFIG_LIMIT of them, as linked in `repository`."""
    info = await blobs.stat(repository, digest)
    if info.size > CONFIG_LIMIT:
        raise ConfigUnavailable(f"the config is {info.size} bytes, more than the UI reads")
    body = bytearray()
    async for chunk in blobs.read(digest, 0, info.size):
        body += chunk
        if len(body) > CONFIG_LIMIT:
            raise ConfigUnavailable("the config is larger than the UI reads")
    return bytes(body)


def _strings(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def parse_image_config(payload: bytes, layer_count: int) -> ImageConfig:
    try:
        document = json.loads(payload)
    except ValueError:
        raise ConfigUnavailable("the config is not JSON") from None
    if not isinstance(document, dict):
        raise ConfigUnavailable("the config is not a JSON object")
    raw = document.get("config")
    config: dict[str, Any] = raw if isinstance(raw, dict) else {}
    labels = config.get("Labels") or {}
    ports = config.get("ExposedPorts") or {}
    platform = "/".join(
        _text(document.get(k)) for k in ("os", "architecture", "variant") if document.get(k)
    )
    return ImageConfig(
        platform=platform,
        created=_text(document.get("created")),
        entrypoint=_strings(config.get("Entrypoint")),
        cmd=_strings(config.get("Cmd")),
        env=_strings(config.get("Env")) or (),
        working_dir=_text(config.get("WorkingDir")),
        user=_text(config.get("User")),
        labels=tuple(sorted((str(k), _text(v)) for k, v in labels.items()))
        if isinstance(labels, dict)
        else (),
        exposed_ports=tuple(sorted(str(p) for p in ports)) if isinstance(ports, dict) else (),
        history=_history(document.get("history"), layer_count),
    )


def _history(value: object, layer_count: int) -> tuple[HistoryEntry, ...]:
    if not isinstance(value, list):
        return ()
    entries = []
    layer = 0
    for item in value:
        if not isinstance(item, dict):
            continue
        empty = bool(item.get("empty_layer"))
        index = None
        if not empty and layer < layer_count:
            index, layer = layer, layer + 1
        entries.append(
            HistoryEntry(
                _text(item.get("created")),
                _text(item.get("created_by")),
                _text(item.get("comment")),
                empty,
                index,
            )
        )
    return tuple(entries)
