"""Which upstream serves a repository name, and as what name there."""

from __future__ import annotations

import aiohttp

from registry.config import ProxyConfig, UpstreamConfig
from registry.proxy.upstreams import Upstreams


async def test_prefixes_mirror_and_docker_hub_single_names() -> None:
    config = ProxyConfig(
        remoteurl="https://registry-1.docker.io",
        upstreams=(
            UpstreamConfig(prefix="dist", remoteurl="http://127.0.0.1:5002"),
            UpstreamConfig(prefix="ghcr/team", remoteurl="https://ghcr.io", ttl=60.0),
        ),
    )
    async with aiohttp.ClientSession() as session:
        upstreams = Upstreams(config, session)
        dist = upstreams.route("dist/app")
        assert dist is not None
        assert (dist.upstream.url, dist.remote, dist.upstream.ttl) == (
            "http://127.0.0.1:5002",
            "app",
            300.0,
        )
        nested = upstreams.route("ghcr/team/tools/cli")
        assert nested is not None
        assert (nested.upstream.url, nested.remote) == ("https://ghcr.io", "tools/cli")
        # Not under a prefix (a prefix is whole path components): the mirror's.
        for name, remote in [
            ("busybox", "library/busybox"),
            ("library/busybox", "library/busybox"),
            ("distro/app", "distro/app"),
            ("ghcr/other", "ghcr/other"),
        ]:
            route = upstreams.route(name)
            assert route is not None
            assert (route.upstream.url, route.remote) == ("https://registry-1.docker.io", remote)


async def test_without_a_mirror_other_names_are_local() -> None:
    config = ProxyConfig(upstreams=(UpstreamConfig(prefix="dist", remoteurl="http://h:1"),))
    async with aiohttp.ClientSession() as session:
        upstreams = Upstreams(config, session)
        assert upstreams.route("dist") is None
        assert upstreams.route("distx/app") is None
        assert upstreams.route("app") is None
        route = upstreams.route("dist/a/b")
        assert route is not None
        assert route.remote == "a/b"
