"""Platforms (`os/arch[/variant]`) and choosing one manifest out of an index."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Final

from puller.errors import InvalidPlatform

_MACHINE_TO_ARCH: Final = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}
# containerd's normalisation: arm64 means v8 unless said otherwise.
_DEFAULT_VARIANT: Final = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def matches(self, other: Platform) -> bool:
        """True when a manifest for `other` runs as this platform wants (variants normalized)."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        default = _DEFAULT_VARIANT.get(self.architecture)
        mine = self.variant or default
        theirs = other.variant or default
        return mine is None or theirs is None or mine == theirs


def parse_platform(value: str) -> Platform:
    """`linux/arm64/v8` -> Platform; raises InvalidPlatform."""
    parts = value.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidPlatform(value)
    if parts[1] in _MACHINE_TO_ARCH and len(parts) == 2:
        arch, variant = _MACHINE_TO_ARCH[parts[1]]
        return Platform(parts[0], arch, variant)
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def host_platform() -> Platform:
    """The platform of this machine, as an index names it."""
    machine = _platform.machine().lower()
    arch, variant = _MACHINE_TO_ARCH.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def platform_of(descriptor_platform: object) -> Platform | None:
    """The Platform of an index entry's `platform` object, or None when it has none."""
    if not isinstance(descriptor_platform, dict):
        return None
    os_name = descriptor_platform.get("os")
    arch = descriptor_platform.get("architecture")
    variant = descriptor_platform.get("variant")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)
