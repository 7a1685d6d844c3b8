"""Volumes, tmpfs and --mount: `berth run -v NAME:/dst`, anonymous volumes, `--tmpfs`,
`--mount`, and `berth volume create|ls|rm|inspect|prune`, beside docker doing the same."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import Berth, Images, sh
from tests.support.server import berth_executable

pytestmark = pytest.mark.e2e


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Unique volume names; the docker volumes of those names are removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        sh("docker", "volume", "rm", "-f", name, check=False)


def _name(names: list[str]) -> str:
    names.append(f"berthvol-{uuid.uuid4().hex[:8]}")
    return names[-1]


def _docker(*args: str) -> tuple[int, str, str]:
    proc = sh("docker", "run", "--rm", "--network", "none", *args, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return str(proc.stdout)


def _run_kept(berth: Berth, runtime: str, *args: str) -> str:
    """`berth run` without --rm; the new container's id (from --verbose)."""
    proc = berth.run(runtime, "--verbose", *args)
    assert proc.returncode == 0, proc.stderr
    return next(w for w in proc.stderr.split() if re.fullmatch(r"[0-9a-f]{64}", w))


def test_a_named_volume_keeps_data_across_containers(
    berth: Berth, registry_images: Images, runtime: str, names: list[str]
) -> None:
    volume = _name(names)
    base = registry_images.base
    write = berth.run(runtime, "--rm", "-v", f"{volume}:/data", base, "sh", "-c",
                      "echo kept > /data/f; id -u > /data/who")  # fmt: skip
    assert write.returncode == 0, write.stderr
    read = berth.run(runtime, "--rm", "-v", f"{volume}:/data:ro", base, "sh", "-c",
                     "cat /data/f /data/who; echo x > /data/g")  # fmt: skip
    assert read.stdout == "kept\n0\n"
    assert "Read-only file system" in read.stderr
    assert read.returncode == 1
    _ok(sh("docker", "volume", "create", volume))
    _docker("-v", f"{volume}:/data", base, "sh", "-c", "echo kept > /data/f; id -u > /data/who")
    code, out, err = _docker("-v", f"{volume}:/data:ro", base, "sh", "-c",
                             "cat /data/f /data/who; echo x > /data/g")  # fmt: skip
    assert (code, out) == (read.returncode, read.stdout)
    assert "Read-only file system" in err
    mountpoint = berth.root / "volumes" / volume / "_data"
    assert (mountpoint / "f").read_text() == "kept\n"


def _listing(run_output: str) -> str:
    """`ls -lnA` without the times and sizes of directories (they differ by filesystem)."""
    lines = []
    for line in run_output.splitlines():
        if line.startswith("total"):
            continue
        fields = line.split()
        lines.append(" ".join([fields[0], fields[2], fields[3], fields[-1]]))
    return "\n".join(lines)


def test_a_new_volume_is_filled_with_the_image_content_like_docker(
    berth: Berth, registry_images: Images, runtime: str, names: list[str]
) -> None:
    app = registry_images.app
    script = "ls -lnA /srv/app; ls -ldn /srv/app; cat /srv/app/hello.txt; echo more > /srv/app/new"
    volume = _name(names)
    first = berth.run(runtime, "--rm", "-v", f"{volume}:/srv/app", app, script)
    assert first.returncode == 0, first.stderr
    assert "hello from the image" in first.stdout
    dvolume = _name(names)
    code, out, err = _docker("-v", f"{dvolume}:/srv/app", app, script)
    assert code == 0, err
    assert _listing(first.stdout) == _listing(out)
    # once not empty, a volume is not filled again: the file written stays, none comes back
    again = berth.run(runtime, "--rm", "-v", f"{volume}:/srv/app", app,
                      "rm /srv/app/hello.txt; ls /srv/app")  # fmt: skip
    assert again.stdout == "new\n"
    assert berth.run(runtime, "--rm", "-v", f"{volume}:/srv/app", app, "ls /srv/app").stdout == (
        "new\n"
    )
    # nocopy: the volume stays empty
    empty = _name(names)
    nocopy = berth.run(runtime, "--rm", "-v", f"{empty}:/srv/app:nocopy", app, "ls -A /srv/app")
    assert (nocopy.returncode, nocopy.stdout) == (0, "")


