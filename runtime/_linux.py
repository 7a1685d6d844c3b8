"""Minimal wrappers around the Linux system calls Python 3.11 lacks: the only ctypes user.

Like runc's internal/linux: each wrapper retries on EINTR (PEP 475 does not cover ctypes) and
raises OSError naming the operation and the path.
"""

from __future__ import annotations

import _socket  # the C module: `socket` costs `berth run` milliseconds of imports
import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Callable

from runtime.mounts import Mount

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
_CAP_VERSION_3 = 0x20080522
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _call(op: str, fn: Callable[[], int], path: str | None = None) -> int:
    while (ret := fn()) == -1:
        err = ctypes.get_errno()
        if err != errno.EINTR:
            raise OSError(err, f"{op}: {os.strerror(err)}", path)
    return ret


def _b(text: str | None) -> bytes | None:
    return text.encode() if text else None


def unshare(flags: int) -> None:
    _call("unshare", lambda: _libc.unshare(ctypes.c_int(flags)))


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    _call(
        "mount",
        lambda: _libc.mount(
            _b(source), target.encode(), _b(fstype), ctypes.c_ulong(flags), _b(data)
        ),
        target,
    )


def apply(m: Mount, target: str | None = None) -> None:
    """Perform one Mount at `target` (default m.target), chdir'ing to m.cwd around it."""
    where = target or m.target
    previous = os.getcwd() if m.cwd else None
    if m.cwd:
        os.chdir(m.cwd)
    try:
        mount(m.source, where, m.type, m.flags, m.data)
    finally:
        if previous is not None:
            os.chdir(previous)


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace `fd` refers to (an open /proc/PID/ns/* file)."""
    _call("setns", lambda: _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)))


def set_controlling_tty(fd: int) -> None:
    """TIOCSCTTY: make the terminal `fd` the controlling terminal of this session's leader."""
    import termios

    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def umount2(target: str, flags: int = 0) -> None:
    _call("umount2", lambda: _libc.umount2(target.encode(), ctypes.c_int(flags)), target)


def pivot_root(new_root: str, put_old: str) -> None:
    _call(
        "pivot_root",
        lambda: _libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), new_root.encode(), put_old.encode()),
        new_root,
    )


def sethostname(name: str) -> None:
    raw = name.encode()
    _call("sethostname", lambda: _libc.sethostname(raw, ctypes.c_size_t(len(raw))))


def prctl(option: int, arg2: int = 0) -> None:
    _call(
        "prctl",
        lambda: _libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        ),
    )


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks)."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _call("capset", lambda: _libc.capset(ctypes.byref(header), data))


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def loopback_up() -> None:
    """Bring `lo` up in the current network namespace."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    finally:
        s.close()
