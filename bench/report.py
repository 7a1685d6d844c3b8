"""Medians, Berth/Distribution ratios, the issue's targets, and the printed table."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None  # on the Berth/Distribution ratio; None: no ratio target

    def met(self, ratio: float) -> bool | None:
        if self.target is None:
            return None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}x"


METRICS = [
    Metric("upload_put_mbps", "256 MiB upload, one PUT", "MiB/s", True, 2.0),
    Metric("upload_chunked_mbps", "256 MiB upload, 8 MiB PATCHes", "MiB/s", True, 2.0),
    Metric("upload_cpu_s_per_gib", "server CPU per GiB uploaded", "s", False, 0.5),
    Metric("get_mbps", "256 MiB blob GET", "MiB/s", True, 1.5),
    Metric("get_concurrent_mbps", "8 concurrent 64 MiB GETs", "MiB/s", True, 1.5),
    Metric("small_uploads_per_s", "4 KiB uploads, concurrency 16", "blobs/s", True, 3.0),
    Metric("manifest_get_rps", "manifest GET by tag, 32 conns", "req/s", True, 5.0),
    Metric("manifest_get_p99_ms", "manifest GET p99", "ms", False, 0.2),
    Metric("blob_head_rps", "blob HEAD, 32 conns", "req/s", True, 5.0),
    Metric("blob_head_p99_ms", "blob HEAD p99", "ms", False, 0.2),
    Metric("manifest_get_cpu_us", "server CPU per manifest GET", "us", False, None),
    Metric("blob_head_cpu_us", "server CPU per blob HEAD", "us", False, None),
    Metric("tag_list_cpu_us", "server CPU per tag list", "us", False, None),
    Metric("head_per_get_cpu", "blob HEAD / manifest GET CPU, paired", "x", False, None),
    Metric("tag_list_rps", "tag list (500 tags), 32 conns", "req/s", True, 3.0),
    Metric("tag_list_p99_ms", "tag list p99", "ms", False, None),
    Metric("catalog_ms", "catalog of 200 repos, latency", "ms", False, 0.5),
    Metric("docker_push_s", "docker push 16 MiB image", "s", False, 1.0),
    Metric("docker_pull_s", "docker pull 16 MiB image", "s", False, 1.0),
    Metric("peak_rss_mib", "peak RSS, all processes summed", "MiB", False, None),
    Metric("peak_pss_mib", "peak PSS (shared pages once)", "MiB", False, None),
]
BERTH_RSS_LIMIT_MIB = 200.0


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for run in runs for k in run}
    return {k: statistics.median(run[k] for run in runs if k in run) for k in sorted(keys)}


def summarize(
    results: dict[str, list[dict[str, float]]], metrics: list[Metric] = METRICS
) -> list[dict[str, Any]]:
    berth, dist = medians(results.get("berth", [])), medians(results.get("distribution", []))
    rows = []
    for m in metrics:
        b, d = berth.get(m.key), dist.get(m.key)
        ratio = b / d if b is not None and d else None
        met = m.met(ratio) if ratio is not None else None
        target = m.target_text
        if m.key == "head_per_get_cpu":  # within each server: a blob HEAD should cost less
            target = "Berth < 1x"
            met = b < 1.0 if b is not None else None
        if m.key == "peak_pss_mib":  # all processes together: pages shared by fork counted once
            target = f"Berth < {BERTH_RSS_LIMIT_MIB:g} MiB"
            met = b < BERTH_RSS_LIMIT_MIB if b is not None else None
        rows.append(
            {
                "metric": m.key,
                "label": m.label,
                "unit": m.unit,
                "berth": b,
                "distribution": d,
                "ratio": ratio,
                "target": target,
                "met": met,
            }
        )
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value < 1 else f"{value:.1f}"


def table(rows: list[dict[str, Any]], columns: tuple[str, str] = ("Berth", "Distribution")) -> str:
    """`columns` names the two sides (default Berth and Distribution)."""
    first, second = columns
    header = ("workload", "unit", first, second, f"{first}/{second}", "target", "met")
    lines = [header]
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(
            (
                r["label"],
                r["unit"],
                _fmt(r["berth"]),
                _fmt(r["distribution"]),
                ratio,
                r["target"],
                met,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append(
            "  ".join(
                str(c).ljust(w) if i < 2 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_json(
    directory: Path,
    meta: dict[str, Any],
    results: dict[str, list[dict[str, float]]],
    rows: list[dict[str, Any]],
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"meta": meta, "runs": results, "summary": rows}, indent=2))
    return path
