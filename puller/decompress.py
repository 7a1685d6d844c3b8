"""Streaming decompression of layer blobs, with the diff_id hash and the unpack limits.

Everything here is a small file-like object with `read(n)`, so `tarfile.open(mode="r|")`
can consume a layer of any size with flat memory.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any, Final, Protocol

import zstandard

from puller.errors import DecompressionBomb, LayerRejected, LayerTooLarge
from puller.limits import UnpackLimits

_CHUNK: Final = 1 << 20


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CountingReader:
    """Counts the bytes read through it (the compressed side of a layer)."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.count += len(data)
        return data


class GzipReader:
    """Multi-member gzip, inflated with zlib at most a chunk at a time."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(wbits=31)
        self._input = b""
        self._in_member = False
        self._eof = False
        self._out = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        want = _CHUNK if size < 0 else size
        while self._pos >= len(self._out) and not self._eof:
            self._out, self._pos = self._step(), 0
        out = self._out[self._pos : self._pos + want]
        self._pos += len(out)
        return out

    def _step(self) -> bytes:
        if not self._input:
            self._input = self._raw.read(_CHUNK)
            if not self._input:
                if self._in_member:
                    raise LayerRejected("gzip stream is truncated")
                self._eof = True
                return b""
        if not self._in_member:
            self._input = self._input.lstrip(b"\x00")  # padding after the last member
            if not self._input:
                return b""
            self._in_member = True
        try:
            out = self._inflate.decompress(self._input, _CHUNK)
        except zlib.error as exc:
            raise LayerRejected(f"gzip stream is invalid: {exc}") from None
        self._input = self._inflate.unconsumed_tail
        if self._inflate.eof:
            self._input = self._inflate.unused_data
            self._inflate = zlib.decompressobj(wbits=31)
            self._in_member = False
        return out


class LimitedHashingReader:
    """Hashes what passes (the diff_id) and refuses to produce more than `limits` allow,
    measuring expansion against the compressed bytes `compressed` has read."""

    def __init__(
        self,
        inner: Readable,
        limits: UnpackLimits,
        layer: object,
        compressed: CountingReader | None = None,
    ) -> None:
        self._inner = inner
        self._limits = limits
        self._layer = layer
        self._compressed = compressed
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(_CHUNK if size < 0 else size)
        self.size += len(data)
        limits = self._limits
        if self.size > limits.max_size:
            raise LayerTooLarge(self._layer, limits.max_size)
        if (
            self._compressed is not None
            and limits.max_expansion > 0
            and self.size > limits.expansion_floor
            and self.size > limits.max_expansion * self._compressed.count
        ):
            raise DecompressionBomb(
                self._layer, limits.max_expansion, self.size, self._compressed.count
            )
        self.hasher.update(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the hash covers padding tarfile did not need."""
        while self.read(_CHUNK):
            pass


def decompressed(raw: Readable, compression: str) -> Readable:
    """A reader of the uncompressed tar inside `raw` ("" = already uncompressed)."""
    if compression == "gzip":
        return GzipReader(raw)
    if compression == "zstd":
        return _ZstdReader(raw)
    return raw


class _ZstdReader:
    def __init__(self, raw: Readable) -> None:
        decompressor = zstandard.ZstdDecompressor()
        source: Any = raw  # zstandard's stubs want IO[bytes]; it only calls read()
        self._reader = decompressor.stream_reader(source, read_across_frames=True)

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._reader.read(_CHUNK if size < 0 else size))
        except zstandard.ZstdError as exc:
            raise LayerRejected(f"zstd stream is invalid: {exc}") from None
