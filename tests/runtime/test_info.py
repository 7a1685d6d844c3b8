"""`berth info`: its fields checked against the machine (uname, os.cpu_count, /proc/meminfo,
findmnt), against `docker info` where both describe the same host, and its counts after
runs and pulls."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import Berth, Images, sh

pytestmark = pytest.mark.e2e


def _fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep:
            fields[key] = value
    return fields


def _info(berth: Berth) -> tuple[dict[str, str], dict[str, Any]]:
    plain = berth.cli("info")
    assert plain.returncode == 0, plain.stderr
    as_json = berth.cli("info", "--format", "{{json .}}")
    assert as_json.returncode == 0, as_json.stderr
    return _fields(plain.stdout), json.loads(as_json.stdout)


def test_info_describes_this_machine_as_docker_does(berth: Berth) -> None:
    fields, data = _info(berth)
    uname = os.uname()
    assert fields["Kernel Version"] == uname.release == data["KernelVersion"]
    assert fields["Architecture"] == uname.machine
    assert fields["CPUs"] == str(os.cpu_count()) == str(data["NCPU"])
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    assert data["MemTotal"] == mem_kib * 1024
    assert fields["Berth Root Dir"] == str(berth.root)
    fstype = sh("findmnt", "-n", "-o", "FSTYPE", "--target", str(berth.root)).stdout.strip()
    want = "extfs" if fstype.startswith("ext") else fstype
    assert fields["Backing Filesystem"] == want
    cgroup2_only = (
        subprocess.run(
            ["stat", "-f", "-c", "%T", "/sys/fs/cgroup"], capture_output=True, text=True
        ).stdout.strip()
        == "cgroup2fs"
    )
    assert fields["Cgroup Version"] == ("2" if cgroup2_only else "1")
    assert fields["Default Runtime"] == "berth"
    assert set(fields["Runtimes"].split()) == {"berth", "runc", "crun"}
    runc_version = sh("runc", "--version").stdout.splitlines()[0].split()[-1]
    assert fields["runc version"] == runc_version
    # what docker says of the same machine
    docker = _fields(sh("docker", "info").stdout)
    for key in ("Kernel Version", "Operating System", "OSType", "Architecture", "CPUs",
                "Total Memory", "Cgroup Driver", "Cgroup Version", "Name"):  # fmt: skip
        assert fields[key] == docker[key], key
    assert docker["runc version"].startswith(fields["runc version"])


def test_info_counts_images_and_containers(berth: Berth, registry_images: Images) -> None:
    _, before = _info(berth)
    listed = berth.cli("images")
    assert listed.returncode == 0
    assert before["Images"] == len(listed.stdout.strip().splitlines()) - 1
    assert before["Containers"] == len(berth.containers())
    started = berth.run("berth", "-d", registry_images.base, "sh", "-c", "sleep 30")
    assert started.returncode == 0, started.stderr
    running = started.stdout.strip()
    exited = berth.run("berth", "--verbose", registry_images.base, "true")
    assert exited.returncode == 0, exited.stderr
    stopped = next(w for w in exited.stderr.split() if re.fullmatch(r"[0-9a-f]{64}", w))
    try:
        _, after = _info(berth)
        assert after["Containers"] == before["Containers"] + 2
        assert after["ContainersRunning"] == before["ContainersRunning"] + 1
        assert after["ContainersStopped"] == before["ContainersStopped"] + 1
        assert after["ContainersPaused"] == 0
        assert after["Images"] == before["Images"]
    finally:
        berth.cli("rm", "-f", running, stopped)
    _, end = _info(berth)
    assert end["Containers"] == before["Containers"]


def test_info_format_takes_fields_and_refuses_the_rest(berth: Berth) -> None:
    one = berth.cli("info", "-f", "{{.NCPU}} {{.OSType}}")
    assert one.stdout == f"{os.cpu_count()} linux\n"
    bad = berth.cli("info", "-f", "{{range .Runtimes}}x{{end}}")
    assert bad.returncode == 2
    assert len(bad.stderr.splitlines()) == 1


def test_info_counts_an_image_once_pulled(registry_images: Images, tmp_path: Path) -> None:
    fresh = Berth(tmp_path / "fresh-root")
    _, before = _info(fresh)
    assert (before["Images"], before["Containers"]) == (0, 0)
    pulled = fresh.cli("pull", "--plain-http", registry_images.base)
    assert pulled.returncode == 0, pulled.stderr
    _, after = _info(fresh)
    assert after["Images"] == 1


def test_info_json_uses_dockers_field_names() -> None:
    docker = json.loads(sh("docker", "info", "--format", "{{json .}}").stdout)
    root = Path(sh("mktemp", "-d").stdout.strip())
    try:
        ours = json.loads(Berth(root).cli("info", "-f", "json").stdout)
    finally:
        sh("rm", "-rf", str(root))
    own = {"RuntimeVersions"}  # Berth's: docker names runc's version in RuncCommit instead
    assert set(ours) - own <= set(docker)
    for key in ("NCPU", "MemTotal", "KernelVersion", "OperatingSystem", "OSType", "Architecture",
                "CgroupDriver", "CgroupVersion"):  # fmt: skip
        assert ours[key] == docker[key], key
