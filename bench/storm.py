"""Request storms: one URL asked over and over on keep-alive connections, by ApacheBench.

The storm's generator shares the machine's two cores with the server it measures, so its own
cost per request is taken from the server. A Python generator (aiohttp, two processes) spent
about 100 µs of CPU a request: against a server answering in 200 µs a third of the machine
went to the generator, and its ceiling, 10,000-16,000 requests/s against a trivial server,
was near the faster server's rate. `ab` (apache2-utils, installed by scripts/test-env.sh)
spends about 13 µs a request in one process. It speaks HTTP/1.0 with keep-alive, which both
servers answer as they answer HTTP/1.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_AB_TIMEOUT_S = 30  # per response


class StormFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class StormResult:
    requests: int
    errors: int  # failed requests and answers other than 2xx
    seconds: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def storm(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    connections: int = 32,
    seconds: float = 10.0,
) -> StormResult:
    """`connections` keep-alive connections sending `method url` back to back for `seconds`
    (whole seconds, at least one: ab's limit)."""
    if method not in ("GET", "HEAD"):
        raise ValueError(f"ab storms GET or HEAD, not {method}")
    ab = shutil.which("ab")
    if ab is None:
        raise StormFailed("ab not found: install apache2-utils (make test-env does)")
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        percentiles = Path(tmp) / "percentiles.csv"
        argv = [ab, "-q", "-k", "-c", str(connections), "-s", str(_AB_TIMEOUT_S)]
        # -t implies -n 50000; the -n after it lifts that cap, so time alone ends the storm.
        argv += ["-t", str(max(1, round(seconds))), "-n", "100000000", "-e", str(percentiles)]
        if method == "HEAD":
            argv.append("-i")
        for name, value in (headers or {}).items():
            argv += ["-H", f"{name}: {value}"]
        done = subprocess.run([*argv, url], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StormFailed(f"ab exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return _parse(done.stdout, percentiles.read_text())


def _parse(report: str, percentiles: str) -> StormResult:
    def number(label: str, default: float | None = None) -> float:
        found = re.search(rf"^{re.escape(label)}:\s+([\d.]+)", report, re.MULTILINE)
        if found is None:
            if default is None:
                raise StormFailed(f"ab's report has no {label!r}:\n{report[-1000:]}")
            return default
        return float(found.group(1))

    requests = int(number("Complete requests"))
    errors = int(number("Failed requests") + number("Non-2xx responses", 0))
    seconds = number("Time taken for tests")
    p99 = next(
        (float(ms) for pct, ms in _rows(percentiles) if pct == "99"),
        float("nan"),
    )
    return StormResult(requests, errors, seconds, p99)


def _rows(csv: str) -> list[tuple[str, str]]:
    rows = []
    for line in csv.splitlines()[1:]:  # a header, then "percentage,milliseconds"
        pct, _, ms = line.partition(",")
        rows.append((pct.strip(), ms.strip()))
    return rows
