"""The `proxy` section: Distribution's mirror keys, Berth's upstreams, each value checked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registry import ConfigError, load_config
from registry.config import UpstreamConfig
from tests.support.server import berth_executable


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return load_config(path, environ=environ or {})


def test_mirror_and_upstreams(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "proxy:\n"
        "  remoteurl: https://registry-1.docker.io\n"
        "  username: u\n"
        "  password: p\n"
        "  ttl: 10m\n"
        "  upstreams:\n"
        "    - {prefix: dist, remoteurl: 'http://127.0.0.1:5002', ttl: 1m}\n"
        "    - {prefix: ghcr/team, remoteurl: 'https://ghcr.io'}\n"
    )
    config = load_config(path, environ={})
    assert config.proxy.remoteurl == "https://registry-1.docker.io"
    assert config.proxy.ttl == 600.0
    assert config.proxy.upstreams == (
        UpstreamConfig(prefix="dist", remoteurl="http://127.0.0.1:5002", ttl=60.0),
        UpstreamConfig(prefix="ghcr/team", remoteurl="https://ghcr.io", ttl=300.0),
    )
    assert config.proxy.enabled


def test_upstreams_from_the_environment() -> None:
    environ = {
        "BERTH_PROXY_UPSTREAMS": "[{prefix: q, remoteurl: 'http://127.0.0.1:1', ttl: 5s}]",
        "BERTH_PROXY_TTL": "2h",
    }
    config = load_config(environ=environ)
    assert config.proxy.upstreams == (
        UpstreamConfig(prefix="q", remoteurl="http://127.0.0.1:1", ttl=5.0),
    )
    assert config.proxy.ttl == 7200.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxy: {remoteurl: 'ftp://host'}\n", "proxy.remoteurl: 'ftp://host' is not a registry"),
        ("proxy: {remoteurl: 'https://h/v2/x'}\n", "proxy.remoteurl: 'https://h/v2/x' is not"),
        ("proxy: {ttl: soon}\n", "proxy.ttl: 'soon' is not a duration"),
        ("proxy: {username: u}\n", "proxy.username: set without remoteurl"),
        ("proxy: {remotelurl: 'http://h'}\n", "proxy.remotelurl: unknown configuration key"),
        (
            "proxy: {upstreams: [{prefix: a, remoteurl: 'http://h', prefx: b}]}\n",
            "proxy.upstreams[0].prefx: unknown configuration key",
        ),
        (
            "proxy: {upstreams: [{remoteurl: 'http://h'}]}\n",
            "proxy.upstreams[0].prefix: required",
        ),
        (
            "proxy: {upstreams: [{prefix: Bad/Name, remoteurl: 'http://h'}]}\n",
            "proxy.upstreams[0].prefix: 'Bad/Name' is not a repository name prefix",
        ),
        (
            "proxy: {upstreams: [{prefix: a, remoteurl: 'http://h', ttl: -1}]}\n",
            "proxy.upstreams[0].ttl: -1 must not be negative",
        ),
        (
            "proxy: {upstreams: [{prefix: a, remoteurl: 'http://h'}, "
            "{prefix: a/b, remoteurl: 'http://i'}]}\n",
            "proxy.upstreams: prefixes 'a' and 'a/b' overlap",
        ),
        (
            "proxy: {upstreams: [{prefix: a, remoteurl: 'http://h'}, "
            "{prefix: a, remoteurl: 'http://i'}]}\n",
            "proxy.upstreams: prefixes 'a' and 'a' overlap",
        ),
        ("proxy: {upstreams: {prefix: a}}\n", "proxy.upstreams: {'prefix': 'a'} is not a list"),
        (
            "proxy: {dockerconfig: /nonexistent/config.json}\n",
            "proxy.dockerconfig: cannot read /nonexistent/config.json",
        ),
    ],
)
def test_bad_proxy_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert message in str(caught.value)


def test_neighbouring_prefixes_do_not_overlap(tmp_path: Path) -> None:
    _load(
        tmp_path,
        "proxy: {upstreams: [{prefix: a, remoteurl: 'http://h'}, "
        "{prefix: ab, remoteurl: 'http://i'}]}\n",
    )


def test_serve_refuses_a_bad_proxy_section_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("proxy:\n  upstreams:\n    - {prefix: x, remoteurl: 'http://h', tll: 1m}\n")
    result = subprocess.run(
        [berth_executable(), "serve", "--config", str(config), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "berth serve: proxy.upstreams[0].tll: unknown configuration key"
    )
