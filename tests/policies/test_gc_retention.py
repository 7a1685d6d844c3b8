"""Retention as garbage collection applies it: `berth gc --retention` and the scheduled pass."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from registry import Config, create_app
from registry.config import GCConfig, ImmutableTagRule, RetentionRule
from registry.db import Database
from tests.api.conftest import ClientFactory
from tests.api.oci import Client, push_image
from tests.policies.recount import assert_counters_match
from tests.support.server import berth_executable

CONFIG_YAML = """\
retention:
  - repositories: ["ci/**"]
    keeplast: 1
immutabletags:
  - repositories: ["ci/**"]
    tags: ["v*"]
"""
RULES = (RetentionRule(("ci/**",), keeplast=1),)
IMMUTABLE = (ImmutableTagRule(("ci/**",), ("v*",)),)


async def _push(client: Client, tags: list[str]) -> dict[str, str]:
    return {
        tag: (await push_image(client, "ci/app", layer=f"layer {tag}".encode(), reference=tag))[0]
        for tag in tags
    }


async def _tags(client: Client) -> list[str]:
    return list((await (await client.get("/v2/ci/app/tags/list")).json())["tags"] or [])


async def berth(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        berth_executable(), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.e2e
async def test_berth_gc_retention(
    aiohttp_client: ClientFactory, config: Config, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(config))
    digests = await _push(client, ["v1", "b1", "b2", "b3"])
    config_file = tmp_path / "berth.yaml"
    config_file.write_text(CONFIG_YAML + f"database: {{url: '{config.database.url}'}}\n")
    base = ("gc", "--retention", "--config", str(config_file), "--data-dir", config.datadir)

    status, out, err = await berth(*base, "--dry-run")
    assert (status, err) == (0, "")
    assert out.splitlines()[:2] == [
        f"would delete tag ci/app:b2 ({digests['b2']})",
        f"would delete tag ci/app:b1 ({digests['b1']})",
    ]
    assert await _tags(client) == ["b1", "b2", "b3", "v1"]

    status, out, err = await berth(*base, "--delete-untagged", "--grace", "0s", "--json")
    assert (status, err) == (0, "")
    report = json.loads(out)
    assert [t["tag"] for t in report["retention"]["tags"]] == ["b2", "b1"]
    assert report["removed"]["manifests"] == 2  # the two manifests retention left untagged
    assert await _tags(client) == ["b3", "v1"]  # v1 is immutable: never retention's
    for tag in ("b1", "b2"):
        assert (await client.head(f"/v2/ci/app/manifests/{digests[tag]}")).status == 404

    status, out, _ = await berth(*base)
    assert (status, out.splitlines()[0]) == (0, "retention: no tag to delete")
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"database: {{url: '{config.database.url}'}}\n")
    status, _, err = await berth("gc", "--retention", "--config", str(bare))
    assert (status, err) == (
        1,
        "berth gc: --retention: the config has no retention rules (retention:)\n",
    )


async def test_the_scheduled_pass_applies_retention(
    aiohttp_client: ClientFactory, config: Config, db: Database
) -> None:
    # Pushed first: a collection with no grace would race the pushes themselves.
    digests = await _push(await aiohttp_client(create_app(config)), ["v1", "b1", "b2"])
    scheduled = dataclasses.replace(
        config,
        gc=GCConfig(interval=0.2, grace=0.0, deleteuntagged=True),
        retention=RULES,
        immutabletags=IMMUTABLE,
    )
    client = await aiohttp_client(create_app(scheduled))  # a second replica, with the schedule
    for _ in range(100):  # the first pass runs 0.2 s after start; allow for a loaded machine
        if await _tags(client) == ["b2", "v1"]:
            break
        await asyncio.sleep(0.1)
    assert await _tags(client) == ["b2", "v1"]
    for _ in range(50):  # the collection after it removes the manifest left untagged
        if (await client.head(f"/v2/ci/app/manifests/{digests['b1']}")).status == 404:
            break
        await asyncio.sleep(0.1)
    assert (await client.head(f"/v2/ci/app/manifests/{digests['b1']}")).status == 404
    assert (await client.head(f"/v2/ci/app/manifests/{digests['v1']}")).status == 200
    async with db.read() as conn:
        await assert_counters_match(conn)  # quota usage followed the collection's deletes
