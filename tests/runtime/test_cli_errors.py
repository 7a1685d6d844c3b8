"""Bad input to `berth run`/`rm` gets docker's exit status (125 when `run` itself fails, not
the container) and one clear line; nothing is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.conftest import Berth, Images

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-u", "ghost"],
            "berth run: unable to find user ghost: no matching entries in passwd file",
        ),
        (["-m", "2m"], "berth run: minimum memory limit allowed is 6MB, got '2m'"),
        (["--cpus", "zero"], "berth run: invalid value for --cpus: 'zero'"),
        (
            ["-v", "a/b:/x"],  # not a host path (absolute), nor a volume name
            'berth run: create a/b: "a/b" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path",
        ),
        (["-w", "rel"], "berth run: the working directory 'rel' must be an absolute path"),
    ],
)
def test_bad_options_fail_before_anything_is_created(
    berth: Berth, registry_images: Images, args: list[str], message: str
) -> None:
    before = berth.containers()
    proc = berth.run("berth", "--rm", *args, registry_images.base, "true")
    assert proc.returncode == 125
    assert proc.stderr.strip().splitlines()[-1] == message
    assert berth.containers() == before


def test_rm_of_an_unknown_container(berth: Berth) -> None:
    proc = berth.cli("rm", "0123456789ab")
    assert proc.returncode == 1
    assert proc.stderr == "berth rm: no such container: 0123456789ab\n"


def test_missing_image_is_pulled_and_unknown_image_is_an_error(
    berth: Berth, registry_images: Images, tmp_path: Path
) -> None:

    fresh = Berth(tmp_path / "fresh-root")
    proc = fresh.run("berth", "--rm", "--plain-http", registry_images.base, "echo", "pulled")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "pulled\n"
    assert "Unable to find image" in proc.stderr
    missing = registry_images.base.rsplit(":", 1)[0] + ":nope"
    proc = fresh.run("berth", "--rm", "--plain-http", missing, "true")
    assert proc.returncode == 125
    assert proc.stderr.splitlines()[-1].startswith("berth run: ")
