"""`docker push` and `docker pull` wall time of a 16 MiB image, against one server."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

LOCAL_PREFIX = "berth-bench"


def _docker(*args: str) -> str:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def push_pull(host: str, size: int = 16 << 20) -> dict[str, float]:
    """Build a fresh image (one random `size` layer, so nothing is cached anywhere), time its
    push, delete it locally, time the pull, and remove what was made."""
    tag = uuid.uuid4().hex[:12]
    local = f"{LOCAL_PREFIX}/image:{tag}"
    remote = f"{host}/bench/docker:{tag}"
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as ctx:
        Path(ctx, "payload.bin").write_bytes(os.urandom(size))
        Path(ctx, "Dockerfile").write_text("FROM scratch\nCOPY payload.bin /payload.bin\n")
        _docker("build", "-q", "-t", local, ctx)
    try:
        _docker("tag", local, remote)
        t0 = time.perf_counter()
        _docker("push", remote)
        push_s = time.perf_counter() - t0
        _docker("rmi", local, remote)
        t0 = time.perf_counter()
        _docker("pull", remote)
        pull_s = time.perf_counter() - t0
    finally:
        subprocess.run(["docker", "rmi", "-f", local, remote], capture_output=True, check=False)
    return {"docker_push_s": push_s, "docker_pull_s": pull_s}
