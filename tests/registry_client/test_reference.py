"""Docker reference parsing and normalization (registry_client.reference)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobstore import Digest
from puller import InvalidReference, default_plain_http, parse_reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "canonical"),
    [
        (
            "busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
        ),
        (
            "busybox:1.36",
            "docker.io",
            "library/busybox",
            "1.36",
            None,
            "docker.io/library/busybox:1.36",
        ),
        ("user/app", "docker.io", "user/app", "latest", None, "docker.io/user/app:latest"),
        (
            "docker.io/busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
        ),
        (
            "index.docker.io/library/busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
        ),
        ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest"),
        (
            "localhost:5000/a/b/c:v1",
            "localhost:5000",
            "a/b/c",
            "v1",
            None,
            "localhost:5000/a/b/c:v1",
        ),
        ("127.0.0.1:5000/app@" + D, "127.0.0.1:5000", "app", None, D, "127.0.0.1:5000/app@" + D),
        ("example.com/app:v2@" + D, "example.com", "app", "v2", D, "example.com/app:v2@" + D),
        ("Registry/app", "Registry", "app", "latest", None, "Registry/app:latest"),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None, "[::1]:5000/app:latest"),
        (
            "a.b-c/x__y.z-w:Tag_1.0-rc",
            "a.b-c",
            "x__y.z-w",
            "Tag_1.0-rc",
            None,
            "a.b-c/x__y.z-w:Tag_1.0-rc",
        ),
    ],
)
def test_normalizes_as_docker_does(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, canonical: str
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert ref.digest == (Digest.parse(digest) if digest else None)
    assert str(ref) == canonical


def test_digest_wins_over_tag() -> None:
    assert parse_reference(f"example.com/app:v2@{D}").target == D
    assert parse_reference("example.com/app:v2").target == "v2"


def test_docker_hub_api_host() -> None:
    assert parse_reference("busybox").api_host == "registry-1.docker.io"
    assert parse_reference("localhost:5000/a").api_host == "localhost:5000"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "UPPER",
        "a//b",
        "-a",
        "a:",
        "a:-tag",
        "a@sha256:short",
        "a@md5:" + "0" * 32,
        "a/" + "b" * 256,
        "ab" * 32,
        "a:b:c",
        "ex ample.com/a",
        "a/b:" + "t" * 129,
    ],
)
def test_rejects_invalid_references(text: str) -> None:
    with pytest.raises(InvalidReference, match="invalid reference"):
        parse_reference(text)


@pytest.mark.parametrize(
    ("registry", "plain"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.9.8.7", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("example.com", False),
        ("docker.io", False),
        ("localhost.example.com", False),
    ],
)
def test_plain_http_only_for_loopback(registry: str, plain: bool) -> None:
    assert default_plain_http(registry) is plain


_component = st.from_regex(r"\A[a-z0-9]{1,5}(?:[._-][a-z0-9]{1,5}){0,2}\Z")
_tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
_host = st.sampled_from(["", "localhost/", "example.com/", "127.0.0.1:5000/", "r.io:1/"])
_digest = st.one_of(st.none(), st.binary(min_size=1, max_size=8).map(Digest.of))


@given(_host, st.lists(_component, min_size=1, max_size=3), st.one_of(st.none(), _tag), _digest)
def test_canonical_form_parses_to_itself(
    host: str, components: list[str], tag: str | None, digest: Digest | None
) -> None:
    while not host and len(components) > 1 and "." in components[0]:
        components = components[1:]  # a dotted first component is a registry, as in Docker
    text = host + "/".join(components)
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref
    assert ref.digest == digest
    assert ref.tag == (tag or (None if digest else "latest"))


def test_dotted_first_component_is_a_registry() -> None:
    with pytest.raises(InvalidReference, match=r"invalid registry host '0_0\.0'"):
        parse_reference("0_0.0/x")
    assert parse_reference("a.b/x").registry == "a.b"
