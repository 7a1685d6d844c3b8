"""`berth push` beside `docker push`: the same image (random layers, nothing cached anywhere),
stored locally by each, pushed to a fresh CNCF Distribution.

    python -m bench.push_client [-n 3] [--mib 64]   (root, dockerd running)

The image is built in Python and pushed to a throw-away Distribution; `berth pull` and
`docker pull` store it; then for each run and client an empty Distribution is started, the
image tagged for it and the push timed (every layer uploaded: the target holds nothing).
Prints medians and the ratio berth/docker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import images as img  # noqa: E402  (after the path set-up above)
from tests.support.server import berth_executable, start_distribution  # noqa: E402


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.returncode}\n{proc.stderr}")
    if os.environ.get("BENCH_VERBOSE"):
        print(proc.stdout, end="")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.push_client", description=__doc__)
    parser.add_argument("-n", type=int, default=3, help="pushes per client (default 3)")
    parser.add_argument("--mib", type=int, default=64, help="image size in MiB (default 64)")
    args = parser.parse_args(argv)
    berth = berth_executable()
    with tempfile.TemporaryDirectory(prefix="berth-bench-push-") as tmp:
        source = start_distribution(Path(tmp) / "source")
        root = str(Path(tmp) / "state")
        name = f"{source.host}/bench/push:v1"
        made: list[str] = [name]
        times: dict[str, list[float]] = {"berth": [], "docker": []}
        try:
            quarter = args.mib * 1024 * 1024 // 4
            layers = [img.build_layer([img.file("f", os.urandom(quarter))]) for _ in range(4)]
            img.push_image(source.url, "bench/push", "v1", img.build_image(layers))
            _run([berth, "pull", "--root", root, name])
            _run(["docker", "pull", name])
            for run in range(args.n):
                for client in ("berth", "docker"):  # each its own empty registry
                    target = start_distribution(Path(tmp) / f"target-{run}-{client}")
                    try:
                        remote = f"{target.host}/bench/push:v1"
                        if client == "berth":
                            _run([berth, "tag", "--root", root, name, remote])
                            times["berth"].append(_run([berth, "push", "--root", root, remote]))
                        else:
                            _run(["docker", "tag", name, remote])
                            made.append(remote)
                            times["docker"].append(_run(["docker", "push", remote]))
                    finally:
                        target.stop()
        finally:
            subprocess.run(["docker", "rmi", "-f", *made], capture_output=True, check=False)
            source.stop()
    berth_s, docker_s = (statistics.median(times[c]) for c in ("berth", "docker"))
    print(f"push of {args.mib} MiB in 4 layers to CNCF Distribution, median of {args.n}:")
    print(f"  berth push  {berth_s:6.2f} s  ({args.mib / berth_s:6.1f} MiB/s)")
    print(f"  docker push {docker_s:6.2f} s  ({args.mib / docker_s:6.1f} MiB/s)")
    print(f"  ratio berth/docker: {berth_s / docker_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
