"""What a stack of layers means, as a model, and what a directory tree holds, for comparing.

`expected_tree(layers)` applies each layer's entries to an in-memory model with the OCI
image-spec rules (whiteouts and opaque markers delete from the lower layers only); it shares
no code with the puller. `scan_tree(root)` lstat()s a real tree into the same shape.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tests.support.images import Entry


@dataclass(frozen=True)
class Node:
    kind: str  # file, dir, symlink, fifo, char, block
    mode: int  # permission bits incl. setuid/setgid/sticky; 0 for symlinks
    uid: int
    gid: int
    size: int = 0  # regular files
    sha256: str = ""  # regular files
    target: str = ""  # symlinks
    rdev: tuple[int, int] = (0, 0)  # devices
    mtime: int = 0  # non-directories
    inode: int = 0  # model: identity for hardlinks; scan: st_ino
    xattrs: tuple[tuple[str, bytes], ...] = ()  # sorted (name, value)


def _without_inode(node: Node) -> Node:
    return replace(node, inode=0)


def comparable(tree: dict[str, Node]) -> dict[str, Node]:
    return {path: _without_inode(node) for path, node in tree.items()}


def link_groups(tree: dict[str, Node]) -> set[frozenset[str]]:
    """Sets of paths sharing one inode (only sets of two or more)."""
    groups: dict[int, set[str]] = {}
    for path, node in tree.items():
        if node.kind != "dir":
            groups.setdefault(node.inode, set()).add(path)
    return {frozenset(paths) for paths in groups.values() if len(paths) > 1}


_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
}


def expected_tree(layers: Sequence[Sequence[Entry]]) -> dict[str, Node]:
    tree: dict[str, Node] = {}
    counter = iter(range(1, 1_000_000))
    for entries in layers:
        _delete_from_lower(tree, entries)
        for entry in entries:
            path = entry.path.strip("/")
            base = path.rpartition("/")[2]
            if base.startswith(".wh."):
                continue
            _ensure_parents(tree, path)
            if entry.kind == tarfile.LNKTYPE:
                tree[path] = tree[entry.target.strip("/")]
                continue
            kind = _KINDS[entry.kind]
            existing = tree.get(path)
            if existing is not None and not (existing.kind == "dir" and kind == "dir"):
                _remove(tree, path)
            content = entry.content + bytes(entry.zeros)
            tree[path] = Node(
                kind=kind,
                mode=0 if kind == "symlink" else entry.mode & 0o7777,
                uid=entry.uid,
                gid=entry.gid,
                size=len(content) if kind == "file" else 0,
                sha256=hashlib.sha256(content).hexdigest() if kind == "file" else "",
                target=entry.target if kind == "symlink" else "",
                rdev=(entry.major, entry.minor) if kind in ("char", "block") else (0, 0),
                mtime=0 if kind == "dir" else entry.mtime,
                inode=next(counter),
                xattrs=tuple(
                    sorted(
                        (k, v.encode())
                        for k, v in entry.xattrs.items()
                        if not k.startswith(("trusted.overlay.", "user.overlay."))
                    )
                ),
            )
    return tree


def _delete_from_lower(tree: dict[str, Node], entries: Sequence[Entry]) -> None:
    for entry in entries:
        parent, _, base = entry.path.strip("/").rpartition("/")
        if base == ".wh..wh..opq":
            for path in [p for p in tree if p.startswith(f"{parent}/") or not parent]:
                del tree[path]
        elif base.startswith(".wh."):
            _remove(tree, f"{parent}/{base[4:]}" if parent else base[4:])


def _remove(tree: dict[str, Node], path: str) -> None:
    tree.pop(path, None)
    for other in [p for p in tree if p.startswith(f"{path}/")]:
        del tree[other]


def _ensure_parents(tree: dict[str, Node], path: str) -> None:
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        parent = "/".join(parts[:i])
        if parent not in tree:
            tree[parent] = Node("dir", 0o755, 0, 0)


def scan_tree(root: Path) -> dict[str, Node]:
    """Every entry below `root` (not `root` itself), by relative path."""
    tree: dict[str, Node] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            tree[os.path.relpath(full, root)] = scan_node(full)
    return tree


def scan_node(path: str) -> Node:
    return replace(
        _scan_node(path),
        xattrs=tuple(
            sorted(
                (name, os.getxattr(path, name, follow_symlinks=False))
                for name in os.listxattr(path, follow_symlinks=False)
            )
        ),
    )


def _scan_node(path: str) -> Node:
    st = os.lstat(path)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return Node(
            "file",
            stat.S_IMODE(mode),
            st.st_uid,
            st.st_gid,
            st.st_size,
            digest.hexdigest(),
            mtime=int(st.st_mtime),
            inode=st.st_ino,
        )
    if stat.S_ISDIR(mode):
        return Node("dir", stat.S_IMODE(mode), st.st_uid, st.st_gid, inode=st.st_ino)
    if stat.S_ISLNK(mode):
        return Node(
            "symlink",
            0,
            st.st_uid,
            st.st_gid,
            target=os.readlink(path),
            mtime=int(st.st_mtime),
            inode=st.st_ino,
        )
    if stat.S_ISFIFO(mode):
        return Node(
            "fifo",
            stat.S_IMODE(mode),
            st.st_uid,
            st.st_gid,
            mtime=int(st.st_mtime),
            inode=st.st_ino,
        )
    kind = "char" if stat.S_ISCHR(mode) else "block"
    return Node(
        kind,
        stat.S_IMODE(mode),
        st.st_uid,
        st.st_gid,
        rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)),
        mtime=int(st.st_mtime),
        inode=st.st_ino,
    )


def differences(expected: dict[str, Node], actual: dict[str, Node]) -> list[str]:
    """Human-readable differences, empty when the trees are equal."""
    problems = [f"missing: {p} {expected[p]}" for p in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected: {p} {actual[p]}" for p in sorted(actual.keys() - expected.keys())]
    for path in sorted(expected.keys() & actual.keys()):
        if _without_inode(expected[path]) != _without_inode(actual[path]):
            problems.append(
                f"differs: {path}\n  expected {expected[path]}\n  actual   {actual[path]}"
            )
    return problems
