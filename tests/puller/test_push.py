"""`berth tag` and `berth push`: a pulled image goes to another registry byte for byte.

Images are pushed to a source `berth serve` by the test, pulled with `berth pull`, tagged
for a target (`berth serve` or CNCF Distribution) and pushed with `berth push`; the target
then serves the same manifest digest, to skopeo and dockerd too.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.puller.conftest import AUTH_PASSWORD, AUTH_USER, Berth
from tests.puller.test_pull_tree import _on_terminal
from tests.runtime.images import busybox_layer
from tests.support import images as img
from tests.support.clients import run, unique
from tests.support.server import RunningServer, berth_executable, running


@pytest.fixture(scope="module", params=["berth", "distribution"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """`berth serve`, then CNCF Distribution."""
    with running(
        request.param, tmp_path_factory.mktemp(f"push-target-{request.param}") / "data"
    ) as server:
        yield server


def _manifest(server: RunningServer, repository: str, reference: str) -> tuple[bytes, str]:
    accept = ", ".join([img.OCI_MANIFEST, img.OCI_INDEX, img.DOCKER_MANIFEST, img.DOCKER_LIST])
    request = urllib.request.Request(
        f"{server.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.read(), resp.headers["Content-Type"]


def _layer_lines(out: str, state: str) -> list[str]:
    return re.findall(rf"^([0-9a-f]{{12}}): {state}$", out, flags=re.MULTILINE)


def _pulled(berth: Berth, registry: RunningServer, repository: str, image: img.Image) -> str:
    img.push_image(registry.url, repository, "v1", image)
    reference = f"{registry.host}/{repository}:v1"
    berth("pull", reference)
    return reference


def test_tag_gives_the_image_more_names(registry: RunningServer, berth: Berth) -> None:
    image = img.build_image([img.build_layer([img.file("f", b"tagged")])])
    source = _pulled(berth, registry, "push/tag-source", image)

    berth("tag", source, "127.0.0.1:1/elsewhere/app:v9")
    berth("tag", source, "example.com/team/app")  # no tag: latest, as docker tag does
    listing = berth("images", "--no-trunc").stdout
    rows = {line.split()[0]: line.split()[1] for line in listing.splitlines()[1:]}
    assert rows == {
        source: image.digest,
        "127.0.0.1:1/elsewhere/app:v9": image.digest,
        "example.com/team/app:latest": image.digest,
    }

    assert berth("rmi", source).stdout == f"Untagged: {source}\n"
    listing = berth("images").stdout
    assert source not in listing
    assert "127.0.0.1:1/elsewhere/app:v9" in listing
    assert "example.com/team/app:latest" in listing
    mounted = berth.mount("example.com/team/app", berth.root.parent / "mnt")
    assert (mounted / "f").read_bytes() == b"tagged"

    missing = berth("tag", "nothing/here:v1", "x/y:z", check=False)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "berth tag: no local image docker.io/nothing/here:v1\n"
    digest_target = berth("tag", "example.com/team/app", f"x/y@{image.digest}", check=False)
    assert digest_target.returncode == 1
    assert digest_target.stderr.startswith("berth tag: ")
    assert "digest" in digest_target.stderr


def test_push_as_stored_skips_what_exists_and_mounts_across_repositories(
    registry: RunningServer, target: RunningServer, berth: Berth
) -> None:
    """Layers go up as pulled (one bigger than an upload chunk, so sent in PATCHes), and the
    target serves the very manifest bytes; a second push sends nothing, and a push to another
    repository of the same registry mounts every layer."""
    layers = [
        img.build_layer([img.file("small", b"small layer")]),
        img.build_layer([img.file("big", os.urandom(20 * 1024 * 1024))], compression=""),
        img.build_layer([img.file("zstd", os.urandom(2000))], compression="zstd"),
    ]
    image = img.build_image(layers)
    source = _pulled(berth, registry, unique("push/source"), image)
    repository = unique("pushed/app")
    name = f"{target.host}/{repository}:v1"
    berth("tag", source, name)

    pushed = berth("push", name)
    assert pushed.stdout.startswith(f"The push refers to repository [{target.host}/{repository}]\n")
    shorts = sorted(layer.digest[7:19] for layer in layers)
    assert sorted(_layer_lines(pushed.stdout, "Preparing")) == shorts
    assert sorted(_layer_lines(pushed.stdout, "Pushed")) == shorts
    assert pushed.stdout.endswith(f"v1: digest: {image.digest} size: {len(image.manifest)}\n")
    assert "\x1b" not in pushed.stdout  # piped: plain lines
    body, content_type = _manifest(target, repository, "v1")
    assert body == image.manifest
    assert content_type == img.OCI_MANIFEST
    for blob in image.blobs():
        with urllib.request.urlopen(
            f"{target.url}/v2/{repository}/blobs/{img.sha256(blob)}", timeout=60
        ) as resp:
            assert resp.read() == blob

    again = berth("push", name)
    assert sorted(_layer_lines(again.stdout, "Layer already exists")) == shorts
    assert _layer_lines(again.stdout, "Pushed") == []
    assert again.stdout.endswith(f"v1: digest: {image.digest} size: {len(image.manifest)}\n")

    other = unique("other/app")
    berth("tag", name, f"{target.host}/{other}:v2")
    mounted = berth("push", f"{target.host}/{other}:v2")
    assert sorted(_layer_lines(mounted.stdout, f"Mounted from {repository}")) == shorts
    assert mounted.stdout.endswith(f"v2: digest: {image.digest} size: {len(image.manifest)}\n")
    assert _manifest(target, other, "v2")[0] == image.manifest


@pytest.mark.e2e
def test_pushed_image_is_what_skopeo_and_docker_see(
    registry: RunningServer, target: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    image = img.build_image(
        [busybox_layer(), img.build_layer([img.file("hello", b"hello from berth push\n")])],
        config={"Cmd": ["/bin/cat", "/hello"], "Env": ["PATH=/bin"]},
    )
    source = _pulled(berth, registry, unique("push/busybox"), image)
    repository = unique("berth-regtest/pushed")
    name = f"{target.host}/{repository}:v1"
    berth("tag", source, name)
    berth("push", name)

    inspected = run(["skopeo", "inspect", "--tls-verify=false", f"docker://{name}"])
    assert json.loads(inspected.stdout)["Digest"] == image.digest

    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    try:
        pulled = run(["docker", "pull", name], env=env)
        assert f"Digest: {image.digest}" in pulled.stdout
        ran = run(["docker", "run", "--rm", "--network", "none", name], env=env)
        assert ran.stdout == "hello from berth push\n"
    finally:
        run(["docker", "rmi", "-f", name], env=env, check=False)


def test_push_of_a_multi_platform_index(
    registry: RunningServer, target: RunningServer, berth: Berth
) -> None:
    """After `pull --all-platforms` the whole index goes up (every manifest by digest, the
    index under the tag), and survives `prune`; after a one-platform pull, that platform's
    manifest goes up alone, and the push says so."""
    shared = img.build_layer([img.file("shared", b"in both")])
    amd64 = img.build_image([shared, img.build_layer([img.file("a", b"amd64")])])
    arm64 = img.build_image(
        [shared, img.build_layer([img.file("a", b"arm64")])], architecture="arm64", variant="v8"
    )
    index = img.build_index([(amd64, "linux/amd64"), (arm64, "linux/arm64/v8")])
    source_repo = unique("push/multi")
    img.push_index(registry.url, source_repo, "v1", index)
    source = f"{registry.host}/{source_repo}:v1"

    berth("pull", "--all-platforms", "--platform", "linux/amd64", source)
    berth("prune")  # keeps the other platform's content: the record's index lists it
    repository = unique("pushed/multi")
    name = f"{target.host}/{repository}:v1"
    berth("tag", source, name)
    pushed = berth("push", name)
    assert pushed.stdout.endswith(f"v1: digest: {index.digest} size: {len(index.body)}\n")
    assert _manifest(target, repository, "v1") == (index.body, img.OCI_INDEX)
    for image in (amd64, arm64):
        assert _manifest(target, repository, image.digest)[0] == image.manifest
    layers = {layer.digest[7:19] for image in (amd64, arm64) for layer in image.layers}
    assert sorted(_layer_lines(pushed.stdout, "Pushed")) == sorted(layers)

    berth("rmi", source)
    berth("rmi", name)
    berth("prune")
    berth("pull", "--platform", "linux/arm64/v8", source)
    single = f"{target.host}/{unique('pushed/single')}:v1"
    berth("tag", source, single)
    one = berth("push", single)
    assert f"the index {index.digest} is not stored whole" in one.stdout
    assert one.stdout.endswith(f"v1: digest: {arm64.digest} size: {len(arm64.manifest)}\n")


def test_push_with_credentials(
    registry: RunningServer, auth_registry: RunningServer, berth: Berth, tmp_path: Path
) -> None:
    image = img.build_image([img.build_layer([img.file("secret", b"pushed with auth")])])
    source = _pulled(berth, registry, unique("push/auth"), image)
    name = f"{auth_registry.host}/puller/app:v1"
    berth("tag", source, name)
    no_config = {"DOCKER_CONFIG": str(tmp_path / "nothing")}

    refused = berth("push", name, check=False, env=no_config)
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("berth push: ")
    assert "--user or docker login" in line

    wrong = berth("push", "--user", f"{AUTH_USER}:wrong", name, check=False, env=no_config)
    assert wrong.returncode == 1
    assert "401" in wrong.stderr

    pushed = berth("push", "--user", f"{AUTH_USER}:{AUTH_PASSWORD}", name, env=no_config)
    assert pushed.stdout.endswith(f"v1: digest: {image.digest} size: {len(image.manifest)}\n")

    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    auth = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {auth_registry.host: {"auth": auth}}})
    )
    berth("tag", source, f"{auth_registry.host}/puller/copy:v2")
    copied = berth(
        "push", f"{auth_registry.host}/puller/copy:v2", env={"DOCKER_CONFIG": str(docker_config)}
    )
    assert sorted(_layer_lines(copied.stdout, "Mounted from puller/app")) == [
        image.layers[0].digest[7:19]
    ]


def test_push_errors_are_one_line(registry: RunningServer, berth: Berth) -> None:
    usage = berth("push", "--user", "no-colon", "127.0.0.1:1/not/here:v1", check=False)
    assert (usage.returncode, usage.stderr) == (2, "berth push: --user: expected USER:PASSWORD\n")
    missing = berth("push", "127.0.0.1:1/not/here:v1", check=False)
    assert missing.returncode == 1
    assert missing.stderr == (
        "berth push: An image does not exist locally with the tag: 127.0.0.1:1/not/here:v1\n"
    )
    image = img.build_image([img.build_layer([img.file("f", b"nowhere")])])
    source = _pulled(berth, registry, unique("push/errors"), image)
    berth("tag", source, "127.0.0.1:1/closed/port:v1")
    closed = berth("push", "127.0.0.1:1/closed/port:v1", check=False)
    assert closed.returncode == 1
    [line] = closed.stderr.splitlines()
    assert line.startswith("berth push: HEAD http://127.0.0.1:1/v2/closed/port/blobs/sha256:")

    # a blob the registry lacks and the content store lost (no other name to mount from)
    name = f"{registry.host}/{unique('push/lost')}:v1"
    berth("tag", source, name)
    berth("rmi", source)
    layer = image.layers[0].digest.split(":")[1]
    (berth.root / "content/blobs/sha256" / layer[:2] / layer).unlink()
    lost = berth("push", name, check=False)
    assert lost.returncode == 1
    assert lost.stderr == (
        f"berth push: blob sha256:{layer} is not in the local content store (deleted by "
        "hand?): pull the image again\n"
    )


def test_push_progress_on_a_terminal(
    registry: RunningServer, target: RunningServer, berth: Berth
) -> None:
    layers = [img.build_layer([img.file(f"f{i}", os.urandom(200_000))]) for i in range(2)]
    image = img.build_image(layers)
    source = _pulled(berth, registry, unique("push/tty"), image)
    name = f"{target.host}/{unique('pushed/tty')}:v1"
    berth("tag", source, name)
    proc, text = _on_terminal([berth_executable(), "push", "--root", str(berth.root), name])
    assert proc.returncode == 0, proc.stderr
    for layer in layers:
        final = [line for line in text.splitlines() if f"{layer.digest[7:19]}: Pushed" in line][-1]
        assert "━" in final
        shown = f"{len(layer.data) / 1000:.1f}"
        assert f"{shown}/{shown} kB" in final, final
    assert f"v1: digest: {image.digest}" in text