def test_copy_up_honours_whiteouts_and_opaque_dirs_like_docker(
    berth: Berth, registry_images: Images, names: list[str]
) -> None:
    layered = registry_images.layered
    volume, dvolume = _name(names), _name(names)
    script = ["sh", "-c", "ls -A /layers | sort | head -8; ls -A /opaque"]
    got = berth.run("berth", "--rm", "-v", f"{volume}:/layers", "-v", f"{volume}x:/opaque",
                    layered, *script)  # fmt: skip
    names.append(f"{volume}x")
    assert got.returncode == 0, got.stderr
    code, out, err = _docker("-v", f"{dvolume}:/layers", "-v", f"{dvolume}x:/opaque", layered,
                             *script)  # fmt: skip
    names.append(f"{dvolume}x")
    assert code == 0, err
    assert got.stdout == out
    assert "5\n" not in got.stdout.split("\n", 1)[0]


def _anonymous(berth: Berth) -> set[str]:
    listed = _ok(berth.cli("volume", "ls", "-q")).split()
    return {n for n in listed if re.fullmatch(r"[0-9a-f]{64}", n)}


def test_anonymous_volumes_go_with_rm_v_and_run_rm(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    base = registry_images.base

    def anonymous() -> set[str]:
        return _anonymous(berth)

    before = anonymous()
    cid = _run_kept(berth, runtime, "-v", "/data", "--mount", "type=volume,dst=/more", base,
                    "sh", "-c", "echo x > /data/x; echo y > /more/y")  # fmt: skip
    made = anonymous() - before
    assert len(made) == 2
    for name in made:
        assert (berth.root / "volumes" / name / "_data").is_dir()
    refused = berth.cli("volume", "rm", *sorted(made))
    assert refused.returncode == 1
    assert f"volume is in use - [{cid}]" in refused.stderr
    assert len(refused.stderr.splitlines()) == 2
    _ok(berth.cli("rm", "-v", cid))
    assert anonymous() == before
    # without -v the anonymous volume stays, dangling, as with docker
    cid = _run_kept(berth, runtime, "-v", "/data", base, "true")
    left = anonymous() - before
    _ok(berth.cli("rm", cid))
    assert len(left) == 1
    assert anonymous() - before == left
    dangling = set(_ok(berth.cli("volume", "ls", "-q", "-f", "dangling=true")).split())
    assert left <= dangling
    pruned = _ok(berth.cli("volume", "prune", "-f"))
    assert pruned.startswith("Deleted Volumes:\n")
    assert next(iter(left)) in pruned.splitlines()
    assert "Total reclaimed space: " in pruned
    assert not left & anonymous()
    # run --rm takes its anonymous volumes along
    now = anonymous()
    _ok(berth.run(runtime, "--rm", "-v", "/data", base, "true"))
    assert anonymous() == now


def test_run_d_rm_takes_anonymous_volumes_along(berth: Berth, registry_images: Images) -> None:
    before, containers = _anonymous(berth), berth.containers()
    started = berth.run("berth", "-d", "--rm", "-v", "/data", registry_images.base,
                        "sh", "-c", "until [ -e /data/stop ]; do sleep 0.05; done")  # fmt: skip
    cid = _ok(started).strip()
    assert len(cid) == 64
    (made,) = _anonymous(berth) - before  # it lives while the container does
    (berth.root / "volumes" / made / "_data" / "stop").touch()
    for _ in range(200):  # the monitor removes the container, then its volumes
        if berth.containers() == containers and _anonymous(berth) == before:
            break
        time.sleep(0.1)
    assert berth.containers() == containers
    assert _anonymous(berth) == before


def _mount_line(output: str, target: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1] == target)


