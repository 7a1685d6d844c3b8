"""A detached container's output in docker's json-file format: one JSON object a line,

    {"log": "hello\\n", "stream": "stdout", "time": "2026-11-30T09:06:13.123456789Z"}

written by the container monitor as lines arrive, read back by `berth logs`. A line longer
than MAX_LINE is cut into several entries, as docker does; only the last ends with "\\n".
"""

from __future__ import annotations

import json
import os
import select
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_LINE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    stream: str  # stdout | stderr
    data: bytes
    time: str


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as docker writes times: 2026-11-30T09:06:13.123456789Z."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def _record(stream: str, data: bytes) -> bytes:
    entry = {
        "log": data.decode(errors="replace"),
        "stream": stream,
        "time": rfc3339(time.time_ns()),
    }
    return json.dumps(entry).encode() + b"\n"


def _cut(line: bytes) -> list[bytes]:
    """`line` (without its "\n") as entries of at most MAX_LINE bytes, the last ending in "\n"."""
    pieces = [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]
    pieces[-1] += b"\n"
    return pieces


def copy_streams(streams: Mapping[int, str], log: Path) -> None:
    """Copy each pipe read end in `streams` (fd -> "stdout"/"stderr") to `log` until every
    one reaches EOF. Each entry goes out in a single write, so readers see whole lines."""
    pending = {fd: b"" for fd in streams}
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    try:
        while pending:
            for fd, _ in poller.poll():
                chunk = os.read(fd, 65536)
                *lines, rest = (pending[fd] + chunk).split(b"\n")
                entries = [piece for line in lines for piece in _cut(line)]
                while len(rest) >= MAX_LINE or (not chunk and rest):  # cut, or the last at EOF
                    entries.append(rest[:MAX_LINE])
                    rest = rest[MAX_LINE:]
                for entry in entries:
                    os.write(out, _record(streams[fd], entry))
                if chunk:
                    pending[fd] = rest
                else:
                    poller.unregister(fd)
                    os.close(fd)
                    del pending[fd]
    finally:
        os.close(out)


def _parse(line: bytes) -> Entry:
    record = json.loads(line)
    return Entry(record["stream"], record["log"].encode(), record["time"])


def read(log: Path, *, tail: int | None = None) -> Iterator[Entry]:
    """The entries in `log`, or the last `tail` of them."""
    with open(log, "rb") as f:
        lines: Iterator[bytes] = iter(f) if tail is None else iter(deque(f, maxlen=tail))
        for line in lines:
            if line.endswith(b"\n"):
                yield _parse(line)


def follow(
    log: Path, done: Callable[[], bool], *, tail: int | None = None, interval: float = 0.1
) -> Iterator[Entry]:
    """Like `read`, then the entries written after, until `done()` (checked when the file has
    nothing new) is true; what was written before that is still yielded."""
    with open(log, "rb") as f:
        lines = list(f) if tail is None else list(deque(f, maxlen=tail))
        partial = b""
        if lines and not lines[-1].endswith(b"\n"):
            partial = lines.pop()
        for line in lines:
            yield _parse(line)
        finished = False
        while True:
            line = f.readline()
            if line:
                partial += line
                if partial.endswith(b"\n"):
                    yield _parse(partial)
                    partial = b""
                continue
            if finished:
                return
            finished = done()  # one more read after this, for what came before it
            if not finished:
                time.sleep(interval)
