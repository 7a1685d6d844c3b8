"""The quotas, immutabletags and retention sections: parsing, sizes, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import ConfigError, load_config
from registry.config import ImmutableTagRule, QuotaRule, RetentionRule
from registry.immutable_tags import ImmutableTags
from registry.quota import Quotas, Scope


def _load(tmp_path: Path, text: str) -> object:
    file = tmp_path / "config.yml"
    file.write_text(text)
    return load_config(file, environ={})


def test_rules_are_read(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text(
        "quotas:\n"
        "  - {repositories: team-a/**, limit: 10GiB, scope: namespace}\n"
        "  - {repositories: [ci/*, tools], limit: 1048576}\n"
        "immutabletags:\n"
        "  - {repositories: ['prod/**'], tags: [v*, stable]}\n"
        "retention:\n"
        "  - {repositories: ['**'], keeplast: 5, keeptags: latest, olderthan: 30d}\n"
    )
    config = load_config(file, environ={})
    assert config.quotas == (
        QuotaRule(("team-a/**",), 10 * 1024**3, scope="namespace"),
        QuotaRule(("ci/*", "tools"), 1048576),
    )
    assert config.immutabletags == (ImmutableTagRule(("prod/**",), ("v*", "stable")),)
    assert config.retention == (RetentionRule(("**",), 5, ("latest",), 30 * 86400.0),)


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("512", 512),
        ("512MiB", 512 * 1024**2),
        ("1.5G", int(1.5 * 1024**3)),
        ("2Gi", 2 * 1024**3),
        ("2GB", 2 * 1000**3),
        ("500mb", 500 * 1000**2),
        ("1 TiB", 1024**4),
    ],
)
def test_limits_take_units(tmp_path: Path, written: str, size: int) -> None:
    file = tmp_path / "config.yml"
    file.write_text(f"quotas: [{{repositories: x, limit: '{written}'}}]\n")
    assert load_config(file, environ={}).quotas[0].limit == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quotas: [{repositories: x}]", "quotas[0].limit: give a size above 0, such as 10GiB"),
        ("quotas: [{limit: 1}]", "quotas[0].repositories: name at least one repository glob"),
        (
            "quotas: [{repositories: x, limit: 5, scope: org}]",
            "quotas[0].scope: 'org' is not one of repository, namespace",
        ),
        (
            "quotas: [{repositories: x, limit: 5XB}]",
            "quotas[0].limit: '5XB' is not a size such as 10GiB, 500MB or 1048576",
        ),
        (
            "quotas: [{repositories: x, limit: 5, max: 3}]",
            "quotas[0].max: unknown configuration key",
        ),
        ("quotas: {repositories: x}", "quotas: {'repositories': 'x'} is not a list"),
        (
            "immutabletags: [{repositories: [x]}]",
            "immutabletags[0].tags: name at least one tag pattern",
        ),
        (
            "immutabletags: [{repositories: [x], tags: [1]}]",
            "immutabletags[0].tags: [1] is not a list of strings",
        ),
        (
            "retention: [{repositories: [x], keeptags: [v*]}]",
            "retention[0].keeplast: set it or olderthan; with neither, every tag would go",
        ),
        (
            "retention: [{repositories: [x], olderthan: soon}]",
            "retention[0].olderthan: 'soon' is not a duration such as 30s or 168h",
        ),
    ],
)
def test_bad_rules_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text + "\n")
    assert str(caught.value) == message


def test_quota_scopes_and_smallest_limit() -> None:
    quotas = Quotas(
        (
            QuotaRule(("**",), 100, scope="namespace"),
            QuotaRule(("team/**",), 50, scope="namespace"),
            QuotaRule(("team/app",), 10),
        )
    )
    assert quotas.limits("team/app") == {
        Scope("namespace", "team"): 50,
        Scope("repository", "team/app"): 10,
    }
    assert quotas.limits("alpine") == {Scope("namespace", "alpine"): 100}
    assert Quotas().limits("team/app") == {}


def test_immutable_patterns_use_the_access_globs() -> None:
    rules = ImmutableTags((ImmutableTagRule(("prod/*",), ("v?.*", "stable")),))
    assert rules.protects("prod/app", "v1.2")
    assert rules.protects("prod/app", "stable")
    assert not rules.protects("prod/app", "v10.2")  # ? is one character
    assert not rules.protects("prod/app/sub", "stable")  # * stays inside one component
    assert not rules.protects("dev/app", "stable")