@pytest.mark.parametrize(
    "flags",
    [
        ("--tmpfs", "/t"),
        ("--tmpfs", "/t:size=1m,mode=1777"),
        ("--tmpfs", "/t:exec,size=64k"),
        ("--mount", "type=tmpfs,dst=/t,tmpfs-size=2m,tmpfs-mode=0700"),
        ("--mount", "type=tmpfs,destination=/t,readonly"),
    ],
)
def test_tmpfs_is_a_tmpfs_with_dockers_options(
    berth: Berth, registry_images: Images, runtime: str, flags: tuple[str, ...]
) -> None:
    base = registry_images.base
    got = berth.run(runtime, "--rm", *flags, base, "sh", "-c", "cat /proc/mounts; stat -c %a /t")
    assert got.returncode == 0, got.stderr
    code, out, err = _docker(*flags, base, "sh", "-c", "cat /proc/mounts; stat -c %a /t")
    assert code == 0, err
    assert _mount_line(got.stdout, "/t") == _mount_line(out, "/t")
    assert _mount_line(got.stdout, "/t").startswith("tmpfs /t tmpfs ")
    assert got.stdout.splitlines()[-1] == out.splitlines()[-1]  # the mode of its root


def test_mount_volume_label_labels_a_new_volume_like_docker(
    berth: Berth, registry_images: Images, names: list[str]
) -> None:
    volume = _name(names)
    spec = f"source={volume},target=/v,volume-label=color=blue,volume-driver=local"
    _ok(berth.run("berth", "--rm", "--mount", spec, registry_images.base, "true"))
    code, _, err = _docker("--mount", spec, registry_images.base, "true")
    assert code == 0, err
    (mine,) = json.loads(_ok(berth.cli("volume", "inspect", volume)))
    (theirs,) = json.loads(_ok(sh("docker", "volume", "inspect", volume)))
    assert mine["Labels"] == theirs["Labels"] == {"color": "blue"}


def test_mount_bind_and_volume(
    berth: Berth, registry_images: Images, runtime: str, names: list[str], host_dir: Path
) -> None:
    base = registry_images.base
    (host_dir / "in").write_text("from the host\n")
    volume = _name(names)
    got = berth.run(
        runtime, "--rm",
        "--mount", f"type=bind,source={host_dir},target=/h,readonly",
        "--mount", f"type=bind,src={host_dir},dst=/w",
        "--mount", f"source={volume},target=/v",
        base, "sh", "-c", "cat /h/in; echo w > /w/out; echo v > /v/f; echo x > /h/x",
    )  # fmt: skip
    assert got.stdout == "from the host\n"
    assert "Read-only file system" in got.stderr
    assert (host_dir / "out").read_text() == "w\n"
    assert (berth.root / "volumes" / volume / "_data" / "f").read_text() == "v\n"


# (flag, value): what docker says, after "docker: Error response from daemon: " or alone
MOUNT_ERRORS = [
    ("--mount", "type=foo,dst=/x"),
    ("--mount", "dst=/x,bogus=1"),
    ("--mount", "type=bind,dst=/x"),
    ("--mount", "type=bind,src=/nonexistent-berth-vol,dst=/x"),
    ("--mount", "type=volume,src=vol1"),
    ("--mount", "type=tmpfs,src=x,dst=/x"),
    ("--mount", "type=bind,src=/tmp,dst=/x,tmpfs-size=1m"),
    ("--mount", "type=volume,dst=rel"),
    ("--mount", "type=tmpfs,dst=/x,tmpfs-size=abc"),
    ("--mount", "type=bind,src=/tmp,dst=/x,bind-propagation=bad"),
    ("--mount", "type=volume,src=/abs,dst=/x"),
    ("--mount", "type=volume,src=vol1,dst=/x,volume-nocopy=maybe"),
    ("--mount", "type=bind,src=/tmp,dst=/x,readonly=maybe"),
    ("--mount", "type"),
    ("--mount", "type=bind,src=rel,dst=/x"),
    ("--mount", "type=tmpfs,dst=/x,tmpfs-mode=99999"),
    ("--mount", "type=volume,src=vol1,dst=/x,bind-propagation=rshared"),
    ("-v", "a:b:c:d"),
    ("-v", "x:/d:bogus"),
    ("-v", ":/d"),
    ("-v", "a/b:/d"),
    ("-v", "/tmp:/"),
    ("--tmpfs", "rel"),
    ("--tmpfs", "/t:bogus"),
    ("--tmpfs", "/"),
]


def _docker_message(stderr: str) -> str:
    first = stderr.strip().splitlines()[0]
    first = first.removeprefix("docker: ").removeprefix("Error response from daemon: ")
    return first.removesuffix(".")


