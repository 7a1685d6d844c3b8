"""Small busybox images for the runtime tests, built in Python (tests.support.images)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from tests.support import images as img

BUSYBOX = Path("/bin/busybox")
PASSWD = (
    b"root:x:0:0:root:/root:/bin/sh\n"
    b"app:x:1000:1000:app:/home/app:/bin/sh\n"
    b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = b"root:x:0:\nwheel:x:10:root\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"


@cache
def _applets() -> tuple[str, ...]:
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True)
    return tuple(a for a in out.stdout.split() if a != "busybox")


def busybox_layer() -> img.Layer:
    entries = [img.directory("bin"), img.file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)]
    entries += [img.symlink(f"bin/{a}", "busybox") for a in _applets()]
    return img.build_layer(entries)


def etc_layer() -> img.Layer:
    return img.build_layer([
        img.directory("etc"),
        img.file("etc/passwd", PASSWD),
        img.file("etc/group", GROUP),
        img.directory("root", mode=0o700),
        img.directory("tmp", mode=0o1777),
        img.directory("home"),
        img.directory("home/app", uid=1000, gid=1000),
    ])  # fmt: skip


def app_layer() -> img.Layer:
    return img.build_layer([
        img.directory("srv"),
        img.directory("srv/app", uid=1000, gid=1000),
        img.file("srv/app/hello.txt", b"hello from the image\n"),
    ])  # fmt: skip


BASE_CONFIG: dict[str, Any] = {"Cmd": ["sh"], "Env": ["PATH=/bin"]}
APP_CONFIG: dict[str, Any] = {
    "Env": ["PATH=/usr/bin:/bin", "GREETING=hello", "EMPTY="],
    "WorkingDir": "/srv/app",
    "User": "app",
    "Entrypoint": ["/bin/sh", "-c"],
    "Cmd": ["id; pwd; cat hello.txt; env | sort"],
}


def base_image() -> img.Image:
    return img.build_image([busybox_layer(), etc_layer()], config=BASE_CONFIG)


def app_image() -> img.Image:
    return img.build_image([busybox_layer(), etc_layer(), app_layer()], config=APP_CONFIG)


def many_layers_image(count: int = 60) -> img.Image:
    """busybox, /etc, then `count` one-file layers; the last deletes /layers/5 (a whiteout) and
    replaces /opaque's lower contents (an opaque dir). Too many for absolute lowerdirs."""
    layers = [
        busybox_layer(),
        etc_layer(),
        img.build_layer([img.directory("opaque"), img.file("opaque/old", b"old\n")]),
    ]
    layers += [
        img.build_layer([img.directory("layers"), img.file(f"layers/{i}", f"{i}\n".encode())])
        for i in range(count)
    ]
    layers.append(
        img.build_layer(
            [
                img.whiteout("layers/5"),
                img.directory("opaque"),
                img.opaque("opaque"),
                img.file("opaque/new", b"new\n"),
            ]
        )
    )
    return img.build_image(layers, config=BASE_CONFIG)
