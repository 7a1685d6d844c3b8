"""`berth quota`: usage against limits, as a table and as JSON, from the real command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from registry import Config
from registry.config import QuotaRule
from tests.api.oci import push_blob, push_image
from tests.policies.conftest import PolicyClient
from tests.support.server import berth_executable

CONFIG_YAML = """\
quotas:
  - repositories: ["team/**"]
    scope: namespace
    limit: 10KiB
  - repositories: ["team/app"]
    limit: 1KiB
"""
pytestmark = pytest.mark.e2e  # runs the real `berth` command, a process per call

RULES = (
    QuotaRule(("team/**",), 10 * 1024, scope="namespace"),
    QuotaRule(("team/app",), 1024),
)


async def berth(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        berth_executable(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_berth_quota_shows_usage_against_limits(
    policy_client: PolicyClient, config: Config, tmp_path: Path
) -> None:
    config_file = tmp_path / "berth.yaml"
    config_file.write_text(CONFIG_YAML + f"database: {{url: '{config.database.url}'}}\n")
    client = await policy_client(quotas=RULES)
    shared = b"s" * 300
    _, manifest = await push_image(client, "team/app", layer=shared)
    await push_image(client, "team/tool", layer=shared)  # same image: counts once in `team`
    await push_blob(client, "team/tool", b"t" * 2000)
    await push_blob(client, "elsewhere", b"e" * 5000)  # no rule: not listed
    image = len(shared) + len(b'{"architecture":"amd64","os":"linux"}') + len(manifest)

    args = ("quota", "--config", str(config_file), "--data-dir", config.datadir)
    status, out, err = await berth(*args, "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "scopes": [
            {"scope": "namespace", "name": "team", "limit": 10240, "usage": image + 2000},
            {"scope": "repository", "name": "team/app", "limit": 1024, "usage": image},
        ]
    }

    status, out, err = await berth(*args)
    assert (status, err) == (0, "")
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["SCOPE", "NAME", "USED", "LIMIT", "USE%"]
    used, share = f"{(image + 2000) / 1024:.1f}", f"{100 * (image + 2000) / 10240:.1f}%"
    assert lines[1] == ["namespace", "team", used, "KiB", "10.0", "KiB", share]
    assert lines[2][:2] == ["repository", "team/app"]
    assert len(lines) == 3


async def test_berth_quota_without_rules_or_database(tmp_path: Path) -> None:
    status, out, _ = await berth("quota", "--data-dir", str(tmp_path))
    assert (status, out) == (0, "no quotas configured (quotas:)\n")
    config_file = tmp_path / "berth.yaml"
    config_file.write_text(CONFIG_YAML)
    args = ("quota", "--config", str(config_file), "--data-dir", str(tmp_path))
    status, out, err = await berth(*args)
    assert status == 1
    assert err.startswith("berth quota: cannot read sqlite+aiosqlite:///")
    assert err.rstrip().endswith("(run berth migrate)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("quotas:\n  - repositories: [x]\n    limit: lots\n")
    status, _, err = await berth("quota", "--config", str(bad))
    assert status == 2  # a bad config
    assert err == (
        "berth quota: quotas[0].limit: 'lots' is not a size such as 10GiB, 500MB or 1048576\n"
    )
