"""What `docker export` of a container holds, as a tree to compare with `berth mount`."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile

from tests.puller.trees import Node

# Written into every container by dockerd, not part of the image.
DOCKER_RUNTIME_FILES = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"}
# dockerd's init layer re-creates these even when the image has them: same node, new mtime.
DOCKER_INIT_LAYER_RECREATED = {"dev/console", "etc/mtab"}


def run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stderr.decode(errors='replace')}"
    return proc


def export_tree(container: str) -> dict[str, Node]:
    exported = run("docker", "export", container).stdout
    tree: dict[str, Node] = {}
    inode = 0
    with tarfile.open(fileobj=io.BytesIO(exported), mode="r:") as tar:
        for member in tar:
            path = member.name.strip("/").removeprefix("./")
            inode += 1
            if member.islnk():
                tree[path] = tree[member.linkname.strip("/")]
                continue
            data = b""
            if member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                data = source.read()
            kind = (
                "file"
                if member.isreg()
                else "dir"
                if member.isdir()
                else "symlink"
                if member.issym()
                else "fifo"
                if member.isfifo()
                else "char"
                if member.ischr()
                else "block"
            )
            tree[path] = Node(
                kind=kind,
                mode=0 if member.issym() else member.mode & 0o7777,
                uid=member.uid,
                gid=member.gid,
                size=len(data) if member.isreg() else 0,
                sha256=hashlib.sha256(data).hexdigest() if member.isreg() else "",
                target=member.linkname if member.issym() else "",
                rdev=(member.devmajor, member.devminor) if kind in ("char", "block") else (0, 0),
                mtime=0 if member.isdir() else int(member.mtime),
                inode=inode,
                xattrs=tuple(
                    sorted(
                        (k[len("SCHILY.xattr.") :], v.encode("utf-8", "surrogateescape"))
                        for k, v in member.pax_headers.items()
                        if k.startswith("SCHILY.xattr.")
                    )
                ),
            )
    return {p: n for p, n in tree.items() if p and p not in DOCKER_RUNTIME_FILES}
