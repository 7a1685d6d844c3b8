"""Parsing of request parts: names from the path, ranges, pagination. Pure where possible."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, Mapping
from typing import Final
from urllib.parse import quote, urlencode

from aiohttp import web

from registry.errcode import (
    BLOB_UPLOAD_INVALID,
    PAGINATION_INVALID,
    PROXIED_READ_ONLY,
    RegistryError,
)
from registry.http.keys import PROXY
from registry.names import check_name
from registry.proxy import Route
from registry.service import ChunkRange

_CONTENT_RANGE: Final = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")
_RANGE: Final = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_NUMBER: Final = re.compile(r"[0-9]{1,9}")
BODY_CHUNK: Final = 1 << 20
READ_AHEAD: Final = 4


def repo_name(request: web.Request) -> str:
    return check_name(request.match_info["name"])


def proxied(request: web.Request, name: str) -> Route | None:
    """Where the pull-through cache fetches `name` from; None for a local repository."""
    cache = request.app.get(PROXY)
    return None if cache is None else cache.route(name)


def local_repo_name(request: web.Request) -> str:
    """The repository of a push or delete: refused (UNSUPPORTED) where it is a cache."""
    name = repo_name(request)
    route = proxied(request, name)
    if route is not None:
        raise RegistryError(
            PROXIED_READ_ONLY,
            detail={"name": name, "upstream": route.upstream.url, "method": request.method},
        )
    return name


def parse_content_range(value: str | None) -> ChunkRange | None:
    """`start-end` (inclusive), as the spec's PATCH uses it; None when absent."""
    if value is None or not value.strip():
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        raise RegistryError(BLOB_UPLOAD_INVALID, detail={"Content-Range": value})
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError(BLOB_UPLOAD_INVALID, detail={"Content-Range": value})
    return ChunkRange(start, end)


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range against a blob of `size` bytes, as [start, end) offsets.

    None: the header is malformed or a multi-range, so it is ignored (RFC 9110: serve it all).
    ValueError: well formed but unsatisfiable (416)."""
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise ValueError(f"unsatisfiable suffix range {value!r} for {size} bytes")
        return max(size - suffix, 0), size
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None
    if start >= size:
        raise ValueError(f"range {value!r} starts past {size} bytes")
    return start, end + 1


async def body_chunks(request: web.Request) -> AsyncGenerator[bytes, None]:
    """The request body in the pieces it arrives in, about BODY_CHUNK bytes read ahead;
    never held whole.

    A reader task keeps receiving while the consumer writes (to disk, in a thread), with at
    most READ_AHEAD chunks in between, so the socket and the disk work at the same time. A
    body of at most one chunk is simply read."""
    if request.content_length is not None and request.content_length <= BODY_CHUNK:
        if data := await request.content.read():
            yield data
        return
    queue: asyncio.Queue[list[bytes] | BaseException | None] = asyncio.Queue(maxsize=READ_AHEAD)

    async def pump() -> None:
        try:
            parts: list[bytes] = []
            size = 0
            while True:
                # readchunk, not readany: readany joins (copies) every piece buffered while
                # the consumer was busy, ~8% of a big upload's CPU; readchunk hands them on.
                chunk, end_of_http_chunk = await request.content.readchunk()
                if not chunk:
                    if end_of_http_chunk:
                        continue
                    break
                parts.append(chunk)  # handed on as received: joining them would copy
                size += len(chunk)
                if size >= BODY_CHUNK:
                    await queue.put(parts)
                    parts, size = [], 0
            if parts:
                await queue.put(parts)
            await queue.put(None)
        except Exception as exc:  # noqa: BLE001  (handed to the consumer, which re-raises it)
            await queue.put(exc)

    reader = asyncio.create_task(pump())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for part in item:
                yield part
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def pagination(query: Mapping[str, str]) -> tuple[int | None, str | None]:
    raw_n, last = query.get("n"), query.get("last")
    n: int | None = None
    if raw_n is not None and raw_n != "":
        if not _NUMBER.fullmatch(raw_n):
            raise RegistryError(PAGINATION_INVALID, detail={"n": raw_n})
        n = int(raw_n)
    return n, (last or None)


def next_link(path: str, n: int | None, last: str, extra: Mapping[str, str] | None = None) -> str:
    """An RFC 5988 Link header to the page after `last`."""
    params = dict(extra or {})
    if n is not None:
        params["n"] = str(n)
    params["last"] = last
    return f'<{quote(path)}?{urlencode(params)}>; rel="next"'
