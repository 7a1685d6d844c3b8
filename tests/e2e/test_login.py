"""`berth login`/`berth logout` against a `berth serve` with htpasswd auth (Bearer tokens) and
CNCF Distribution with htpasswd (Basic): the config.json written is what docker and skopeo
use to push and inspect, the same file docker login writes, and logout empties it."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.auth.htpasswd import set_password
from tests.auth.e2e_support import USERS, start_auth_server
from tests.support.server import RunningServer, berth_executable, start_distribution

pytestmark = pytest.mark.e2e

USER, PASSWORD = "alice", USERS["alice"]


@pytest.fixture(scope="module", params=["berth", "distribution"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp(f"login-{request.param}")
    if request.param == "berth":
        running = start_auth_server(base)
    else:
        htpasswd = base / "htpasswd"
        set_password(htpasswd, USER, PASSWORD, cost=5)
        running = start_distribution(
            base / "data",
            extra_config=f"auth:\n  htpasswd:\n    realm: berth-login\n    path: {htpasswd}\n",
        )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "docker-config"
    path.mkdir()
    return path


def _berth(
    config_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    return subprocess.run(
        [berth_executable(), *args], input=stdin, capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )  # fmt: skip


def _docker(
    config_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300,
        check=False,
    )  # fmt: skip


def _busybox() -> str:
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    local = [ref for ref in listed if "busybox" in ref and not ref.endswith(":<none>")]
    if not local:
        pytest.fail("no busybox image in dockerd: the e2e image fixtures make one")
    return local[0]


def test_login_writes_what_docker_and_skopeo_use_and_logout_removes_it(
    server: RunningServer, config_dir: Path
) -> None:
    host = server.host
    login = _berth(config_dir, "login", "-u", USER, "--password-stdin", host, stdin=PASSWORD)
    assert login.returncode == 0, login.stderr
    assert login.stdout == "Login Succeeded\n"
    config_file = config_dir / "config.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    auths = json.loads(config_file.read_text())["auths"]
    assert base64.b64decode(auths[host]["auth"]).decode() == f"{USER}:{PASSWORD}"

    # docker login writes the same entry
    theirs = config_dir.parent / "docker-own"
    theirs.mkdir()
    assert _docker(theirs, "login", "-u", USER, "--password-stdin", host,
                   stdin=PASSWORD).returncode == 0  # fmt: skip
    assert json.loads((theirs / "config.json").read_text())["auths"][host] == auths[host]

    # docker pushes with berth's file, skopeo reads with it; without it, both are refused
    target = f"{host}/authe2e/login-{uuid.uuid4().hex[:8]}:1"
    assert _docker(config_dir, "tag", _busybox(), target).returncode == 0
    try:
        pushed = _docker(config_dir, "push", target)
        assert pushed.returncode == 0, pushed.stderr
        inspect = ["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"]
        with_file = subprocess.run(
            [*inspect[:2], "--authfile", str(config_file), *inspect[2:]],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert with_file.returncode == 0, with_file.stderr
        assert json.loads(with_file.stdout)["Name"] == target.rsplit(":", 1)[0]
        empty = config_dir.parent / "empty.json"
        empty.write_text("{}")
        without = subprocess.run(
            [*inspect[:2], "--authfile", str(empty), *inspect[2:]],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert without.returncode != 0
    finally:
        _docker(config_dir, "rmi", "-f", target)

    logout = _berth(config_dir, "logout", host)
    assert (logout.returncode, logout.stdout) == (0, f"Removing login credentials for {host}\n")
    assert host not in json.loads(config_file.read_text()).get("auths", {})
    again = _berth(config_dir, "logout", host)
    assert (again.returncode, again.stdout) == (0, f"Not logged in to {host}\n")


def test_wrong_password_fails_with_one_line_and_writes_nothing(
    server: RunningServer, config_dir: Path
) -> None:
    got = _berth(config_dir, "login", "-u", USER, "-p", "not-the-password", server.host)
    assert got.returncode == 1
    lines = got.stderr.splitlines()
    assert lines[0] == "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
    assert len(lines) == 2
    assert lines[1].startswith("berth login: ")
    assert "401" in lines[1]
    assert not (config_dir / "config.json").exists()
    theirs = _docker(config_dir, "login", "-u", USER, "-p", "not-the-password", server.host)
    assert theirs.returncode != 0  # docker refuses them too


def test_login_keeps_other_entries_and_usage_errors(
    server: RunningServer, config_dir: Path
) -> None:
    config_file = config_dir / "config.json"
    config_file.write_text(json.dumps({"auths": {"other:5000": {"auth": "eDp5"}}, "x": 1}))
    assert _berth(config_dir, "login", "-u", USER, "-p", PASSWORD, server.host).returncode == 0
    config = json.loads(config_file.read_text())
    assert config["x"] == 1
    assert set(config["auths"]) == {"other:5000", server.host}
    no_user = _berth(config_dir, "login", "--password-stdin", server.host, stdin=PASSWORD)
    assert no_user.returncode == 2
    assert no_user.stderr == "berth login: Must provide --username with --password-stdin\n"
    no_tty = _berth(config_dir, "login", server.host, stdin="")
    assert no_tty.returncode == 1
    assert no_tty.stderr == (
        "berth login: Cannot perform an interactive login from a non TTY device\n"
    )
    unreachable = _berth(config_dir, "login", "-u", USER, "-p", PASSWORD, "127.0.0.1:9")
    assert unreachable.returncode == 1
    assert len(unreachable.stderr.splitlines()) == 2
