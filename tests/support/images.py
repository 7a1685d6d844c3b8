"""Build OCI/Docker images in Python and push them to a registry over plain HTTP.

The API, small on purpose (everything is bytes in memory: test images are small; a large
file is written as `zeros=N`, which compresses to almost nothing):

    entries  file(path, content, ...), directory(path), symlink(path, target),
             hardlink(path, target), fifo(path), device(path, "char"|"block", major, minor),
             whiteout(path), opaque(dir)             -> Entry
    layers   build_layer(entries, compression="gzip"|"zstd"|"") -> Layer
    images   build_image(layers, fmt="oci"|"docker", config=...) -> Image
             build_index([(image, "linux/amd64"), ...], fmt="oci"|"docker") -> Index
    push     push_image(url, repository, tag, image)  -> manifest digest ("sha256:...")
             push_index(url, repository, tag, index)  -> index digest (pushes its images too)
             push_blob(url, repository, data), push_manifest(url, repository, ref, body, type)

`url` is the registry's base URL (`http://127.0.0.1:PORT`). Blobs go up monolithically
(POST, then one PUT with `?digest=`), after a HEAD that skips blobs already there. Every push
function takes `headers` (e.g. an Authorization header) for registries that demand auth.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

_LAYER_TYPES = {
    ("oci", ""): "application/vnd.oci.image.layer.v1.tar",
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("docker", ""): "application/vnd.docker.image.rootfs.diff.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "zstd"): "application/vnd.docker.image.rootfs.diff.tar.zstd",
}
DEFAULT_MTIME = 1_700_000_000


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- entries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar member. `kind` is a tarfile type byte (tarfile.REGTYPE, ...)."""

    path: str
    kind: bytes
    content: bytes = b""
    zeros: int = 0  # a regular file of this many zero bytes after `content`
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""  # symlink or hardlink target
    major: int = 0
    minor: int = 0
    mtime: int = DEFAULT_MTIME
    xattrs: Mapping[str, str] = field(default_factory=dict)


def file(
    path: str,
    content: bytes = b"",
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    zeros: int = 0,
    mtime: int = DEFAULT_MTIME,
    xattrs: Mapping[str, str] | None = None,
) -> Entry:
    return Entry(
        path,
        tarfile.REGTYPE,
        content,
        zeros,
        mode,
        uid,
        gid,
        mtime=mtime,
        xattrs=dict(xattrs or {}),
    )


def directory(
    path: str,
    *,
    mode: int = 0o755,
    uid: int = 0,
    gid: int = 0,
    mtime: int = DEFAULT_MTIME,
    xattrs: Mapping[str, str] | None = None,
) -> Entry:
    return Entry(
        path, tarfile.DIRTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime, xattrs=dict(xattrs or {})
    )


def symlink(path: str, target: str, *, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, tarfile.SYMTYPE, mode=0o777, uid=uid, gid=gid, target=target)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, tarfile.LNKTYPE, target=target)


def fifo(path: str, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, tarfile.FIFOTYPE, mode=mode, uid=uid, gid=gid)


def device(path: str, kind: str, major: int, minor: int, *, mode: int = 0o600) -> Entry:
    return Entry(
        path,
        tarfile.CHRTYPE if kind == "char" else tarfile.BLKTYPE,
        mode=mode,
        major=major,
        minor=minor,
    )


def whiteout(path: str) -> Entry:
    """`.wh.NAME`: deletes NAME (and all below it) from the lower layers."""
    parent, _, name = path.rstrip("/").rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}")


def opaque(dir_path: str) -> Entry:
    """`.wh..wh..opq`: hides everything the lower layers hold under `dir_path`."""
    return file(f"{dir_path.rstrip('/')}/.wh..wh..opq")


# -- layers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    data: bytes  # the blob as pushed (compressed or not)
    compression: str  # "", "gzip" or "zstd"
    diff_id: str
    entries: tuple[Entry, ...] = ()

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def media_type(self, fmt: str) -> str:
        return _LAYER_TYPES[(fmt, self.compression)]


class _Zeros(io.RawIOBase):
    def __init__(self, prefix: bytes, zeros: int) -> None:
        self._data = io.BytesIO(prefix)
        self._left = zeros

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if chunk:
            return chunk
        n = self._left if size < 0 else min(size, self._left)
        self._left -= n
        return bytes(n)


