"""Scope strings and what each registry request needs."""

import pytest

from registry.auth.scope import (
    BASE,
    Access,
    ScopeError,
    format_scope,
    merge,
    parse_scope,
    required_access,
)


def acc(type_: str, name: str, *actions: str) -> Access:
    return Access(type_, name, frozenset(actions))


def test_parse_single_and_multiple_scopes() -> None:
    assert parse_scope("repository:samalba/my-app:pull,push") == [
        acc("repository", "samalba/my-app", "pull", "push")
    ]
    assert parse_scope("repository:a:pull registry:catalog:*") == [
        acc("repository", "a", "pull"),
        acc("registry", "catalog", "*"),
    ]


def test_name_with_a_registry_port_keeps_its_colon() -> None:
    assert parse_scope("repository:localhost:5000/foo/bar:pull") == [
        acc("repository", "localhost:5000/foo/bar", "pull")
    ]


def test_resource_class_is_ignored() -> None:
    assert parse_scope("repository(plugin):vieux/sshfs:pull") == [
        acc("repository", "vieux/sshfs", "pull")
    ]


@pytest.mark.parametrize(
    "bad", ["repository", "repository:name", "Repo:x:pull", "repository::pull", "repository:x:PULL"]
)
def test_malformed_scopes_are_refused(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(bad)


def test_merge_and_format() -> None:
    merged = merge(
        [acc("repository", "a", "pull"), acc("repository", "a", "push"), acc("repository", "b")]
    )
    assert merged == [acc("repository", "a", "pull", "push")]
    assert format_scope(merged) == "repository:a:pull,push"


def test_covers() -> None:
    assert acc("repository", "a", "pull", "push").covers(acc("repository", "a", "push"))
    assert acc("registry", "catalog", "*").covers(acc("registry", "catalog", "*"))
    assert not acc("repository", "a", "pull").covers(acc("repository", "a", "push"))
    assert not acc("repository", "a", "pull").covers(acc("repository", "b", "pull"))


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v2/", BASE),
        ("GET", "/v2", BASE),
        ("GET", "/v2/_catalog", (acc("registry", "catalog", "*"),)),
        ("GET", "/v2/a/b/manifests/latest", (acc("repository", "a/b", "pull"),)),
        ("HEAD", "/v2/a/blobs/sha256:00", (acc("repository", "a", "pull"),)),
        ("GET", "/v2/a/tags/list", (acc("repository", "a", "pull"),)),
        ("GET", "/v2/a/referrers/sha256:00", (acc("repository", "a", "pull"),)),
        ("POST", "/v2/team/app/blobs/uploads/", (acc("repository", "team/app", "pull", "push"),)),
        ("PATCH", "/v2/a/blobs/uploads/123", (acc("repository", "a", "pull", "push"),)),
        ("PUT", "/v2/a/manifests/1", (acc("repository", "a", "pull", "push"),)),
        ("DELETE", "/v2/a/manifests/sha256:00", (acc("repository", "a", "delete"),)),
        ("DELETE", "/v2/a/blobs/sha256:00", (acc("repository", "a", "delete"),)),
        ("DELETE", "/v2/a/blobs/uploads/123", (acc("repository", "a", "pull", "push"),)),
        # a repository named like an endpoint keeps its full name
        ("GET", "/v2/x/blobs/y/manifests/1", (acc("repository", "x/blobs/y", "pull"),)),
        ("GET", "/v2/nonsense", BASE),
        ("GET", "/auth/token", None),
        ("GET", "/v2x", None),
    ],
)
def test_required_access(method: str, path: str, expected: object) -> None:
    assert required_access(method, path) == expected
