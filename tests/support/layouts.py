"""Write small OCI image layouts in Python (no Docker Hub here), for clients such as skopeo
that read `oci:<dir>:<tag>`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Layer:
    """A gzipped tar layer held in memory (test layers are a few MiB at most)."""

    blob: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        return _digest(self.blob)


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def make_layer(files: dict[str, bytes]) -> Layer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return Layer(gzip.compress(tar_bytes, compresslevel=1, mtime=0), _digest(tar_bytes))


@dataclass(frozen=True)
class Image:
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]


def write_layout(root: Path, tag: str, layers: list[Layer], label: str = "") -> Image:
    """An OCI layout at `root` holding one image, tagged `tag`, made of `layers`."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(data: bytes) -> str:
        digest = _digest(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "sh"], "Labels": {"berth.test": label}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    config_bytes = json.dumps(config).encode()
    config_digest = put(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": put(layer.blob), "size": len(layer.blob)}
            for layer in layers
        ],
    }
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = put(manifest_bytes)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return Image(manifest_digest, config_digest, tuple(layer.digest for layer in layers))
