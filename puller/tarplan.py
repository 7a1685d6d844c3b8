"""What a tar entry means for an overlay snapshot, decided by pure code.

Each member name becomes a relative path inside the snapshot, or is refused: absolute
names, `..` components and empty names never reach the filesystem. OCI whiteouts are
recognised here: `.wh..wh..opq` makes its directory opaque, `.wh.NAME` deletes NAME from the
lower layers. Whiteouts only ever act on lower layers (image-spec layer.md), so the applier
never removes what the same layer wrote.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import Final

from puller.errors import LayerRejected

WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"
# xattrs a layer may not set itself: they would forge whiteouts or opaque dirs.
FORBIDDEN_XATTR_PREFIXES: Final = ("trusted.overlay.", "user.overlay.")
XATTR_PAX_PREFIX: Final = "SCHILY.xattr."


@dataclass(frozen=True, slots=True)
class Whiteout:
    path: str  # relative, normalized: what is deleted from the lower layers


@dataclass(frozen=True, slots=True)
class Opaque:
    directory: str  # relative, normalized; "" is the root


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    member: tarfile.TarInfo
    link_target: str | None = None  # normalized, for hardlinks only


Action = Whiteout | Opaque | Entry


def clean_path(name: str, what: str = "path") -> str:
    """Normalize a tar member name to `a/b/c`; raise LayerRejected for absolute names or
    `..` components (a layer must never reach outside its snapshot)."""
    if "\x00" in name:
        raise LayerRejected(f"{what} {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise LayerRejected(f"{what} {name!r} is absolute")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise LayerRejected(f"{what} {name!r} leaves the layer through '..'")
    return "/".join(parts)


def plan_member(member: tarfile.TarInfo) -> Action | None:
    """Classify one tar member; None for members with nothing to write (the root itself)."""
    path = clean_path(member.name)
    if not path:
        if member.isdir():
            return None
        raise _rejected(member, "names the root but is not a dir")
    parent, _, base = path.rpartition("/")
    if base == OPAQUE_MARKER:
        return Opaque(parent)
    if base.startswith(WHITEOUT_PREFIX):
        target = base[len(WHITEOUT_PREFIX) :]
        if not target or target in (".", ".."):
            raise _rejected(member, "is a whiteout of nothing")
        return Whiteout(f"{parent}/{target}" if parent else target)
    if member.islnk():
        target = clean_path(member.linkname, "hardlink target")
        if not target:
            raise _rejected(member, "is a hardlink to the root")
        return Entry(path, member, target)
    if not (
        member.isreg()
        or member.isdir()
        or member.issym()
        or member.ischr()
        or member.isblk()
        or member.isfifo()
    ):
        raise _rejected(member, f"has unsupported tar type {member.type!r}")
    return Entry(path, member)


def xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    """The extended attributes a PAX header carries (SCHILY.xattr.*), minus forbidden ones."""
    found: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX) :]
        if name.startswith(FORBIDDEN_XATTR_PREFIXES):
            continue
        found[name] = value.encode("utf-8", "surrogateescape")
    return found


def _rejected(member: tarfile.TarInfo, reason: str) -> LayerRejected:
    return LayerRejected(f"tar entry {member.name!r} {reason}")
