"""Pure layer code: chain IDs, tar member planning, streaming decompression and its limits."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zstandard

from blobstore import BlobInfo, Digest, FilesystemBlobStore
from puller import DecompressionBomb, LayerRejected, LayerTooLarge
from puller.chain import chain_ids
from puller.decompress import (
    CountingReader,
    LimitedHashingReader,
    Readable,
    decompressed,
)
from puller.limits import UnpackLimits
from puller.tarplan import Entry, Opaque, Whiteout, clean_path, plan_member, xattrs_of
from puller.unpack import BlobFile


def test_chain_ids_follow_the_image_spec() -> None:
    d1, d2, d3 = (Digest.of(x) for x in (b"1", b"2", b"3"))
    c2 = "sha256:" + hashlib.sha256(f"{d1} {d2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {d3}".encode()).hexdigest()
    assert [str(c) for c in chain_ids([d1, d2, d3])] == [str(d1), c2, c3]
    assert chain_ids([]) == []


@pytest.mark.parametrize(
    ("name", "clean"),
    [("a/b", "a/b"), ("./a//b/", "a/b"), ("./", ""), ("a/./b", "a/b"), ("..a/b..", "..a/b..")],
)
def test_clean_path(name: str, clean: str) -> None:
    assert clean_path(name) == clean


@pytest.mark.parametrize("name", ["/a", "..", "a/../b", "a/..", "a\x00b"])
def test_clean_path_rejects_escapes(name: str) -> None:
    with pytest.raises(LayerRejected):
        clean_path(name)


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def test_plan_member_classifies_whiteouts_and_links() -> None:
    assert plan_member(_member("a/.wh.b")) == Whiteout("a/b")
    assert plan_member(_member(".wh.top")) == Whiteout("top")
    assert plan_member(_member("a/b/.wh..wh..opq")) == Opaque("a/b")
    assert plan_member(_member("./", tarfile.DIRTYPE)) is None
    link = plan_member(_member("x", tarfile.LNKTYPE, "./a//b"))
    assert isinstance(link, Entry)
    assert (link.path, link.link_target) == ("x", "a/b")
    with pytest.raises(LayerRejected, match="unsupported tar type"):
        plan_member(_member("c", tarfile.CONTTYPE + b"Z"))
    with pytest.raises(LayerRejected, match="names the root"):
        plan_member(_member("./"))


def test_xattrs_drop_overlay_namespace() -> None:
    info = _member("f")
    info.pax_headers = {
        "SCHILY.xattr.user.a": "1",
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.user.overlay.opaque": "y",
        "path": "f",
    }
    assert xattrs_of(info) == {"user.a": b"1"}


def _read_all(reader: Readable) -> bytes:
    out = bytearray()
    while chunk := reader.read(7000):
        out += chunk
    return bytes(out)


def test_gzip_multi_member_and_padding() -> None:
    data = gzip.compress(b"first" * 1000) + gzip.compress(b"second" * 2000) + b"\x00" * 512
    assert _read_all(decompressed(io.BytesIO(data), "gzip")) == b"first" * 1000 + b"second" * 2000


def test_gzip_truncated_and_garbage() -> None:
    data = gzip.compress(bytes(range(256)) * 100)
    with pytest.raises(LayerRejected, match="truncated"):
        _read_all(decompressed(io.BytesIO(data[:-20]), "gzip"))
    with pytest.raises(LayerRejected, match="gzip stream is invalid"):
        _read_all(decompressed(io.BytesIO(b"not gzip at all"), "gzip"))


def test_zstd_across_frames() -> None:
    c = zstandard.ZstdCompressor()
    data = c.compress(b"a" * 100) + c.compress(b"b" * 100)
    assert _read_all(decompressed(io.BytesIO(data), "zstd")) == b"a" * 100 + b"b" * 100
    with pytest.raises(LayerRejected, match="zstd"):
        _read_all(decompressed(io.BytesIO(b"\x28\xb5\x2f\xfdgarbage"), "zstd"))


def test_size_cap_and_hash() -> None:
    reader = LimitedHashingReader(io.BytesIO(b"x" * 100), UnpackLimits(max_size=100), "L")
    reader.drain()
    assert reader.hasher.hexdigest() == hashlib.sha256(b"x" * 100).hexdigest()
    capped = LimitedHashingReader(io.BytesIO(b"x" * 101), UnpackLimits(max_size=100), "sha256:L")
    with pytest.raises(LayerTooLarge, match="layer sha256:L unpacks to more than 100 bytes"):
        capped.drain()


def _inflating(size: int, limits: UnpackLimits) -> LimitedHashingReader:
    compressed = CountingReader(io.BytesIO(gzip.compress(bytes(size))))
    return LimitedHashingReader(decompressed(compressed, "gzip"), limits, "sha256:B", compressed)


def test_expansion_past_the_floor_is_refused() -> None:
    limits = UnpackLimits(max_expansion=100, expansion_floor=4 * 1024 * 1024)
    bomb = _inflating(16 * 1024 * 1024, limits)
    with pytest.raises(DecompressionBomb, match=r"layer sha256:B inflates more than 100x \("):
        bomb.drain()
    assert 4 * 1024 * 1024 < bomb.size <= 5 * 1024 * 1024  # stopped at the floor, not the end
    _inflating(4 * 1024 * 1024, limits).drain()  # under the floor: any ratio
    _inflating(16 * 1024 * 1024, UnpackLimits(max_expansion=0, expansion_floor=0)).drain()
    plain = CountingReader(io.BytesIO(bytes(8 * 1024 * 1024)))
    LimitedHashingReader(plain, UnpackLimits(expansion_floor=0), "L", plain).drain()


class _RemoteLikeReader:
    """A BlobReader without local paths (as an S3 store would be), over a real store."""

    def __init__(self, store: FilesystemBlobStore) -> None:
        self._store = store

    async def stat(self, digest: Digest) -> BlobInfo:
        return await self._store.stat(digest)

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._store.read(digest, start, end)


async def test_blob_file_bridges_an_async_reader_to_a_worker_thread(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = bytes(range(256)) * 20000
    upload = await store.begin()
    await upload.write(data)
    digest = Digest.of(data)
    await upload.commit(digest)
    reader = BlobFile(_RemoteLikeReader(store), digest, asyncio.get_running_loop())
    try:
        assert await asyncio.to_thread(_read_all, reader) == data
    finally:
        reader.close()
