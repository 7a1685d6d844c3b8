"""Named and anonymous volumes, kept as docker's `local` driver keeps them:

    <root>/volumes/<name>/_data          the volume's content, bind-mounted into containers
    <root>/volumes/<name>/volume.json    created time, labels, whether it is anonymous
    <root>/volumes/.lock                 flock held while volumes are taken or removed

Which containers use a volume is read from their `mounts.json` (runtime.volumemounts), so
removing a container releases its volumes; `remove` refuses a volume any container uses,
running or not, as docker does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.mountspec import check_volume_name


class VolumeError(Exception):
    """A volume operation that cannot be done; the message is docker's."""


class NoSuchVolume(VolumeError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")


class VolumeInUse(VolumeError):
    def __init__(self, name: str, users: list[str]) -> None:
        super().__init__(f"remove {name}: volume is in use - [{', '.join(users)}]")


@dataclass(frozen=True, slots=True)
class Volume:
    name: str
    path: Path  # <root>/volumes/<name>
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False

    @property
    def mountpoint(self) -> Path:
        return self.path / "_data"

    def describe(self) -> dict[str, Any]:
        """`docker volume inspect`'s object."""
        return {
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "Driver": "local",
            "Labels": dict(self.labels) or None,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": None,
            "Scope": "local",
        }


def directory_size(path: Path) -> int:
    """Bytes in regular files under `path` (hard links counted once), for prune's total."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "volumes"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialises volume creation, use and removal across berth processes."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def get(self, name: str) -> Volume:
        if not name or "/" in name or name.startswith("."):
            raise NoSuchVolume(name)
        path = self.dir / name
        try:
            meta = json.loads((path / "volume.json").read_text())
        except (OSError, ValueError):
            if not (path / "_data").is_dir():
                raise NoSuchVolume(name) from None
            meta = {}
        return Volume(
            name=name,
            path=path,
            created=float(meta.get("created", path.stat().st_mtime)),
            labels=dict(meta.get("labels") or {}),
            anonymous=bool(meta.get("anonymous", False)),
        )

    def create(
        self, name: str = "", labels: dict[str, str] | None = None, *, anonymous: bool = False
    ) -> tuple[Volume, bool]:
        """(volume, made now): an existing volume of that name is returned as it is, as
        `docker volume create NAME` does. No name: an anonymous volume with a random one."""
        if not name:
            name = os.urandom(32).hex()
        else:
            check_volume_name(name)
        with contextlib.suppress(NoSuchVolume):
            return self.get(name), False
        path = self.dir / name
        (path / "_data").mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o701)  # docker's: others may reach _data only through the mount
        meta = {"created": time.time(), "labels": labels or {}, "anonymous": anonymous}
        tmp = path / "volume.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path / "volume.json")
        return self.get(name), True

    def all(self) -> list[Volume]:
        volumes = []
        if self.dir.is_dir():
            for entry in sorted(self.dir.iterdir()):
                if entry.name.startswith("."):
                    continue
                with contextlib.suppress(NoSuchVolume, OSError):
                    volumes.append(self.get(entry.name))
        return volumes

    def users(self) -> dict[str, list[str]]:
        """Volume name -> ids of the containers whose mounts.json names it."""
        from runtime.volumemounts import volumes_of

        found: dict[str, list[str]] = {}
        containers = self.root / "containers"
        if containers.is_dir():
            for entry in containers.iterdir():
                for name in volumes_of(entry):
                    found.setdefault(name, []).append(entry.name)
        return found

    def remove(self, name: str) -> None:
        """Raises NoSuchVolume, or VolumeInUse while a container (even stopped) uses it."""
        with self.locked():
            volume = self.get(name)
            users = self.users().get(name)
            if users:
                raise VolumeInUse(name, users)
            shutil.rmtree(volume.path)

    def prune(self, *, everything: bool = False) -> list[tuple[str, int]]:
        """Remove unused anonymous volumes (all unused ones with `everything`, as
        `docker volume prune -a`); returns (name, bytes freed) of each."""
        removed = []
        with self.locked():
            used = self.users()
            for volume in self.all():
                if volume.name in used or not (everything or volume.anonymous):
                    continue
                size = directory_size(volume.mountpoint)
                shutil.rmtree(volume.path)
                removed.append((volume.name, size))
        return removed