def write_tar(entries: Iterable[Entry], out: io.RawIOBase | io.BufferedIOBase | Any) -> None:
    """Write `entries` as a PAX tar to the binary stream `out`."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.type = entry.kind
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            info.mtime = entry.mtime
            info.linkname = entry.target
            info.devmajor, info.devminor = entry.major, entry.minor
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in entry.xattrs.items()}
            if entry.kind == tarfile.REGTYPE:
                info.size = len(entry.content) + entry.zeros
                tar.addfile(info, _Zeros(entry.content, entry.zeros))
            else:
                tar.addfile(info)


class _Sink(io.RawIOBase):
    """Hashes what is written (the diff_id) and passes it on to a compressor."""

    def __init__(self, out: Any) -> None:
        self.hasher = hashlib.sha256()
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        self._out.write(data)
        return len(data)


def build_layer(entries: Sequence[Entry], compression: str = "gzip") -> Layer:
    """A layer blob holding `entries` in order, compressed with gzip, zstd or nothing."""
    buffer = io.BytesIO()
    if compression == "gzip":
        compressor: Any = gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0)
    elif compression == "zstd":
        compressor = zstandard.ZstdCompressor().stream_writer(buffer, closefd=False)
    elif compression == "":
        compressor = buffer
    else:
        raise ValueError(f"unknown compression {compression!r}")
    sink = _Sink(compressor)
    write_tar(entries, sink)
    if compressor is not buffer:
        compressor.close()
    return Layer(
        buffer.getvalue(), compression, "sha256:" + sink.hasher.hexdigest(), tuple(entries)
    )


def raw_layer(data: bytes, diff_id: str, compression: str = "gzip") -> Layer:
    """A layer from hand-made bytes (for malformed archives), with the diff_id to claim."""
    return Layer(data, compression, diff_id)


# -- images --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    manifest: bytes
    media_type: str
    config: bytes
    layers: tuple[Layer, ...]

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def blobs(self) -> list[bytes]:
        return [self.config, *(layer.data for layer in self.layers)]


def build_image(
    layers: Sequence[Layer],
    *,
    fmt: str = "oci",
    os: str = "linux",
    architecture: str = "amd64",
    variant: str | None = None,
    config: Mapping[str, Any] | None = None,
    created: str = "2024-01-02T03:04:05Z",
) -> Image:
    """An image of `layers`: an image config with their diff_ids and a manifest.
    `config` is the runtime part of the image config (Cmd, Env, ...)."""
    document: dict[str, Any] = {
        "created": created,
        "architecture": architecture,
        "os": os,
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": "tests.support.images"} for _ in layers],
    }
    if variant:
        document["variant"] = variant
    config_bytes = json.dumps(document, sort_keys=True).encode()
    config_type, manifest_type = (
        (OCI_CONFIG, OCI_MANIFEST) if fmt == "oci" else (DOCKER_CONFIG, DOCKER_MANIFEST)
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "digest": sha256(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": layer.media_type(fmt), "digest": layer.digest, "size": len(layer.data)}
            for layer in layers
        ],
    }
    return Image(
        json.dumps(manifest, indent=2).encode(), manifest_type, config_bytes, tuple(layers)
    )


@dataclass(frozen=True)
class Index:
    body: bytes
    media_type: str
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return sha256(self.body)


def build_index(images: Sequence[tuple[Image, str]], *, fmt: str = "oci") -> Index:
    """An index (or Docker manifest list) of images, each with its `os/arch[/variant]`."""
    entries = []
    for image, platform in images:
        parts = platform.split("/")
        plat = {"os": parts[0], "architecture": parts[1]}
        if len(parts) > 2:
            plat["variant"] = parts[2]
        entries.append(
            {
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "platform": plat,
            }
        )
    media_type = OCI_INDEX if fmt == "oci" else DOCKER_LIST
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}, indent=2
    ).encode()
    return Index(body, media_type, tuple(image for image, _ in images))


# -- pushing -------------------------------------------------------------------------------


def _request(
    method: str, url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            resp.read()
            return resp.status, resp.headers
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if method == "HEAD" and exc.code == 404:
            return 404, exc.headers
        raise AssertionError(f"{method} {url} -> {exc.code}: {body[:500]!r}") from None


def push_blob(
    url: str, repository: str, data: bytes, *, headers: Mapping[str, str] | None = None
) -> str:
    """Upload `data` monolithically unless the registry has it; returns its digest."""
    digest = sha256(data)
    status, _ = _request("HEAD", f"{url}/v2/{repository}/blobs/{digest}", headers=headers)
    if status == 200:
        return digest
    _, got = _request("POST", f"{url}/v2/{repository}/blobs/uploads/", data=b"", headers=headers)
    location = urllib.parse.urljoin(url + "/", got["Location"])
    separator = "&" if "?" in location else "?"
    _request(
        "PUT",
        f"{location}{separator}digest={digest}",
        data=data,
        headers={**(headers or {}), "Content-Type": "application/octet-stream"},
    )
    return digest


def push_manifest(
    url: str,
    repository: str,
    reference: str,
    body: bytes,
    media_type: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> str:
    _request(
        "PUT",
        f"{url}/v2/{repository}/manifests/{reference}",
        data=body,
        headers={**(headers or {}), "Content-Type": media_type},
    )
    return sha256(body)


def push_image(
    url: str, repository: str, tag: str, image: Image, *, headers: Mapping[str, str] | None = None
) -> str:
    """Push the blobs, then the manifest under `tag`; returns the manifest digest."""
    for blob in image.blobs():
        push_blob(url, repository, blob, headers=headers)
    return push_manifest(url, repository, tag, image.manifest, image.media_type, headers=headers)


def push_index(
    url: str, repository: str, tag: str, index: Index, *, headers: Mapping[str, str] | None = None
) -> str:
    """Push every image by digest, then the index under `tag`; returns the index digest."""
    for image in index.images:
        push_image(url, repository, image.digest, image, headers=headers)
    return push_manifest(url, repository, tag, index.body, index.media_type, headers=headers)
