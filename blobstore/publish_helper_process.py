"""The process behind blobstore.publish_helper, run as a script (`python -I -S <this file> FD`).

It reads requests from the socket FD: `<path>\\0<target>\\0`, a file written and closed, and
the name it is to have. For each request, in order, it answers a 4-byte errno in native byte
order, 0 when done. It takes whatever requests have arrived as one batch: it fsyncs every
file, renames each to its target, then fsyncs every target directory once. A file is thus
durable before its name, and its name before the answer.

Only the standard library, and no event loop: the process costs a few MiB, and its blocking
calls share no GIL with the event loop that sent the requests. It exits when the socket
closes: when the process that started it closes the socket, or dies.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import struct
import sys

_RECV = 1 << 16


def main() -> None:
    # A Ctrl-C or a TERM to the process group is for the server: this process stops when
    # its socket closes, once the batch in hand is done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sys.argv[1]))
    partial = b""
    while True:
        try:
            data = sock.recv(_RECV)
        except OSError:
            return
        if not data:
            return
        fields = (partial + data).split(b"\0")
        partial = fields.pop()  # the start of the next field, if any
        if len(fields) % 2:  # a path whose target has not arrived yet
            partial = fields.pop() + b"\0" + partial
        if fields:
            codes = publish(list(zip(fields[::2], fields[1::2], strict=True)))
            try:
                sock.sendall(struct.pack(f"={len(codes)}i", *codes))
            except OSError:
                return


def publish(batch: list[tuple[bytes, bytes]]) -> list[int]:
    """The errno of each (path, target) of `batch`, 0 for one now durable under `target`."""
    codes = [_fsync(path) for path, _ in batch]
    directories: dict[bytes, list[int]] = {}
    for i, (path, target) in enumerate(batch):
        if codes[i]:
            continue
        try:
            os.replace(path, target)
        except OSError as exc:
            codes[i] = exc.errno or errno.EIO
        else:
            directories.setdefault(os.path.dirname(target), []).append(i)
    for directory, indexes in directories.items():
        code = _fsync(directory, os.O_DIRECTORY)
        for i in indexes:
            codes[i] = code
    return codes


def _fsync(path: bytes, flags: int = 0) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.errno or errno.EIO
    return 0


if __name__ == "__main__":
    main()
