"""Pure parts of the registry protocol: challenges, credentials, platforms, manifests."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from blobstore import Digest
from puller import InvalidPlatform, Platform, UnsupportedManifest, parse_platform
from puller.manifests import media_type_of, parse_index, parse_manifest, select_platform
from registry_client.challenge import parse_challenges, pull_scope
from registry_client.credentials import (
    credentials_for,
    docker_config_path,
    load_credentials,
    parse_user,
)


def test_bearer_challenge_with_commas_inside_quotes() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:samalba/my-app:pull,push",
    }


def test_several_challenges_and_escapes() -> None:
    header = r'Basic realm="a \"quoted\" realm", Bearer Realm=https://t/x, error=invalid_token'
    basic, bearer = parse_challenges(header)
    assert (basic.scheme, basic.params) == ("basic", {"realm": 'a "quoted" realm'})
    assert (bearer.scheme, bearer.params) == (
        "bearer",
        {"realm": "https://t/x", "error": "invalid_token"},
    )
    assert parse_challenges("") == []
    assert pull_scope("a/b") == "repository:a/b:pull"


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_credentials_from_docker_config_keys() -> None:
    config = {
        "auths": {
            "https://index.docker.io/v1/": _auth("hub", "h:pw"),
            "http://127.0.0.1:5000/v2/": _auth("local", "lpw"),
            "example.com": {"username": "ex", "password": "epw"},
            "broken.io": {"auth": "!!!"},
        }
    }
    assert credentials_for("docker.io", config) == ("hub", "h:pw")
    assert credentials_for("127.0.0.1:5000", config) == ("local", "lpw")
    assert credentials_for("example.com", config) == ("ex", "epw")
    assert credentials_for("broken.io", config) is None
    assert credentials_for("other.io", config) is None
    assert credentials_for("x", {"auths": []}) is None


def test_docker_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_config_path() == tmp_path / "config.json"
    assert load_credentials("r.io") is None
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.io": _auth("u", "p")}}))
    assert load_credentials("r.io") == ("u", "p")


def test_parse_user() -> None:
    assert parse_user("u:p:with:colons") == ("u", "p:with:colons")
    for bad in ("nopassword", ":p"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            parse_user(bad)


def test_platforms() -> None:
    assert parse_platform("linux/arm64") == Platform("linux", "arm64", "v8")
    assert parse_platform("linux/amd64/v2") == Platform("linux", "amd64", "v2")
    assert parse_platform("linux/aarch64") == Platform("linux", "arm64", "v8")
    assert parse_platform("Linux/ARM/v7") == Platform("linux", "arm", "v7")
    assert parse_platform("linux/arm64").matches(Platform("linux", "arm64", "v8"))
    assert not parse_platform("linux/arm/v6").matches(Platform("linux", "arm", "v7"))
    assert not parse_platform("linux/amd64").matches(Platform("windows", "amd64"))
    for bad in ("linux", "linux/", "a/b/c/d", ""):
        with pytest.raises(InvalidPlatform):
            parse_platform(bad)


def _desc(digest: str, platform: dict[str, str] | None, media_type: str) -> dict[str, object]:
    entry: dict[str, object] = {"mediaType": media_type, "digest": digest, "size": 10}
    if platform:
        entry["platform"] = platform
    return entry


M = "application/vnd.oci.image.manifest.v1+json"


def test_select_platform_skips_attestations_and_normalizes_variants() -> None:
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                _desc(a, {"os": "unknown", "architecture": "unknown"}, M),
                _desc(b, {"os": "linux", "architecture": "amd64"}, M),
                _desc(c, {"os": "linux", "architecture": "arm64", "variant": "v8"}, M),
            ],
        }
    ).encode()
    entries = parse_index(index)
    assert select_platform(entries, parse_platform("linux/amd64")).digest == Digest.parse(b)
    assert select_platform(entries, parse_platform("linux/arm64")).digest == Digest.parse(c)
    with pytest.raises(UnsupportedManifest, match="offers: linux/amd64, linux/arm64/v8"):
        select_platform(entries, parse_platform("linux/ppc64le"))
    assert media_type_of(index, None) == "application/vnd.oci.image.index.v1+json"


def test_manifests_refused_when_unusable() -> None:
    with pytest.raises(UnsupportedManifest, match="schema1"):
        parse_index(b'{"schemaVersion": 1, "manifests": []}')
    with pytest.raises(UnsupportedManifest, match="not JSON"):
        media_type_of(b"<html>", "text/html")
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + "a" * 64,
        "size": 2,
    }
    layer = {"mediaType": "application/x-unknown", "digest": "sha256:" + "b" * 64, "size": 1}
    body = json.dumps({"schemaVersion": 2, "config": config, "layers": [layer]}).encode()
    with pytest.raises(UnsupportedManifest, match="unsupported media type"):
        parse_manifest(body, M)
    negative = json.dumps(
        {"schemaVersion": 2, "config": {**config, "size": -1}, "layers": []}
    ).encode()
    with pytest.raises(UnsupportedManifest, match="invalid size -1"):
        parse_manifest(negative, M)
    assert media_type_of(b'{"schemaVersion": 2}', "application/x; charset=utf-8") == "application/x"
