"""Container start-up to exit: `berth run --rm IMAGE true` (image already pulled) beside
`docker run --rm --network none IMAGE true` and `runc run` on a bundle from `berth bundle`;
`run -d` (returning once the container runs under its monitor) beside docker's; `exec` in a
running container beside `docker exec`;
`run -d -p 127.0.0.1:PORT:80 ... httpd` until the port answers HTTP, on a user network each
(dockerd here has no default bridge; subnets from 198.18.0.0/15), beside docker's;
and the CLI's own start-up: `berth --help`, `berth ps`, `berth images` beside docker's.

    python -m bench.run_startup [-n 15] [--only exec]   (root, dockerd running)

Builds a small busybox image in Python, pushes it to a throw-away `berth serve`, pulls it
into a temporary Berth root and into dockerd, then times each command N times (after one
warm-up round; the commands take turns, so that each sees the same load) and prints medians
with the ratio to the docker command beside it. The targets (issue 9): `berth run` at most
0.5x docker; `--help`, `ps` and `images` within 150 ms.
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
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from puller import ImageStore  # noqa: E402  (after the path set-up above)
from tests.runtime.images import base_image  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.server import berth_executable, free_port, start_berth  # noqa: E402
from tests.support.subnets import BERTH_POOL, DOCKER_POOL, free_subnet  # noqa: E402


def _command(argv: Sequence[str]) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        subprocess.run(
            argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return time.perf_counter() - start

    return once


def _runc(bundle: Path) -> Callable[[], float]:
    def once() -> float:
        cid = f"berth-bench-{uuid.uuid4().hex[:8]}"
        return _command(["runc", "run", "-b", str(bundle), cid])()

    return once


def _answering(start: Sequence[str], remove: Sequence[str]) -> Callable[[], float]:
    """`start` (a `run -d -p 127.0.0.1:PORT:80 ... httpd`, PORT filled in) until an HTTP
    request to the port gets an answer; `remove` + the id cleans up, untimed."""

    def once() -> float:
        port = free_port()
        argv = [a.replace("PORT", str(port)) for a in start]
        begun = time.perf_counter()
        cid = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()
        try:
            for _ in range(2000):  # bounded by count; 404 is an answer too
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                        break
                except urllib.error.HTTPError:
                    break
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.005)
            else:
                raise RuntimeError(f"{argv}: port {port} never answered")
            return time.perf_counter() - begun
        finally:
            subprocess.run([*remove, cid], check=True, stdout=subprocess.DEVNULL)

    return once


def _rounds(samplers: Sequence[Callable[[], float]], n: int) -> list[list[float]]:
    """N samples of each, taken in interleaved rounds so that every command sees the same
    machine load; a first round warms caches and is dropped."""
    samples: list[list[float]] = [[] for _ in samplers]
    for round_ in range(n + 1):
        for sampler, taken in zip(samplers, samples, strict=True):
            value = sampler()
            if round_:
                taken.append(value)
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


def _in_process(root: Path, image: str) -> Callable[[], float]:
    """create + start + remove timed inside a fresh interpreter: the executor without the CLI."""
    store = ImageStore(root)
    record = store.find(image)
    assert record is not None
    config = json.dumps(store.image_config(record))
    layers = [str(p) for p in store.layer_dirs(record)]

    def once() -> float:
        out = subprocess.run(
            [sys.executable, "-c", _IN_PROCESS, str(root), image, config, *layers],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        if out[1] != "0":
            raise RuntimeError(f"container exited {out[1]}")
        return float(out[0])

    return once


def _output(argv: Sequence[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


Row = tuple[str, Callable[[], float], int | None]


def _only(table: list[Row], word: str) -> list[Row]:
    """The rows whose name has `word`, with the rows they are compared to."""
    if not word:
        return table
    kept = [i for i, (name, _, _) in enumerate(table) if word in name]
    kept = sorted({*kept, *(b for i in kept if (b := table[i][2]) is not None)})
    index = {old: new for new, old in enumerate(kept)}
    rows: list[Row] = []
    for i in kept:
        name, sampler, base = table[i]
        rows.append((name, sampler, None if base is None else index[base]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--only", default="", help="only the rows naming this (and their base)")
    args = parser.parse_args()
    # An installed berth has its bytecode compiled; an editable one under
    # PYTHONDONTWRITEBYTECODE would compile every module on every run.
    packages = [str(REPO / p) for p in ("berth", "blobstore", "puller", "runtime", "registry")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
    work = Path(tempfile.mkdtemp(prefix="berth-bench-run-"))
    server = start_berth(work / "registry")
    image = f"{server.host}/bench/run-startup:1"
    bundle = work / "bundle"
    net = f"bench-{uuid.uuid4().hex[:8]}"
    docker_web = berth_web = ""
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
        run = [berth, "run", "--rm", "--root", str(root)]
        state = ["--root", str(root)]
        subprocess.run(
            [berth, "network", "create", "--subnet", free_subnet(BERTH_POOL), net, *state],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        subprocess.run(
            ["docker", "network", "create", "--subnet", free_subnet(DOCKER_POOL), net],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        published = ["-d", "-p", "127.0.0.1:PORT:80", "--network", net, image, "httpd", "-f"]
        loop = ["sh", "-c", "while true; do sleep 1; done"]
        docker_web = _output(["docker", "run", "-d", "--network", "none", image, *loop])
        berth_web = _output([berth, "run", "-d", *state, image, *loop])
        table = [
            ("docker run --rm --network none IMAGE true",
             _command(["docker", "run", "--rm", "--network", "none", image, "true"]), None),
            ("runc run (bundle from berth bundle)", _runc(bundle), 0),
            ("berth run --rm IMAGE true", _command([*run, image, "true"]), 0),
            ("berth run --rm --runtime runc IMAGE true",
             _command([*run, "--runtime", "runc", image, "true"]), 0),
            ("berth run --rm --runtime crun IMAGE true",
             _command([*run, "--runtime", "crun", image, "true"]), 0),
            ("berth executor in-process (create+start+remove)", _in_process(root, image), 0),
            ("docker run -d --rm --network none IMAGE true",
             _command(["docker", "run", "-d", "--rm", "--network", "none", image, "true"]), None),
            ("berth run -d --rm IMAGE true (returns at exec)",
             _command([*run, "-d", image, "true"]), 6),
            ("docker run -d -p PORT:80 httpd, until it answers",
             _answering(["docker", "run", *published], ["docker", "rm", "-f"]), None),
            ("berth run -d -p PORT:80 httpd, until it answers",
             _answering([berth, "run", *state, *published], [berth, "rm", "-f", *state]), 8),
            ("docker --help", _command(["docker", "--help"]), None),
            ("berth --help", _command([berth, "--help"]), 10),
            ("docker ps", _command(["docker", "ps"]), None),
            ("berth ps", _command([berth, "ps", *state]), 12),
            ("docker images", _command(["docker", "images"]), None),
            ("berth images", _command([berth, "images", *state]), 14),
            ("docker exec CONTAINER true", _command(["docker", "exec", docker_web, "true"]), None),
            ("berth exec CONTAINER true", _command([berth, "exec", *state, berth_web, "true"]), 16),
        ]  # fmt: skip
        table = _only(table, args.only)
        measured = _rounds([sampler for _, sampler, _ in table], args.n)
        rows = [(name, taken, base) for (name, _, base), taken in zip(table, measured, strict=True)]
    finally:
        if docker_web:
            subprocess.run(["docker", "rm", "-f", docker_web], check=False, capture_output=True)
        if berth_web:
            subprocess.run([berth, "rm", "-f", "--root", str(root), berth_web], check=False,
                           capture_output=True)  # fmt: skip
        if (bundle / "rootfs").is_mount():
            subprocess.run(["umount", str(bundle / "rootfs")], check=False)
        subprocess.run(["docker", "network", "rm", net], check=False, capture_output=True)
        subprocess.run(
            [berth_executable(), "network", "rm", net, "--root", str(work / "root")],
            check=False, capture_output=True,
        )  # fmt: skip
        subprocess.run(["docker", "rmi", "-f", image], check=False, stdout=subprocess.DEVNULL)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(name) for name, _, _ in rows)
    print(f"{'command':<{width}}  {'median s':>9}  {'min s':>7}  {'vs docker':>9}   (n={args.n})")
    for name, samples, baseline in rows:
        median = statistics.median(samples)
        ratio = "" if baseline is None else f"{median / statistics.median(rows[baseline][1]):8.2f}x"
        print(f"{name:<{width}}  {median:9.3f}  {min(samples):7.3f}  {ratio:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
