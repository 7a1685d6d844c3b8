"""Containers on disk, under <root>/containers/:

    <root>/containers/<id>/
        config.json     the OCI runtime config (the directory is the bundle)
        rootfs/         where the overlay is mounted, in the runtime's own mount namespace
        upper/ work/    the overlay's writable layer and its scratch dir
        state.json      id, image, command, runtime, status, exit code, times

A container left without --rm stays until `berth rm`. Nothing here is mounted on the host:
each run mounts the overlay in a private mount namespace that dies with the container.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


class ContainerNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class ContainerState:
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
    layers: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Container:
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

    def state(self) -> ContainerState:
        return ContainerState(**json.loads((self.path / "state.json").read_text()))

    def save(self, state: ContainerState) -> None:
        tmp = self.path / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, self.path / "state.json")

    def update(self, **changes: Any) -> ContainerState:
        state = replace(self.state(), **changes)
        self.save(state)
        return state

    def write_spec(self, spec: dict[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(spec, indent=2))

    def spec(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / "config.json").read_text())
        return data


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.dir = root / "containers"

    def new(self, image: str, command: list[str], runtime: str, layers: list[Path]) -> Container:
        cid = os.urandom(32).hex()  # what secrets.token_hex does, without importing it for `ps`
        container = Container(self.dir / cid)
        for d in (container.rootfs, container.upper, container.work):
            d.mkdir(parents=True)
        container.save(ContainerState(
            id=cid, image=image, command=command, runtime=runtime, created=time.time(),
            cgroups_path=f"/berth/{cid}", layers=[str(p) for p in layers],
        ))  # fmt: skip
        return container

    def list(self) -> list[ContainerState]:
        states = []
        if self.dir.is_dir():
            for entry in self.dir.iterdir():
                with contextlib.suppress(OSError, ValueError, TypeError):
                    states.append(Container(entry).state())
        return sorted(states, key=lambda s: s.created, reverse=True)

    def get(self, prefix: str) -> Container:
        """By full id or unique prefix; raises ContainerNotFound."""
        if not prefix or "/" in prefix or not self.dir.is_dir():
            raise ContainerNotFound(prefix)
        matches = [p for p in self.dir.iterdir() if p.name.startswith(prefix)]
        if len(matches) != 1:
            raise ContainerNotFound(prefix if not matches else f"{prefix} (ambiguous)")
        return Container(matches[0])

    def remove(self, container: Container) -> None:
        shutil.rmtree(container.path, ignore_errors=False)


def is_running(state: ContainerState) -> bool:
    if state.status != "running" or state.pid is None:
        return False
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return False
    return True
