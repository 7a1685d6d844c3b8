"""/etc/hostname, /etc/hosts and /etc/resolv.conf: written per container and bind-mounted
over the image's, as docker does, so the image stays untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOOPBACK_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def write_etc_files(directory: Path, hostname: str, network: str) -> list[dict[str, Any]]:
    """Write the three files under `directory`; returns their config.json mount entries."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = _read("/etc/hosts") if network == "host" else LOOPBACK_HOSTS
    contents = {
        "hostname": f"{hostname}\n",
        "hosts": hosts,
        "resolv.conf": _read("/etc/resolv.conf"),
    }
    mounts = []
    for name, text in contents.items():
        (directory / name).write_text(text)
        mounts.append(
            {
                "destination": f"/etc/{name}",
                "type": "bind",
                "source": str(directory / name),
                "options": ["rbind", "rprivate"],
            }
        )
    return mounts