@pytest.mark.parametrize(("flag", "value"), MOUNT_ERRORS)
def test_bad_mount_specs_fail_with_dockers_message(
    berth: Berth, registry_images: Images, flag: str, value: str
) -> None:
    base = registry_images.base
    before = berth.containers()
    got = berth.run("berth", "--rm", flag, value, base, "true")
    code, _, err = _docker(flag, value, base, "true")
    assert (got.returncode, code) == (125, 125)
    assert got.stdout == ""
    assert len(got.stderr.splitlines()) == 1
    assert got.stderr.startswith("berth run: ")
    assert _docker_message(err) in got.stderr, (got.stderr, err)
    assert berth.containers() == before


def test_a_failed_run_leaves_no_volume_it_made(berth: Berth, registry_images: Images) -> None:
    before, containers = set(_ok(berth.cli("volume", "ls", "-q")).split()), berth.containers()
    name = f"berthvol-{uuid.uuid4().hex[:8]}"
    got = berth.run("berth", "--rm", "-v", "/anon", "-v", f"{name}:/named",
                    "--mount", "type=bind,src=/nonexistent-berth-vol,dst=/x",
                    registry_images.base, "true")  # fmt: skip
    assert got.returncode == 125
    assert "bind source path does not exist: /nonexistent-berth-vol" in got.stderr
    assert set(_ok(berth.cli("volume", "ls", "-q")).split()) == before
    assert berth.containers() == containers


