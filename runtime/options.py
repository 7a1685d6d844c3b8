"""What `berth run` was asked for, validated by pure code: sizes, CPUs, volumes, env."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, NamedTuple

from runtime.containers import NAME_CHARS

if TYPE_CHECKING:
    from runtime.network.ports import PortMapping  # imported only when -p is given

_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY = 6 * 1024 * 1024  # docker refuses less: the runtime itself needs some
CPU_PERIOD = 100_000


class OptionError(ValueError):
    """A run option the user got wrong; the message names it."""


def parse_size(text: str) -> int:
    """Bytes from a docker-style size: `64m`, `1g`, `512k`, `1.5G`, `100MiB` (binary units)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise OptionError(f"invalid size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_memory(text: str) -> int:
    """`-m`: a size (parse_size) of at least 6 MB, as docker requires."""
    size = parse_size(text)
    if size < MIN_MEMORY:
        raise OptionError(f"minimum memory limit allowed is 6MB, got {text!r}")
    return size


def parse_cpus(text: str) -> tuple[int, int]:
    """(quota, period) in microseconds for `--cpus`, as docker computes them."""
    try:
        cpus = float(text)
    except ValueError:
        raise OptionError(f"invalid value for --cpus: {text!r}") from None
    if not 0.01 <= cpus <= 1024:
        raise OptionError(f"--cpus must be between 0.01 and 1024, got {text!r}")
    return int(cpus * CPU_PERIOD), CPU_PERIOD


class Volume(NamedTuple):
    source: str
    destination: str
    readonly: bool = False


def parse_volume(text: str) -> Volume:
    """`-v SRC:DST[:ro|rw]`, host paths only (Berth has no named volumes)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise OptionError(f"invalid volume specification: {text!r}")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise OptionError(f"invalid mode {mode!r} in volume {text!r}")
    source, destination = parts[0], parts[1]
    if not source.startswith("/"):
        raise OptionError(f"volume source must be an absolute host path: {source!r}")
    if not destination.startswith("/") or destination == "/":
        raise OptionError(f"invalid volume destination: {destination!r}")
    return Volume(source, destination, mode == "ro")


def parse_env(text: str) -> str:
    """`-e K=V`, or `-e K` meaning K's value in berth's own environment (as docker does)."""
    key = text.split("=", 1)[0]
    if not key:
        raise OptionError(f"invalid environment variable: {text!r}")
    return text


class RunOptions:
    """Everything about one container that is not in the image. None means 'from the image'.

    A plain class, immutable by convention, not a dataclass: `berth run` does not load
    dataclasses and inspect (~3.5 ms)."""

    __slots__ = (
        "command",
        "cpu_quota",
        "entrypoint",
        "env",
        "hostname",
        "interactive",
        "ip",
        "memory",
        "network",
        "pids_limit",
        "publish",
        "read_only",
        "tty",
        "user",
        "volumes",
        "workdir",
    )

    def __init__(
        self,
        *,
        command: tuple[str, ...] = (),
        entrypoint: str | None = None,
        env: tuple[str, ...] = (),
        workdir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        memory: int | None = None,
        cpu_quota: tuple[int, int] | None = None,
        pids_limit: int | None = None,
        network: str = "none",
        volumes: tuple[Volume, ...] = (),
        read_only: bool = False,
        interactive: bool = False,
        publish: tuple[PortMapping, ...] = (),  # -p; needs a bridge network (runtime.network)
        ip: str | None = None,  # --ip on a user network (checked against it by runtime.network)
        tty: bool = False,  # -t: process.terminal, TERM=xterm (the pty is runtime.console's)
    ) -> None:
        self.command: Final = command
        self.entrypoint: Final = entrypoint
        self.env: Final = env
        self.workdir: Final = workdir
        self.user: Final = user
        self.hostname: Final = hostname
        self.memory: Final = memory
        self.cpu_quota: Final = cpu_quota
        self.pids_limit: Final = pids_limit
        self.network: Final = network
        self.volumes: Final = volumes
        self.read_only: Final = read_only
        self.interactive: Final = interactive
        self.publish: Final = publish
        self.ip: Final = ip
        self.tty: Final = tty
        name = self.network
        if not name or not name[0].isalnum() or not set(name) <= NAME_CHARS:
            raise OptionError(f"unsupported network {name!r}: use none, host, bridge or NAME")
        if self.publish and self.network in ("none", "host"):
            raise OptionError(f"-p needs a bridge network, not --network {self.network}")
        if self.ip is not None and self.network in ("none", "host", "bridge"):
            raise OptionError("--ip is supported only on user networks (berth network create)")
        if self.pids_limit is not None and self.pids_limit == 0:
            raise OptionError("--pids-limit must not be 0")
