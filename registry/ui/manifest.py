"""Everything the manifest page shows about one manifest, from SQL and the config blob."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from blobstore import Digest, InvalidDigest
from registry.db import Database
from registry.db.models import manifest_pulls, manifests, tags
from registry.errcode import RegistryError
from registry.service import BlobService, ReferrerService
from registry.service.repos import repository_id
from registry.ui.image_config import (
    CONFIG_TYPES,
    ConfigUnavailable,
    ImageConfig,
    parse_image_config,
    read_config,
)
from registry.ui.platforms import INDEX_TYPES, descriptors, load_document, platform_of
from registry.ui.sizes import image_sizes
from registry.ui.times import as_utc


@dataclass(frozen=True, slots=True)
class Descriptor:
    digest: str
    media_type: str
    size: int
    platform: str = ""
    artifact_type: str = ""
    annotations: tuple[tuple[str, str], ...] = ()
    present: bool = True  # for an index child: stored in this repository
    image_size: int | None = None  # for an index child: its config and layers

    @property
    def label(self) -> str:
        """An index child's platform, or what it is when it has none (an attestation)."""
        return self.platform or dict(self.annotations).get("vnd.docker.reference.type", "")


@dataclass(frozen=True, slots=True)
class ManifestDetail:
    repository: str
    digest: str
    media_type: str
    size: int
    image_size: int
    artifact_type: str
    subject: str
    annotations: tuple[tuple[str, str], ...]
    pushed: datetime | None
    pulled: datetime | None
    tags: tuple[str, ...]
    config_descriptor: Descriptor | None
    config: ImageConfig | None
    config_note: str
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    referrers: tuple[Descriptor, ...]
    raw: str

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _descriptor(d: dict[str, Any], present: bool = True) -> Descriptor:
    annotations = d.get("annotations")
    size = d.get("size")
    return Descriptor(
        digest=str(d.get("digest", "")),
        media_type=str(d.get("mediaType", "")),
        size=size if isinstance(size, int) else 0,
        platform=platform_of(d),
        artifact_type=str(d.get("artifactType") or ""),
        annotations=_pairs(annotations),
        present=present,
    )


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


_COLUMNS = (
    manifests.c.id,
    manifests.c.media_type,
    manifests.c.size,
    manifests.c.payload,
    manifests.c.created_at,
    manifests.c.artifact_type,
    manifests.c.subject_digest,
    manifest_pulls.c.pulled_at,
)


async def load_manifest(
    db: Database,
    blobs: BlobService,
    referrers: ReferrerService,
    repository: str,
    digest: Digest,
) -> ManifestDetail | None:
    """None when the repository or the manifest does not exist."""
    async with db.read() as conn:
        repo_id = await repository_id(conn, repository)
        if repo_id is None:
            return None
        row = (
            await conn.execute(
                select(*_COLUMNS)
                .select_from(
                    manifests.outerjoin(
                        manifest_pulls, manifest_pulls.c.manifest_id == manifests.c.id
                    )
                )
                .where(manifests.c.repository_id == repo_id, manifests.c.digest == str(digest))
            )
        ).first()
        if row is None:
            return None
        tag_names = tuple(
            (
                await conn.execute(
                    select(tags.c.name).where(tags.c.manifest_id == row.id).order_by(tags.c.name)
                )
            ).scalars()
        )
        document = load_document(row.payload)
        child_descs = descriptors(document, "manifests")
        stored_children = {
            r.digest: r.id
            for r in await conn.execute(
                select(manifests.c.digest, manifests.c.id).where(
                    manifests.c.repository_id == repo_id,
                    manifests.c.digest.in_([str(d.get("digest")) for d in child_descs]),
                )
            )
        }
        sizes = await image_sizes(conn, repo_id, [row.id, *stored_children.values()])
    layers = tuple(_descriptor(d) for d in descriptors(document, "layers"))
    raw_config = document.get("config")
    config_descriptor = _descriptor(raw_config) if isinstance(raw_config, dict) else None
    config, note = await _config(blobs, repository, config_descriptor, len(layers))
    children = tuple(
        replace(
            _descriptor(d, str(d.get("digest")) in stored_children),
            image_size=sizes.get(stored_children.get(str(d.get("digest")), -1)),
        )
        for d in child_descs
    )
    subject = document.get("subject")
    return ManifestDetail(
        repository=repository,
        digest=str(digest),
        media_type=row.media_type,
        size=row.size,
        image_size=sizes.get(row.id, 0),
        # An image's artifact type is its config's media type: shown only for other artifacts.
        artifact_type="" if row.artifact_type in CONFIG_TYPES else (row.artifact_type or ""),
        subject=str(subject.get("digest", "")) if isinstance(subject, dict) else "",
        annotations=_pairs(document.get("annotations")),
        pushed=as_utc(row.created_at),
        pulled=as_utc(row.pulled_at),
        tags=tag_names,
        config_descriptor=config_descriptor,
        config=config,
        config_note=note,
        layers=layers,
        children=children,
        referrers=tuple(_descriptor(d) for d in await referrers.list(repository, digest, None)),
        raw=_pretty(row.payload),
    )


async def _config(
    blobs: BlobService, repository: str, descriptor: Descriptor | None, layer_count: int
) -> tuple[ImageConfig | None, str]:
    if descriptor is None or descriptor.media_type not in CONFIG_TYPES:
        return None, ""
    try:
        digest = Digest.parse(descriptor.digest)
        payload = await read_config(blobs, repository, digest)
        return parse_image_config(payload, layer_count), ""
    except ConfigUnavailable as exc:
        return None, str(exc)
    except (InvalidDigest, RegistryError):
        return None, "the config blob is not stored in this repository"


def _pretty(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload.decode("utf-8", errors="replace")
