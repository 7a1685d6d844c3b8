"""Container start-up to exit: `berth run --rm IMAGE true` (image already pulled) beside
`docker run --rm --network none IMAGE true` and `runc run` on a bundle from `berth bundle`.

    python -m bench.run_startup [-n 15]        (root, dockerd running)

Builds a small busybox image in Python, pushes it to a throw-away `berth serve`, pulls it
into a temporary Berth root and into dockerd, then times each command N times (after one
warm-up) and prints medians with ratios to docker. `berth ps` is timed too: it is the CLI's
own start-up cost (Python plus imports), which every `berth run` pays before any container work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from puller import ImageStore  # noqa: E402  (after the path set-up above)
from tests.runtime.images import base_image  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.server import berth_executable, start_berth  # noqa: E402


def _time(argv: Sequence[str], n: int) -> list[float]:
    samples = []
    for i in range(n + 1):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:  # the first run warms caches
            samples.append(time.perf_counter() - start)
    return samples


def _runc(bundle: Path, n: int) -> list[float]:
    samples = []
    for i in range(n + 1):
        cid = f"berth-bench-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        subprocess.run(
            ["runc", "run", "-b", str(bundle), cid],
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        if i:
            samples.append(time.perf_counter() - start)
    return samples


_IN_PROCESS = """
import json, sys, time
from pathlib import Path
from runtime import ContainerStore, RunOptions, create, remove, start
root, image, config, layers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
t = time.perf_counter()
store = ContainerStore(Path(root))
c = create(store, image, config, [Path(p) for p in layers], RunOptions(command=("true",)))
code = start(c)
remove(store, c)
print(time.perf_counter() - t, code)
"""


def _in_process(root: Path, image: str, n: int) -> list[float]:
    """create + start + remove timed inside a fresh interpreter: the executor without the CLI."""
    store = ImageStore(root)
    record = store.find(image)
    assert record is not None
    config = json.dumps(asyncio.run(store.image_config(record)))
    layers = [str(p) for p in store.layer_dirs(record)]
    samples = []
    for i in range(n + 1):
        out = subprocess.run(
            [sys.executable, "-c", _IN_PROCESS, str(root), image, config, *layers],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        if out[1] != "0":
            raise RuntimeError(f"container exited {out[1]}")
        if i:
            samples.append(float(out[0]))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-run-"))
    server = start_berth(work / "registry")
    image = f"{server.host}/bench/run-startup:1"
    bundle = work / "bundle"
    try:
        push_image(server.url, "bench/run-startup", "1", base_image())
        root = work / "root"
        asyncio.run(ImageStore(root).pull(image, plain_http=True))
        subprocess.run(["docker", "pull", "-q", image], check=True, stdout=subprocess.DEVNULL)
        berth = berth_executable()
        subprocess.run(
            [berth, "bundle", "--root", str(root), image, str(bundle), "true"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rows = [
            ("docker run --rm --network none IMAGE true",
             _time(["docker", "run", "--rm", "--network", "none", image, "true"], args.n)),
            ("runc run (bundle from berth bundle)", _runc(bundle, args.n)),
            ("berth run --rm IMAGE true", _time([berth, "run", "--rm", "--root", str(root), image,
                                                 "true"], args.n)),
            ("berth run --rm --runtime runc IMAGE true",
             _time([berth, "run", "--rm", "--runtime", "runc", "--root", str(root), image,
                    "true"], args.n)),
            ("berth run --rm --runtime crun IMAGE true",
             _time([berth, "run", "--rm", "--runtime", "crun", "--root", str(root), image,
                    "true"], args.n)),
            ("berth ps (CLI start-up only)", _time([berth, "ps", "--root", str(root)], args.n)),
            ("berth executor in-process (create+start+remove)", _in_process(root, image, args.n)),
        ]  # fmt: skip
    finally:
        if (bundle / "rootfs").is_mount():
            subprocess.run(["umount", str(bundle / "rootfs")], check=False)
        subprocess.run(["docker", "rmi", "-f", image], check=False, stdout=subprocess.DEVNULL)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    docker = statistics.median(rows[0][1])
    width = max(len(name) for name, _ in rows)
    print(f"{'command':<{width}}  {'median s':>9}  {'min s':>7}  {'vs docker':>9}   (n={args.n})")
    for name, samples in rows:
        median = statistics.median(samples)
        print(f"{name:<{width}}  {median:9.3f}  {min(samples):7.3f}  {median / docker:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
