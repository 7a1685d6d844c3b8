"""The container's terminal, made inside the container as runc makes it: after pivot_root the
process opens /dev/ptmx (its own devpts instance, so `tty` prints /dev/pts/N), makes the slave
its stdin, stdout, stderr and controlling terminal, owned by the container's user, and sends
the master to whoever holds the other end of the console socket (the monitor's relay, or
`berth exec`), waiting for one byte back: the window size is set before the exec."""

from __future__ import annotations

import contextlib
import os
import socket

from runtime import _linux


def send_master(console: int, master: int) -> None:
    """Hand `master` over the console socket `console` and wait for the acknowledgement."""
    with socket.socket(fileno=os.dup(console)) as sock:
        socket.send_fds(sock, [b"m"], [master])
        with contextlib.suppress(OSError):
            sock.recv(1)


def receive_master(sock: socket.socket) -> int:
    """The master sent by send_master; raises ConnectionError when none came."""
    _, fds, _, _ = socket.recv_fds(sock, 16, 4)
    if not fds:
        raise ConnectionError("no terminal came over the console socket")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


def open_terminal(console: int, uid: int) -> None:
    """In the container, before exec: a new pty as stdio and controlling terminal (the caller
    is a session leader); its master goes over `console`."""
    master, slave = os.openpty()
    os.fchown(slave, uid, -1)
    send_master(console, master)
    os.close(master)
    _linux.set_controlling_tty(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
