"""A mount as data: what one mount(2) call does, computed from OCI option strings by pure code.

Following containerd ("a mount represents a serialized mount syscall"), the overlay and the
bundle's mount list are turned into `Mount` values here; only the executor applies them.
"""

from __future__ import annotations

from typing import NamedTuple

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

# option -> (flags to set, flags to clear); the rest of the options become the data string
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0),
    "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0),
    "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0),
    "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0),
    "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "remount": (MS_REMOUNT, 0),
    "mand": (MS_MANDLOCK, 0),
    "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0),
    "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0),
    "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0),
    "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0),
    "nostrictatime": (0, MS_STRICTATIME),
    "bind": (MS_BIND, 0),
    "rbind": (MS_BIND | MS_REC, 0),
}
_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}


class Mount(NamedTuple):
    """One mount(2) call. `cwd`, when set, is where to chdir first (relative overlay lowerdirs)."""

    type: str
    source: str
    target: str
    flags: int = 0
    data: str = ""
    propagation: int = 0
    cwd: str | None = None

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & MS_RDONLY)


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """Split OCI mount options into (flags, propagation flags, data string)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in options:
        if option in _FLAGS:
            set_, clear = _FLAGS[option]
            flags = (flags | set_) & ~clear
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        elif option:
            data.append(option)
    return flags, propagation, ",".join(data)


def from_spec(entry: dict[str, object]) -> Mount:
    """A Mount from one entry of config.json's `mounts` list."""
    options = entry.get("options") or []
    if not isinstance(options, list):
        raise ValueError(f"mount {entry.get('destination')}: options must be a list")
    flags, propagation, data = parse_options([str(o) for o in options])
    return Mount(
        type=str(entry.get("type") or ("bind" if flags & MS_BIND else "none")),
        source=str(entry.get("source") or ""),
        target=str(entry["destination"]),
        flags=flags,
        data=data,
        propagation=propagation,
    )
