"""Unpacking one layer blob into a snapshot directory, streaming, with its diff_id checked."""

from __future__ import annotations

import asyncio
import tarfile
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from pathlib import Path

from blobstore import BlobReader, Digest, LocalBlobPaths
from puller.applier import LayerApplier
from puller.decompress import (
    CountingReader,
    LimitedHashingReader,
    Readable,
    decompressed,
)
from puller.errors import DiffIDMismatch, LayerRejected
from puller.limits import UnpackLimits
from puller.tarplan import plan_member


def apply_layer(
    raw: Readable,
    *,
    layer: Digest,
    compression: str,
    diff_id: Digest,
    upper: Path,
    lowers: Sequence[Path],
    limits: UnpackLimits = UnpackLimits(),  # noqa: B008  (frozen, so one shared default is safe)
) -> int:
    """Unpack the tar in `raw` into the empty directory `upper` over `lowers` (top first).
    Returns the bytes of file content written. Blocking: run it in a thread."""
    compressed = CountingReader(raw)
    stream = LimitedHashingReader(decompressed(compressed, compression), limits, layer, compressed)
    applier = LayerApplier(upper, lowers)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]  # any object with read() works
            for member in tar:
                action = plan_member(member)
                if action is not None:
                    applier.apply(action, tar)
        stream.drain()
        applier.finish()
    except tarfile.TarError as exc:
        raise LayerRejected(f"layer {layer} is not a valid tar archive: {exc}") from None
    except OSError as exc:
        raise LayerRejected(f"layer {layer} cannot be unpacked: {exc}") from None
    actual = Digest("sha256", stream.hasher.hexdigest())
    if actual != diff_id:
        raise DiffIDMismatch(diff_id, actual)
    return applier.size


class BlobFile:
    """A blocking `read()` over a blob of a BlobReader, for code running in a worker thread
    while `loop` runs the reader. Local stores are read directly from their file."""

    def __init__(self, reader: BlobReader, digest: Digest, loop: asyncio.AbstractEventLoop) -> None:
        self._file = None
        if isinstance(reader, LocalBlobPaths):
            self._file = open(reader.blob_path(digest), "rb")  # noqa: SIM115  (closed in close())
        self._chunks: AsyncIterator[bytes] = reader.read(digest)
        self._loop = loop
        self._buffer = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        if self._file is not None:
            return self._file.read(size)
        while not self._buffer and not self._eof:
            future: Future[bytes] = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            chunk = future.result()
            self._eof = not chunk
            self._buffer = chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    async def _next(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return b""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
