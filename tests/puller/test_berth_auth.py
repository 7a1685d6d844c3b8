"""Pulls from `berth serve` with its own auth: the built-in token service (Bearer) and
plain Basic auth, with credentials from --user or the Docker config."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from registry_client.challenge import parse_challenges
from tests.puller.conftest import AUTH_PASSWORD, AUTH_USER, Berth
from tests.support import images as img
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

USER, PASSWORD = AUTH_USER, AUTH_PASSWORD


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _push_headers(registry: RunningServer, repository: str) -> dict[str, str]:
    """What a pushing client sends after answering the registry's challenge."""
    try:
        urllib.request.urlopen(f"{registry.url}/v2/", timeout=10)
    except urllib.error.HTTPError as exc:
        [challenge] = parse_challenges(exc.headers["WWW-Authenticate"])
    else:
        raise AssertionError("the registry did not ask for credentials")
    if challenge.scheme == "basic":
        return {"Authorization": _basic()}
    query = urllib.parse.urlencode(
        {
            "service": challenge.params.get("service", ""),
            "scope": f"repository:{repository}:pull,push",
        }
    )
    request = urllib.request.Request(
        f"{challenge.params['realm']}?{query}", headers={"Authorization": _basic()}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        token = json.loads(resp.read())["token"]
    return {"Authorization": f"Bearer {token}"}


def test_pull_with_berth_auth(auth_registry: RunningServer, berth: Berth, tmp_path: Path) -> None:
    image = img.build_image([img.build_layer([img.file("secret", b"classified")])])
    img.push_image(
        auth_registry.url,
        "puller/private",
        "v1",
        image,
        headers=_push_headers(auth_registry, "puller/private"),
    )
    reference = f"{auth_registry.host}/puller/private:v1"
    no_config = {"DOCKER_CONFIG": str(tmp_path / "nothing")}

    refused = berth("pull", reference, check=False, env=no_config)
    assert refused.returncode == 1
    assert refused.stderr.startswith("berth pull: ")
    assert "(--user or docker login)" in refused.stderr

    wrong = berth("pull", "--user", f"{USER}:wrong", reference, check=False, env=no_config)
    assert wrong.returncode == 1
    assert "401" in wrong.stderr
    assert "incorrect username or password" in wrong.stderr

    pulled = berth("pull", "--user", f"{USER}:{PASSWORD}", reference, env=no_config)
    assert f"Digest: {image.digest}" in pulled.stdout

    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {auth_registry.host: {"auth": auth}}})
    )
    berth("rmi", reference)
    berth("prune")
    again = berth("pull", reference, env={"DOCKER_CONFIG": str(docker_config)})
    assert "downloaded" in again.stdout
