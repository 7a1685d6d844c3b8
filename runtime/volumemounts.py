"""A container's `-v`/`--mount`/`--tmpfs` requests made real: volumes created (and filled
from the image, as docker fills an empty volume), config.json mount entries, and the record
`<container>/mounts.json` that `inspect` shows and that marks the volumes as in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.containers import Container, ContainerStore
from runtime.mountspec import MountRequest, check_unique
from runtime.options import OptionError
from runtime.volumes import Volume, VolumeError, VolumeStore

RECORD = "mounts.json"


@dataclass(frozen=True, slots=True)
class PlannedMount:
    request: MountRequest
    source: str = ""  # the host path bound (bind, volume)
    volume: Volume | None = None

    def spec(self) -> dict[str, Any]:
        """The config.json `mounts` entry."""
        r = self.request
        if r.type == "tmpfs":
            return {
                "destination": r.target,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": list(r.options),
            }
        options = ["rbind", r.propagation or "rprivate"] + (["ro"] if r.readonly else [])
        return {"destination": r.target, "type": "bind", "source": self.source, "options": options}

    def record(self) -> dict[str, Any] | None:
        """The entry of docker inspect's `Mounts` (None: docker lists no --tmpfs there)."""
        r = self.request
        if r.flag == "--tmpfs":
            return None
        entry: dict[str, Any] = {"Type": r.type}
        if self.volume is not None:
            entry["Name"] = self.volume.name
        entry["Source"] = self.source
        entry["Destination"] = r.target
        if self.volume is not None:
            entry["Driver"] = "local"
        entry["Mode"] = r.mode
        entry["RW"] = not r.readonly
        entry["Propagation"] = r.propagation if r.type == "bind" else ""
        return entry


def _empty(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def copy_up(layers: Sequence[Path], path: str, dest: Path, scratch: Path) -> None:
    """Copy the image's `path` (a directory, as the merged layers show it) into `dest`, with
    owners, modes and xattrs: docker's copy of image content into an empty volume. The image
    is mounted read-only in a child's private mount namespace; nothing stays mounted."""
    import subprocess
    import tempfile

    from runtime import _linux
    from runtime.mounts import MS_PRIVATE, MS_REC
    from runtime.paths import secure_join
    from runtime.views import mount_image

    work = Path(tempfile.mkdtemp(prefix=".copy-", dir=scratch))
    try:
        view, empty = work / "view", work / "empty"
        view.mkdir()
        empty.mkdir()
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(read_end)
            message = ""
            try:
                _linux.unshare(_linux.CLONE_NEWNS)
                _linux.mount("", "/", "", MS_REC | MS_PRIVATE)
                mount_image(list(layers), view, empty=empty, scratch=work)
                source = secure_join(str(view), path)
                if os.path.isdir(source):
                    argv = ["cp", "-a", "--", source + "/.", str(dest) + "/"]
                    done = subprocess.run(argv, check=False, capture_output=True, text=True)
                    message = done.stderr.strip().replace("\n", "; ")
                    if done.returncode != 0 and not message:
                        message = f"cp exited with {done.returncode}"
            except BaseException as exc:  # noqa: BLE001  (reported by the parent)
                message = str(exc) or type(exc).__name__
            finally:
                os.write(write_end, message.encode()[:4000])
                os._exit(1 if message else 0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        if message or os.waitstatus_to_exitcode(status) != 0:
            raise VolumeError(
                f"copying the image's {path} into volume {dest.parent.name}: {message}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def plan(
    store: VolumeStore, requests: Sequence[MountRequest], layers: Sequence[Path]
) -> list[PlannedMount]:
    """Make what the requests need: missing `-v` host dirs (as docker makes them), volumes
    (filled from the image when empty, unless nocopy). Call under `store.locked()`. On a
    failure the volumes made by this call are removed again."""
    planned: list[PlannedMount] = []
    made: list[Volume] = []
    try:
        for r in requests:
            if r.type == "bind":
                if r.flag == "-v":
                    os.makedirs(r.source, exist_ok=True)
                elif not os.path.exists(r.source):
                    raise OptionError(
                        f'invalid mount config for type "bind": bind source path does not '
                        f"exist: {r.source}"
                    )
                planned.append(PlannedMount(r, source=r.source))
            elif r.type == "volume":
                volume, new = store.create(r.source, dict(r.labels), anonymous=not r.source)
                if new:
                    made.append(volume)
                if not r.nocopy and _empty(volume.mountpoint):
                    copy_up(layers, r.target, volume.mountpoint, store.dir)
                planned.append(PlannedMount(r, source=str(volume.mountpoint), volume=volume))
            else:
                planned.append(PlannedMount(r))
    except BaseException:
        for volume in made:
            shutil.rmtree(volume.path, ignore_errors=True)
        raise
    return planned


def save(container_dir: Path, planned: Sequence[PlannedMount]) -> None:
    """Write `mounts.json`: docker's Mounts entries and the volumes the container holds."""
    given = [p.request for p in planned]
    data = {
        "Mounts": [rec for p in planned if (rec := p.record()) is not None],
        "Binds": [r.spec for r in given if r.flag == "-v" and r.source],
        "Tmpfs": {r.target: r.spec.partition(":")[2] for r in given if r.flag == "--tmpfs"},
        "ConfigVolumes": {r.target: {} for r in given if r.flag == "-v" and not r.source},
        "Volumes": [p.volume.name for p in planned if p.volume is not None],
        "Anonymous": [p.volume.name for p in planned if p.volume and p.volume.anonymous],
    }
    (container_dir / RECORD).write_text(json.dumps(data, indent=2))


def _load(container_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((container_dir / RECORD).read_text())
        return data
    except (OSError, ValueError):
        return {}


def records(container_dir: Path) -> list[dict[str, Any]]:
    """`inspect`'s Mounts for the container."""
    return list(_load(container_dir).get("Mounts") or [])


def host_config(container_dir: Path) -> dict[str, Any]:
    """inspect's HostConfig.Binds and .Tmpfs, and Config.Volumes (anonymous `-v`), as docker
    fills them (None where nothing was given)."""
    data = _load(container_dir)
    return {key: data.get(key) or None for key in ("Binds", "Tmpfs", "ConfigVolumes")}


def volumes_of(container_dir: Path) -> list[str]:
    return [str(n) for n in _load(container_dir).get("Volumes") or []]


def anonymous_volumes(container_dir: Path) -> list[str]:
    return [str(n) for n in _load(container_dir).get("Anonymous") or []]


def remove_volumes(store: VolumeStore, names: Sequence[str]) -> None:
    """Remove a removed container's anonymous volumes (`rm -v`, `--rm`); one that another
    container still names stays, as with docker."""
    for name in names:
        with contextlib.suppress(VolumeError):
            store.remove(name)


def create_with_mounts(
    store: ContainerStore,
    requests: Sequence[MountRequest],
    layers: Sequence[Path],
    make: Callable[[list[dict[str, Any]]], Container],
) -> Container:
    """`make(mounts)` (launch.create with more config.json mounts) once the requests' volumes
    exist, holding the volume lock until `mounts.json` marks them in use, so that a racing
    `volume rm` either runs first or sees the container."""
    check_unique(list(requests))
    if not requests:
        return make([])
    volumes = VolumeStore(store.dir.parent)
    with volumes.locked():
        planned = plan(volumes, requests, layers)
        try:
            container = make([p.spec() for p in planned])
        except BaseException:
            for p in planned:
                if p.volume is not None and p.volume.anonymous:
                    shutil.rmtree(p.volume.path, ignore_errors=True)
            raise
        save(container.path, planned)
    return container
