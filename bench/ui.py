"""`python -m bench.ui`: server-side render times of the web UI pages with 10,000 repositories
and one repository of 1,000 tags (rows written straight into a fresh database).

Each page is requested `--rounds` times in-process over real HTTP; the times are the ones
the UI's own middleware reports in `Server-Timing` (handler, queries and template, not the
network): wall time, and the CPU time of the serving thread (on SQLite the queries run in
that thread too; on a shared machine, wall time includes waiting for a CPU). Run as the open
registry and as a logged-in user whose access rules filter the list (the policy is applied
to names in Python). CNCF Distribution has no UI, so there is no ratio here: the budget is
100 ms a page.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt
from aiohttp.test_utils import TestClient, TestServer

from registry import Config, create_app
from registry.config import DatabaseConfig, HTTPConfig
from registry.db import Database, upgrade
from registry.ui.usage import refresh_usage
from tests.api.oci import push_image
from tests.support.seed import BIG_REPOSITORY, seed

BUDGET_MS = 100.0
_TIMING = re.compile(r"app;dur=([\d.]+), cpu;dur=([\d.]+)")


def _pages(digest: str) -> dict[str, str]:
    return {
        "repositories first page": "/ui/",
        "repositories after ns5/app5": "/ui/?after=ns5/app5",
        "repositories before ns5/app5": "/ui/?before=ns5/app5",
        "search": "/ui/?q=app12",
        "repository 1000 tags p1": f"/ui/r/{BIG_REPOSITORY}",
        "repository 1000 tags p10": f"/ui/r/{BIG_REPOSITORY}?page=10",
        "repository 2 tags": "/ui/r/ns11/app11",
        "manifest": f"/ui/r/bench/app/-/manifests/{digest}",
        "storage": "/ui/storage",
    }


async def _measure(
    client: TestClient[Any, Any], path: str, rounds: int
) -> list[tuple[float, float]]:
    times = []
    for _ in range(rounds):
        resp = await client.get(path)
        body = await resp.text()
        assert resp.status == 200, (path, resp.status, body[:500])
        match = _TIMING.fullmatch(resp.headers["Server-Timing"])
        assert match is not None
        times.append((float(match.group(1)), float(match.group(2))))
    return times


async def _run(
    data: Path, rounds: int, repositories: int, tags: int, database_url: str
) -> dict[str, Any]:
    htpasswd = data / "htpasswd"
    htpasswd.write_text(f"dev:{bcrypt.hashpw(b'dev-pw', bcrypt.gensalt(4)).decode()}\n")
    database = DatabaseConfig(url=database_url)
    open_config = Config(datadir=str(data / "db"), database=database)
    upgrade(open_config.database_url)
    started = time.perf_counter()
    await seed(open_config.database_url, repositories, tags)
    seeded = time.perf_counter() - started
    auth = {
        "scheme": "basic",
        "htpasswd": {"realm": "bench", "path": str(htpasswd)},
        "access": [
            {"users": ["dev"], "repositories": ["ns1*/**", "big/**", "bench/**"], "actions": ["*"]}
        ],
    }
    await refresh_usage(Database(open_config.database_url))  # what the leader does every 5 min
    results: dict[str, Any] = {"seed_seconds": seeded}
    for mode, config in (
        ("open", open_config),
        (
            "filtered",
            Config(
                datadir=str(data / "db"),
                database=database,
                auth=auth,
                http=HTTPConfig(secret="b"),
            ),
        ),
    ):
        async with TestClient(TestServer(create_app(config))) as client:
            if mode == "open":
                digest, _ = await push_image(client, "bench/app", reference="1")
                results["digest"] = digest
            else:
                form = await (await client.get("/ui/login")).text()
                csrf = re.search(r'name="csrf" value="([^"]+)"', form)
                assert csrf is not None
                login = await client.post(
                    "/ui/login",
                    data={"csrf": csrf.group(1), "username": "dev", "password": "dev-pw"},
                )
                assert login.status == 200, await login.text()
            for name, path in _pages(results["digest"]).items():
                await _measure(client, path, 2)  # warm caches and templates
                results[f"{mode}: {name}"] = await _measure(client, path, rounds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=1_000)
    parser.add_argument(
        "--database-url", default="", help="an empty database (default: SQLite in a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-ui-") as tmp:
        results = asyncio.run(
            _run(Path(tmp), args.rounds, args.repositories, args.tags, args.database_url)
        )
    print(
        f"UI render times (server-side, ms) on {args.database_url.split(':')[0] or 'sqlite'} "
        f"with {args.repositories:,} repositories and "
        f"{args.tags:,} tags in one; {args.rounds} rounds; seeded in "
        f"{results.pop('seed_seconds'):.1f} s"
    )
    results.pop("digest")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'page':40} {'wall median':>11} {'p95':>7} {'cpu median':>11} {'p95':>7}")
    worst = 0.0
    for name, samples in results.items():
        wall = sorted(w for w, _ in samples)
        cpu = sorted(c for _, c in samples)
        p95 = min(len(wall) - 1, int(len(wall) * 0.95))
        worst = max(worst, cpu[p95])
        print(
            f"{name:40} {statistics.median(wall):11.1f} {wall[p95]:7.1f} "
            f"{statistics.median(cpu):11.1f} {cpu[p95]:7.1f}"
        )
    verdict = "within" if worst < BUDGET_MS else "OVER"
    print(f"worst CPU p95 {worst:.1f} ms: {verdict} the {BUDGET_MS:.0f} ms budget")


if __name__ == "__main__":
    main()
