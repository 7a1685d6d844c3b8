"""Writes one layer's tar entries into an empty directory, as an overlayfs upper layer.

The planning (which path, whiteout or entry) is `tarplan`'s; this is the one place that
touches the filesystem. Every path is created beneath `upper` through parents that this
class checked are real directories, so nothing is ever written through a symlink, whether
the symlink came from this layer or from a lower one. Where a layer writes below a
directory it has no entry for, the directory is copied up from the lower layers (mode,
owner, mtime), as overlayfs itself would.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from puller.errors import LayerRejected
from puller.lowerview import OPAQUE_XATTR, LowerView, is_whiteout
from puller.tarplan import (
    FORBIDDEN_XATTR_PREFIXES,
    Action,
    Entry,
    Opaque,
    Whiteout,
    xattrs_of,
)

_COPY_CHUNK: Final = 1 << 20


class LayerApplier:
    """Apply actions in tar order, then `finish()` to fix directory mtimes."""

    def __init__(self, upper: Path, lowers: Sequence[Path]) -> None:
        self.upper = upper
        self.lower = LowerView(lowers)
        self.size = 0
        self._whited: set[str] = set()  # paths this layer whited out
        self._dir_times: dict[str, int] = {}

    def apply(self, action: Action, tar: tarfile.TarFile) -> None:
        if isinstance(action, Whiteout):
            self._whiteout(action.path)
        elif isinstance(action, Opaque):
            self._ensure_dir(action.directory)
            os.setxattr(self._abs(action.directory), OPAQUE_XATTR, b"y")
        else:
            self._entry(action, tar)

    def finish(self) -> None:
        """Set directory mtimes last, deepest first: creating children changed them."""
        for relative, mtime in sorted(self._dir_times.items(), key=lambda i: -i[0].count("/")):
            os.utime(self._abs(relative), ns=(mtime, mtime), follow_symlinks=False)

    # -- actions -------------------------------------------------------------

    def _whiteout(self, relative: str) -> None:
        parent = relative.rpartition("/")[0]
        self._ensure_dir(parent)
        path = self._abs(relative)
        st = _lstat(path)
        self._whited.add(relative)
        if st is not None:
            # a whiteout must not remove what this same layer wrote; it only hides the
            # lower layers, which for a directory means making it opaque
            if stat.S_ISDIR(st.st_mode):
                os.setxattr(path, OPAQUE_XATTR, b"y")
            return
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))

    def _entry(self, entry: Entry, tar: tarfile.TarFile) -> None:
        member, relative = entry.member, entry.path
        if entry.link_target == relative:
            return  # a hardlink to itself changes nothing
        self._ensure_dir(relative.rpartition("/")[0])
        path = self._abs(relative)
        existing = _lstat(path)
        replaced_whiteout = existing is not None and relative in self._whited
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(path, existing)
            existing = None
        if entry.link_target is not None:
            self._hardlink(entry.link_target, path, member)
            return
        if member.isdir():
            if existing is None:
                os.mkdir(path, 0o700)
            if replaced_whiteout or relative in self._whited:
                os.setxattr(path, OPAQUE_XATTR, b"y")
            self._dir_times[relative] = _mtime_ns(member)
        elif member.isreg():
            self._write_file(path, member, tar)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        _set_metadata(path, member)

    def _write_file(self, path: Path, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        source = tar.extractfile(member)
        if source is None:
            raise LayerRejected(f"tar entry {member.name!r} has no data")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                out.write(chunk)
        self.size += member.size

    def _hardlink(self, target: str, path: Path, member: tarfile.TarInfo) -> None:
        self._ensure_dir(target.rpartition("/")[0], create=False)
        source = self._abs(target)
        st = _lstat(source)
        if st is None or is_whiteout(st):
            if st is not None or self._deletes(target):
                raise LayerRejected(
                    f"tar entry {member.name!r} is a hardlink to {target!r}, "
                    "which this layer deletes"
                )
            st = self._copy_up(target, member)
        if stat.S_ISDIR(st.st_mode):
            raise LayerRejected(f"tar entry {member.name!r} is a hardlink to a directory")
        os.link(source, path, follow_symlinks=False)

    # -- copy-up and parents --------------------------------------------------

    def _ensure_dir(self, relative: str, *, create: bool = True) -> None:
        """Make every component of `relative` a real directory in `upper`, copying lower
        directories' metadata; refuse symlinks anywhere on the way."""
        if not relative:
            return
        walked = ""
        for part in relative.split("/"):
            walked = f"{walked}/{part}" if walked else part
            path = self._abs(walked)
            st = _lstat(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                continue
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise LayerRejected(f"layer writes through the symlink {walked!r}")
            if st is not None and not (is_whiteout(st) and walked in self._whited):
                raise LayerRejected(f"layer writes below {walked!r}, which is not a directory")
            if not create:
                return  # the caller looks for the rest in the lower layers
            self._make_dir(walked, path, whited=st is not None)

    def _make_dir(self, relative: str, path: Path, *, whited: bool) -> None:
        found = None if whited else self.lower.lookup(relative)
        if whited:
            os.unlink(path)  # this layer deleted it, then writes below it: an opaque dir
        if found is not None and stat.S_ISLNK(found[1].st_mode):
            raise LayerRejected(f"layer writes through the symlink {relative!r} of a lower layer")
        os.mkdir(path, 0o755)
        if whited:
            os.setxattr(path, OPAQUE_XATTR, b"y")
        if found is not None and stat.S_ISDIR(found[1].st_mode):
            lower_st = found[1]
            os.chown(path, lower_st.st_uid, lower_st.st_gid)
            os.chmod(path, stat.S_IMODE(lower_st.st_mode))
            _copy_xattrs(found[0], path)
            self._dir_times[relative] = lower_st.st_mtime_ns

    def _copy_up(self, relative: str, member: tarfile.TarInfo) -> os.stat_result:
        """Copy a lower layer's file into upper, so a hardlink to it can be made here."""
        found = self.lower.lookup(relative)
        if found is None:
            raise LayerRejected(
                f"tar entry {member.name!r} is a hardlink to {relative!r}, which does not exist"
            )
        self._ensure_dir(relative.rpartition("/")[0])
        source, st = found
        target = self._abs(relative)
        _copy_node(source, target, st)
        return os.lstat(target)

    def _deletes(self, relative: str) -> bool:
        parts = relative.split("/")
        return any("/".join(parts[: i + 1]) in self._whited for i in range(len(parts)))

    def _abs(self, relative: str) -> Path:
        return self.upper / relative if relative else self.upper


def _copy_node(source: Path, target: Path, st: os.stat_result) -> None:
    if stat.S_ISREG(st.st_mode):
        shutil.copyfile(source, target, follow_symlinks=False)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(target, 0o600)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        os.mknod(target, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
    else:
        raise LayerRejected(f"cannot copy up {source.name!r}: not a file")
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    _copy_xattrs(source, target)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_xattrs(source: Path, target: Path) -> None:
    """Copy a lower node's xattrs, except overlayfs' own (a whiteout's or opaque marker)."""
    for name in os.listxattr(source, follow_symlinks=False):
        if not name.startswith(FORBIDDEN_XATTR_PREFIXES):
            value = os.getxattr(source, name, follow_symlinks=False)
            os.setxattr(target, name, value, follow_symlinks=False)


def _set_metadata(path: Path, member: tarfile.TarInfo) -> None:
    is_link = member.issym()
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    for name, value in xattrs_of(member).items():
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError as exc:
            # user.* xattrs are not allowed on symlinks; Docker drops them the same way
            if not (is_link and exc.errno in (errno.EPERM, errno.ENOTSUP)):
                raise
    if not is_link:
        os.chmod(path, stat.S_IMODE(member.mode))  # after chown, which clears setuid bits
    if not member.isdir():
        mtime = _mtime_ns(member)
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _remove(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
