"""A detached container's output in docker's json-file format: one JSON object a line,

    {"log": "hello\\n", "stream": "stdout", "time": "2026-11-30T09:06:13.123456789Z"}

written by the container monitor as lines arrive, read back by `berth logs`. A line longer
than MAX_LINE is cut into several entries, as docker does; only the last ends with "\\n".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Rotation:
    """docker's `--log-opt max-size=SIZE --log-opt max-file=N`: past max_size bytes the log
    becomes log.1 (log.1 becomes log.2 ...), keeping max_files files in all."""

    max_size: int = 0  # 0: never rotate
    max_files: int = 1

    @classmethod
    def parse(cls, options: list[str]) -> Rotation:
        """From `--log-opt KEY=VALUE` values; raises ValueError (OptionError for sizes)."""
        from runtime.options import parse_size

        values = dict(option.partition("=")[::2] for option in options)
        unknown = set(values) - {"max-size", "max-file"}
        if unknown:
            raise ValueError(f"unknown log option {sorted(unknown)[0]!r}: use max-size, max-file")
        size = parse_size(values["max-size"]) if "max-size" in values else 0
        files = values.get("max-file", "1")
        if not files.isdigit() or int(files) < 1:
            raise ValueError(f"invalid max-file {files!r}: a number of files, at least 1")
        if "max-file" in values and not size:
            raise ValueError("max-file needs max-size")
        return cls(size, int(files))

    def rotate(self, log: Path) -> None:
        for n in range(self.max_files - 1, 0, -1):
            older = log.with_name(f"{log.name}.{n - 1}") if n > 1 else log
            if older.exists():
                os.replace(older, log.with_name(f"{log.name}.{n}"))
        log.unlink(missing_ok=True)  # max-file=1: start afresh


def files(log: Path) -> list[Path]:
    """The log and its rotated files, oldest first."""
    rotated = [p for p in log.parent.glob(f"{log.name}.*") if p.suffix[1:].isdigit()]
    return [*sorted(rotated, key=lambda p: -int(p.suffix[1:])), log]


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
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"  # as docker writes it


def _cut(line: bytes) -> list[bytes]:
    """`line` (without its "\n") as entries of at most MAX_LINE bytes, the last ending in "\n"."""
    pieces = [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]
    pieces[-1] += b"\n"
    return pieces


class LogWriter:
    """Appends output to `log` as entries, a whole line each (cut past MAX_LINE), rotating
    it as `rotation` says. Each entry goes out in a single write, so readers see whole lines."""

    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC

    def __init__(self, log: Path, rotation: Rotation = Rotation()) -> None:
        self.log = log
        self.rotation = rotation
        self.pending: dict[str, bytes] = {}
        self.fd = os.open(log, self._FLAGS, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, chunk: bytes) -> None:
        """`chunk` of `stream`'s output; an empty chunk is its EOF (the rest goes out)."""
        *lines, rest = (self.pending.get(stream, b"") + chunk).split(b"\n")
        entries = [piece for line in lines for piece in _cut(line)]
        while len(rest) >= MAX_LINE or (not chunk and rest):  # cut, or the last at EOF
            entries.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        for entry in entries:
            self.size += os.write(self.fd, _record(stream, entry))
            if self.rotation.max_size and self.size >= self.rotation.max_size:
                os.close(self.fd)
                self.rotation.rotate(self.log)
                self.fd, self.size = os.open(self.log, self._FLAGS, 0o640), 0
        self.pending[stream] = rest

    def close(self) -> None:
        os.close(self.fd)


def copy_streams(streams: Mapping[int, str], log: Path, rotation: Rotation = Rotation()) -> None:
    """Copy each pipe read end in `streams` (fd -> "stdout"/"stderr") to `log` until every
    one reaches EOF."""
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    open_fds = set(streams)
    writer = LogWriter(log, rotation)
    try:
        while open_fds:
            for fd, _ in poller.poll():
                chunk = os.read(fd, 65536)
                writer.write(streams[fd], chunk)
                if not chunk:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
    finally:
        writer.close()


def _parse(line: bytes) -> Entry:
    record = json.loads(line)
    return Entry(record["stream"], record["log"].encode(), record["time"])


def read(log: Path, *, tail: int | None = None) -> Iterator[Entry]:
    """The entries in `log` and its rotated files, or the last `tail` of them."""
    every = (line for path in files(log) for line in _lines(path))
    for line in every if tail is None else deque(every, maxlen=tail):
        yield _parse(line)


def _lines(path: Path) -> Iterator[bytes]:
    with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
        yield from (line for line in f if line.endswith(b"\n"))


def _replaced(f: BinaryIO, log: Path) -> bool:
    try:
        return os.stat(log).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def follow(
    log: Path, done: Callable[[], bool], *, tail: int | None = None, interval: float = 0.1
) -> Iterator[Entry]:
    """Like `read`, then the entries written after, until `done()` (checked when the file has
    nothing new) is true; what was written before that is still yielded. Follows the log
    across rotations."""
    f = open(log, "rb")  # noqa: SIM115  (reopened on rotation, closed in `finally`)
    try:
        older = (line for path in files(log)[:-1] for line in _lines(path))
        every = itertools.chain(older, f)
        lines = list(every) if tail is None else list(deque(every, maxlen=tail))
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
            if _replaced(f, log):  # rotated: what is left of this file has been read
                f.close()
                f = open(log, "rb")  # noqa: SIM115
                partial = b""
                continue
            finished = done()  # one more read after this, for what came before it
            if not finished:
                time.sleep(interval)
    finally:
        f.close()