def test_volume_rm_racing_run_never_removes_a_volume_in_use(
    berth: Berth, registry_images: Images, names: list[str]
) -> None:
    """Each round starts `run -d -v NAME:/d` and `volume rm NAME` together: either rm wins
    (the run then makes the volume anew) or it is refused as in use; a running container's
    volume always exists. Bounded by rounds, not time."""
    for _ in range(6):
        volume = _name(names)
        _ok(berth.cli("volume", "create", volume))
        base = [berth_executable(), "--debug"]
        root = ["--root", str(berth.root)]
        run = subprocess.Popen(
            [*base, "run", *root, "-d", "-v", f"{volume}:/d", registry_images.base,
             "sh", "-c", "until [ -e /d/stop ]; do sleep 0.05; done"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        rm = subprocess.run([*base, "volume", "rm", *root, volume], capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        cid = out.strip()
        if rm.returncode != 0:
            assert f"volume is in use - [{cid}]" in rm.stderr
        data = berth.root / "volumes" / volume / "_data"
        assert data.is_dir()  # made anew if rm won
        (data / "stop").touch()
        _ok(berth.cli("wait", cid))
        _ok(berth.cli("rm", cid))
        _ok(berth.cli("volume", "rm", volume))


def test_duplicate_mount_points_are_refused(
    berth: Berth, registry_images: Images, host_dir: Path
) -> None:
    got = berth.run("berth", "--rm", "-v", f"{host_dir}:/d", "--tmpfs", "/d",
                    registry_images.base, "true")  # fmt: skip
    assert got.returncode == 125
    assert got.stderr == "berth run: Duplicate mount point: /d\n"


def test_volume_commands_like_docker(
    berth: Berth, registry_images: Images, names: list[str]
) -> None:
    volume = _name(names)
    assert _ok(berth.cli("volume", "create", "--label", "team=a", volume)) == f"{volume}\n"
    assert _ok(berth.cli("volume", "create", volume)) == f"{volume}\n"  # exists: as docker
    ls = _ok(berth.cli("volume", "ls"))
    assert ls.splitlines()[0] == "DRIVER    VOLUME NAME"
    assert f"local     {volume}" in ls.splitlines()
    _ok(sh("docker", "volume", "create", "--label", "team=a", volume))
    (mine,) = json.loads(_ok(berth.cli("volume", "inspect", volume)))
    (theirs,) = json.loads(_ok(sh("docker", "volume", "inspect", volume)))
    assert sorted(mine) == sorted(theirs)
    assert mine["Mountpoint"] == str(berth.root / "volumes" / volume / "_data")
    for key in ("Driver", "Labels", "Name", "Options", "Scope"):
        assert mine[key] == theirs[key]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", mine["CreatedAt"])
    assert (
        _ok(berth.cli("volume", "inspect", "-f", "{{.Mountpoint}}", volume)).strip()
        == (mine["Mountpoint"])
    )
    for f, listed in ((f"name={volume}", True), ("label=team=a", True), ("label=team", True),
                      ("label=team=b", False), ("driver=local", True)):  # fmt: skip
        assert (volume in _ok(berth.cli("volume", "ls", "-q", "-f", f)).split()) == listed, f
    assert berth.cli("volume", "ls", "-f", "bogus=1").returncode == 2
    missing = berth.cli("volume", "inspect", "berthvol-missing")
    assert (missing.returncode, missing.stdout.strip()) == (1, "[]")
    assert missing.stderr == "berth volume inspect: get berthvol-missing: no such volume\n"
    bad = berth.cli("volume", "create", "bad/name")
    assert bad.returncode != 0
    assert len(bad.stderr.splitlines()) == 1
    docker_bad = sh("docker", "volume", "create", "bad/name", check=False)
    assert _docker_message(docker_bad.stderr) in bad.stderr

    # in use by a stopped container: refused, as docker refuses it
    cid = _run_kept(berth, "berth", "-v", f"{volume}:/data", registry_images.base, "true")
    refused = berth.cli("volume", "rm", volume)
    assert refused.returncode == 1
    assert refused.stderr == f"berth volume rm: remove {volume}: volume is in use - [{cid}]\n"
    pruned = _ok(berth.cli("volume", "prune", "-f", "-a"))
    assert volume not in pruned
    _ok(berth.cli("rm", cid))
    assert _ok(berth.cli("volume", "rm", volume)) == f"{volume}\n"
    assert not (berth.root / "volumes" / volume).exists()
    gone = berth.cli("volume", "rm", volume)
    assert gone.returncode == 1
    assert "no such volume" in gone.stderr
    assert berth.cli("volume", "rm", "-f", volume).returncode == 0


def test_inspect_shows_mounts_as_docker_does(
    berth: Berth, registry_images: Images, names: list[str], host_dir: Path
) -> None:
    volume = _name(names)
    flags = [
        "-v", f"{volume}:/data:ro",
        "-v", f"{host_dir}:/h",
        "--tmpfs", "/t",
        "--tmpfs", "/t3:size=1m",
        "-v", "/anon",
        "--mount", f"type=bind,src={host_dir},dst=/h2,readonly",
        "--mount", "type=tmpfs,dst=/t2",
    ]  # fmt: skip
    cid = _run_kept(berth, "berth", *flags, registry_images.base, "true")
    (mine,) = json.loads(_ok(berth.cli("inspect", cid)))
    dname = f"berthrt-{uuid.uuid4().hex[:8]}"
    sh("docker", "run", "--network", "none", "--name", dname, *flags, registry_images.base,
       "true")  # fmt: skip
    try:
        (theirs,) = json.loads(_ok(sh("docker", "inspect", dname)))
    finally:
        sh("docker", "rm", "-v", dname, check=False)
    _ok(berth.cli("rm", "-v", cid))

    def key(m: dict[str, Any]) -> str:
        return str(m["Destination"])

    def comparable(m: dict[str, Any]) -> dict[str, Any]:
        """Without what is the host's own: volume paths and anonymous volumes' random names."""
        anonymous = re.fullmatch(r"[0-9a-f]{64}", str(m.get("Name", "")))
        return {
            k: v
            for k, v in m.items()
            if (k != "Source" or m["Type"] == "bind") and not (k == "Name" and anonymous)
        }

    # dockerd lists Binds in no fixed order
    assert sorted(mine["HostConfig"]["Binds"]) == sorted(theirs["HostConfig"]["Binds"])
    assert mine["HostConfig"]["Tmpfs"] == theirs["HostConfig"]["Tmpfs"]
    assert mine["Config"]["Volumes"] == theirs["Config"]["Volumes"]
    mine_mounts = sorted(mine["Mounts"], key=key)
    theirs_mounts = sorted(theirs["Mounts"], key=key)
    assert [comparable(m) for m in mine_mounts] == [comparable(m) for m in theirs_mounts]
    by_dest = {m["Destination"]: m for m in mine_mounts}
    assert by_dest["/data"]["Source"] == str(berth.root / "volumes" / volume / "_data")
