"""Real clients against `berth serve` with auth on: docker login/push/pull, refusals,
anonymous pulls, skopeo with --creds, and the Berth puller with docker's config.json."""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.e2e_support import (
    IMAGE_PREFIX,
    USERS,
    Docker,
    docker_for,
    manifest_status,
    start_auth_server,
)
from tests.support.clients import run
from tests.support.server import RunningServer, berth_executable, start_distribution

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_auth_server(tmp_path_factory.mktemp("auth-registry"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-layer busybox image built FROM scratch (no Docker Hub here)."""
    context = tmp_path_factory.mktemp("auth-image")
    shutil.copy2("/bin/busybox", context / "busybox")
    (context / "marker").write_text(uuid.uuid4().hex)
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY marker /marker\n"
        'CMD ["/bin/busybox", "cat", "/marker"]\n'
    )
    tag = f"{IMAGE_PREFIX}/busybox:{uuid.uuid4().hex[:8]}"
    run(["docker", "build", "-q", "-t", tag, str(context)], timeout=300)
    yield tag
    run(["docker", "rmi", "-f", tag], check=False)


@pytest.fixture
def docker(tmp_path: Path) -> Iterator[Docker]:
    yield from docker_for(tmp_path)


def image_id(docker: Docker, ref: str) -> str:
    return str(docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip())


def push_as_alice(server: RunningServer, tmp_path: Path, image: str, repo: str) -> str:
    for alice in docker_for(tmp_path):
        alice.login(server.host, "alice", USERS["alice"])
        target = alice.tag(image, f"{server.host}/{repo}:1")
        alice("push", target)
    return f"{server.host}/{repo}:1"


def test_docker_login_push_pull(server: RunningServer, image: str, docker: Docker) -> None:
    wrong = docker.login(server.host, "alice", "not-the-password", check=False)
    assert wrong.returncode != 0
    assert "unauthorized" in wrong.stderr.lower()
    assert "Login Succeeded" in docker.login(server.host, "alice", USERS["alice"]).stdout
    stored = docker.credentials()[server.host]["auth"]
    assert base64.b64decode(stored).decode() == f"alice:{USERS['alice']}"
    ref = docker.tag(image, f"{server.host}/authe2e/team/app:1")
    pushed = docker("push", ref)
    assert "digest: sha256:" in pushed.stdout
    docker("rmi", ref)
    docker.tags.remove(ref)
    pulled = docker("pull", ref)
    docker.tags.append(ref)
    assert "Downloaded newer image" in pulled.stdout
    assert image_id(docker, ref) == image_id(docker, image)
    assert manifest_status(server, "authe2e/team/app", "1") == 200


def test_push_without_login_refused(server: RunningServer, image: str, docker: Docker) -> None:
    ref = docker.tag(image, f"{server.host}/authe2e/nologin/app:1")
    result = docker("push", ref, check=False)
    assert result.returncode != 0
    assert "denied" in result.stderr or "unauthorized" in result.stderr
    assert manifest_status(server, "authe2e/nologin/app", "1") == 404


def test_pull_only_user_refused_on_push(
    server: RunningServer, image: str, docker: Docker, tmp_path: Path
) -> None:
    ref = push_as_alice(server, tmp_path, image, "authe2e/shared/app")
    docker.login(server.host, "puller", USERS["puller"])
    docker("pull", ref)
    docker.tags.append(ref)
    target = docker.tag(image, f"{server.host}/authe2e/shared/app:from-puller")
    result = docker("push", target, check=False)
    assert result.returncode != 0
    assert "denied: requested access to the resource is denied" in result.stderr
    assert manifest_status(server, "authe2e/shared/app", "from-puller") == 404


def test_anonymous_pull_where_policy_allows(
    server: RunningServer, image: str, docker: Docker, tmp_path: Path
) -> None:
    public = push_as_alice(server, tmp_path, image, "authe2e/public/app")
    private = push_as_alice(server, tmp_path, image, "authe2e/private/app")
    assert "Downloaded newer image" in docker("pull", public).stdout
    docker.tags.append(public)
    refused = docker("pull", private, check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr or "unauthorized" in refused.stderr


def test_skopeo_with_creds(server: RunningServer, image: str, tmp_path: Path) -> None:
    dest = f"docker://{server.host}/authe2e/skopeo/app:1"
    common = ["--dest-tls-verify=false"]
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}  # no stored logins
    refused = run(["skopeo", "copy", *common, f"docker-daemon:{image}", dest], env=env, check=False)
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower() or "denied" in refused.stderr.lower()
    run(
        [
            "skopeo",
            "copy",
            *common,
            "--dest-creds",
            f"alice:{USERS['alice']}",
            f"docker-daemon:{image}",
            dest,
        ],
        env=env,
    )
    inspect = run(
        ["skopeo", "inspect", "--tls-verify=false", "--creds", f"puller:{USERS['puller']}", dest],
        env=env,
    )
    assert '"Digest": "sha256:' in inspect.stdout
    denied = run(
        [
            "skopeo",
            "copy",
            *common,
            "--dest-creds",
            f"puller:{USERS['puller']}",
            f"docker-daemon:{image}",
            f"docker://{server.host}/authe2e/skopeo/app:2",
        ],
        env=env,
        check=False,
    )
    assert denied.returncode != 0
    assert manifest_status(server, "authe2e/skopeo/app", "1") == 200
    assert manifest_status(server, "authe2e/skopeo/app", "2") == 404


def test_berth_pull_with_docker_config_credentials(
    server: RunningServer, image: str, docker: Docker, tmp_path: Path
) -> None:
    ref = push_as_alice(server, tmp_path, image, "authe2e/puller/app")
    root = tmp_path / "berth-root"
    berth = berth_executable()
    refused = run([berth, "pull", "--root", str(root), ref], env=docker.env, check=False)
    assert refused.returncode != 0  # no credentials yet
    docker.login(server.host, "puller", USERS["puller"])
    before = len(server.log().splitlines())
    pulled = run([berth, "pull", "--root", str(root), ref], env=docker.env)
    assert "Digest: sha256:" in pulled.stdout
    assert ref in pulled.stdout
    # Through the Bearer flow: a token, then the manifest with it, as user puller. The access
    # log names routes and repositories, never query strings (scopes, signed URLs).
    requests_made = server.log().splitlines()[before:]
    assert any("berth.access: GET /auth/token 200 " in line for line in requests_made)
    assert any(
        "berth.access: GET /v2/{name}/manifests/{reference} 200 " in line
        and " repository=authe2e/puller/app " in line
        and " user=puller " in line
        for line in requests_made
    )


def test_server_log_holds_no_secrets(server: RunningServer, docker: Docker, image: str) -> None:
    docker.login(server.host, "alice", USERS["alice"])
    docker.login(server.host, "alice", "a-wrong-password-xyz", check=False)
    log = server.log()
    assert "GET /auth/token" in log  # requests are logged...
    for secret in (*USERS.values(), "a-wrong-password-xyz", "Bearer ey", "Basic "):
        assert secret not in log  # ...secrets are not


def test_distribution_trusts_berth_tokens(
    server: RunningServer, image: str, docker: Docker, tmp_path: Path
) -> None:
    """CNCF Distribution, configured as for docker_auth with Berth's token service as the
    realm and its certificate as rootcertbundle, accepts Berth's tokens: kid and ES256
    signature are what Distribution-style verifiers expect."""
    cert = server.data_dir / "auth" / "token-signing-cert.pem"
    distribution = start_distribution(
        tmp_path / "distribution-data",
        extra_config=(
            "auth:\n  token:\n"
            f"    realm: {server.url}/auth/token\n"
            "    service: berth-registry\n    issuer: berth-token-service\n"
            f"    rootcertbundle: {cert}\n"
        ),
    )
    try:
        docker.login(distribution.host, "alice", USERS["alice"])
        ref = docker.tag(image, f"{distribution.host}/authe2e/viadistribution/app:1")
        assert "digest: sha256:" in docker("push", ref).stdout
        docker.tags.remove(ref)
        docker("rmi", ref)
        docker.login(distribution.host, "puller", USERS["puller"])
        docker("pull", ref)
        docker.tags.append(ref)
        refused = docker(
            "push", docker.tag(image, f"{distribution.host}/authe2e/x/y:1"), check=False
        )
        assert refused.returncode != 0
    finally:
        distribution.stop()
