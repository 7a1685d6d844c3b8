"""Containers on disk, under <root>/containers/:

    <root>/containers/<id>/
        config.json     the OCI runtime config (the directory is the bundle)
        rootfs/         where the overlay is mounted, in the runtime's own mount namespace
        upper/ work/    the overlay's writable layer and its scratch dir
        state.json      id, name, image, command, runtime, status, exit code, times
        container.log   output of a detached container (runtime.logfile's format)
    <root>/container-names/<name> -> <id>   a symlink: creating it claims the name

A container left without --rm stays until `berth rm`. Nothing here is mounted on the host:
each run mounts the overlay in a private mount namespace that dies with the container.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple


class ContainerNotFound(LookupError):
    pass


class NameInUse(ValueError):
    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f'the container name "/{name}" is already in use by container "{holder}"')


NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def check_name(name: str) -> str:
    """Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (no regex: `ps` stays lean)."""
    if len(name) < 2 or not name[0].isalnum() or not set(name) <= NAME_CHARS:
        raise ValueError(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-]+")
    return name


class ContainerState(NamedTuple):
    id: str
    image: str
    command: list[str]
    runtime: str
    created: float
    status: str = "created"  # created | running | exited
    pid: int | None = None
    exit_code: int | None = None
    finished: float | None = None
    cgroups_path: str = ""
    layers: list[str] = []  # noqa: RUF012  # shared by NamedTuple, never mutated
    name: str = ""
    monitor_pid: int | None = None  # a detached container's monitor (runtime.monitor)
    started: float | None = None  # when its process was last exec'd
    restart: str = "no"  # docker's --restart policy, applied by the monitor (runtime.restart)
    restart_count: int = 0
    stopped: bool = False  # by `berth stop`: no restart policy starts it again
    log_max_size: int = 0  # --log-opt max-size (runtime.logfile.Rotation); 0: no rotation
    log_max_files: int = 1
    tty: bool = False  # -t: the container's stdio is a pty (runtime.console, runtime.relay)
    open_stdin: bool = False  # -i: attached clients' input reaches the container


class Container(NamedTuple):
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def upper(self) -> Path:
        return self.path / "upper"

    @property
    def work(self) -> Path:
        return self.path / "work"

    @property
    def log(self) -> Path:
        return self.path / "container.log"

    def state(self) -> ContainerState:
        return ContainerState(**json.loads((self.path / "state.json").read_text()))

    def save(self, state: ContainerState) -> None:
        tmp = self.path / "state.json.tmp"
        tmp.write_text(json.dumps(state._asdict()))
        os.replace(tmp, self.path / "state.json")

    def update(self, **changes: Any) -> ContainerState:
        state = self.state()._replace(**changes)
        self.save(state)
        return state

    def write_spec(self, spec: dict[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(spec, indent=2))

    def spec(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / "config.json").read_text())
        return data


_REMOVE_ATTEMPTS = 50


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.dir = root / "containers"
        self.names = root / "container-names"

    def new(
        self, image: str, command: list[str], runtime: str, layers: list[Path], name: str = ""
    ) -> Container:
        """A new container directory; raises NameInUse if `name` is taken."""
        cid = os.urandom(32).hex()  # what secrets.token_hex does, without importing it for `ps`
        container = Container(self.dir / cid)
        if name:
            check_name(name)
        container.path.mkdir(parents=True)  # before the name: a claim names an existing dir
        try:
            if name:
                self._claim(name, cid)
            for d in (container.rootfs, container.upper, container.work):
                d.mkdir()
            container.save(ContainerState(
                id=cid, image=image, command=command, runtime=runtime, created=time.time(),
                cgroups_path=f"/berth/{cid}", layers=[str(p) for p in layers], name=name,
            ))  # fmt: skip
        except BaseException:
            self._release(name, cid)
            shutil.rmtree(container.path, ignore_errors=True)
            raise
        return container

    def _claim(self, name: str, cid: str) -> None:
        self.names.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(cid, self.names / name)  # atomic: one of two racing claims fails
        except FileExistsError:
            holder = self._named(name)
            if holder is not None and (self.dir / holder).is_dir():
                raise NameInUse(name, holder) from None
            os.unlink(self.names / name)  # left by a container removed half-way
            os.symlink(cid, self.names / name)

    def _named(self, name: str) -> str | None:
        if not name or "/" in name:
            return None
        try:
            return os.readlink(self.names / name)
        except OSError:
            return None

    def _release(self, name: str, cid: str) -> None:
        if name and self._named(name) == cid:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.names / name)

    def list(self) -> list[ContainerState]:
        states = []
        if self.dir.is_dir():
            for entry in self.dir.iterdir():
                with contextlib.suppress(OSError, ValueError, TypeError):
                    states.append(Container(entry).state())
        return sorted(states, key=lambda s: s.created, reverse=True)

    def get(self, prefix: str) -> Container:
        """By full id, name or unique id prefix, as docker looks them up; raises
        ContainerNotFound."""
        if not prefix or "/" in prefix or not self.dir.is_dir():
            raise ContainerNotFound(prefix)
        if (self.dir / prefix).is_dir():
            return Container(self.dir / prefix)
        named = self._named(prefix)
        if named is not None and (self.dir / named).is_dir():
            return Container(self.dir / named)
        matches = [p for p in self.dir.iterdir() if p.name.startswith(prefix)]
        if len(matches) != 1:
            raise ContainerNotFound(prefix if not matches else f"{prefix} (ambiguous)")
        return Container(matches[0])

    def remove(self, container: Container) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            self._release(container.state().name, container.id)
        # `rm -f` of a container a foreground `berth run` started: that process records the
        # exit (state.json.tmp, renamed into place) just as the removal runs, so an entry may
        # vanish or appear under rmtree. Its last write is moments away: go again.
        for attempt in range(_REMOVE_ATTEMPTS):
            try:
                shutil.rmtree(container.path)
                return
            except OSError as exc:
                if not container.path.exists():
                    return
                if (
                    exc.errno not in (errno.ENOENT, errno.ENOTEMPTY)
                    or attempt == _REMOVE_ATTEMPTS - 1
                ):
                    raise
                time.sleep(0.02)


def is_running(state: ContainerState) -> bool:
    return state.status == "running" and alive(state.pid)


def alive(pid: int | None) -> bool:
    """Whether process `pid` runs (a zombie does not: its parent may never reap it)."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(b")") + 2 :][:1] not in (b"Z", b"X")


def finished(state: ContainerState) -> bool:
    """Whether the container is gone and all it will ever log and record is written: its
    monitor, if it had one, has exited too."""
    return not is_running(state) and not alive(state.monitor_pid)
