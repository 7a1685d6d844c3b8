"""`berth run` with each runtime (berth's executor, runc, crun), checked against `docker run`
of the same image where docker applies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.runtime.conftest import Berth, Images, docker_run
from tests.support.server import berth_executable

pytestmark = pytest.mark.e2e


def test_output_and_exit_code_match_docker(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    script = "echo out; echo err >&2; exit 3"
    ours = berth.run(runtime, "--rm", registry_images.base, "sh", "-c", script)
    theirs = docker_run(registry_images.base, "sh", "-c", script)
    assert (ours.returncode, ours.stdout, ours.stderr) == (3, "out\n", "err\n")
    assert (theirs.returncode, theirs.stdout, theirs.stderr) == (3, "out\n", "err\n")


def test_env_workdir_user_and_entrypoint_from_the_image(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    ours = berth.run(runtime, "--rm", "--hostname", "h1", registry_images.app)
    theirs = docker_run("--hostname", "h1", registry_images.app)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    lines = ours.stdout.splitlines()
    assert lines[0] == "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"
    assert lines[1:3] == ["/srv/app", "hello from the image"]
    assert {"GREETING=hello", "HOSTNAME=h1", "HOME=/home/app", "PATH=/usr/bin:/bin"} <= set(lines)


@pytest.mark.parametrize(
    "options",
    [
        ["-e", "GREETING=bye", "-e", "EXTRA=1", "-w", "/tmp", "-u", "root"],
        ["-u", "1000:50"],
        ["-u", "4242"],
        ["--entrypoint", "/bin/env"],
    ],
    ids=["env-workdir-root", "uid-gid", "unknown-uid", "entrypoint"],
)
def test_run_options_match_docker(
    berth: Berth, registry_images: Images, runtime: str, options: list[str]
) -> None:
    ours = berth.run(runtime, "--rm", "--hostname", "h2", *options, registry_images.app)
    theirs = docker_run("--hostname", "h2", *options, registry_images.app)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())


def test_process_is_pid_1_with_its_own_hostname(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    script = "echo $$; hostname; cat /etc/hostname; ps -o comm > /tmp/ps; tr '\\n' , < /tmp/ps"
    ours = berth.run(runtime, "--rm", "--verbose", registry_images.base, "sh", "-c", script)
    pid, hostname, etc_hostname, processes = ours.stdout.split()
    assert pid == "1"
    container_id = ours.stderr.strip()
    assert hostname == etc_hostname == container_id[:12] != os.uname().nodename
    assert processes == "COMMAND,sh,ps,"  # nothing of the host's
    theirs = docker_run(registry_images.base, "sh", "-c", script)
    assert theirs.stdout.split()[0] == "1"
    assert theirs.stdout.split()[3] == processes


def test_network_none_has_only_loopback(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    script = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ip -o link | grep -c UP"
    ours = berth.run(runtime, "--rm", registry_images.base, "sh", "-c", script)
    theirs = docker_run(registry_images.base, "sh", "-c", script)
    assert ours.stdout == theirs.stdout == "lo\n1\n"


def test_network_host_shares_the_host_interfaces(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    ours = berth.run(
        runtime, "--rm", "--network", "host", registry_images.base, "cat", "/proc/net/dev"
    )
    with open("/proc/net/dev") as f:
        host = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    assert {line.split(":")[0].strip() for line in ours.stdout.splitlines()[2:]} == host


def test_host_mounts_are_invisible(berth: Berth, registry_images: Images, runtime: str) -> None:
    ours = berth.run(runtime, "--rm", registry_images.base, "cat", "/proc/self/mounts")
    theirs = docker_run(registry_images.base, "cat", "/proc/self/mounts")
    assert ours.returncode == 0, ours.stderr

    def targets(text: str) -> set[str]:
        return {line.split()[1] for line in text.splitlines()}

    ours_targets = targets(ours.stdout)
    with open("/proc/self/mounts") as f:
        host_only = targets(f.read()) - targets(theirs.stdout)
    assert host_only, "the host should have mounts a container does not"
    assert not ours_targets & host_only
    # every mount but the cgroup hierarchies (docker adds cpuset/systemd) is one docker has too
    assert {t for t in ours_targets if not t.startswith("/sys/fs/cgroup/")} <= targets(
        theirs.stdout
    )
    assert ours.stdout.splitlines()[0].startswith("overlay / overlay ")


def test_memory_limit_oom_kills_with_137(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    hog = "dd if=/dev/zero of=/dev/null bs=64M count=1"
    ours = berth.run(
        runtime,
        "--rm",
        "-m",
        "16m",
        registry_images.base,
        "sh",
        "-c",
        f"cat /sys/fs/cgroup/memory/memory.limit_in_bytes; {hog}",
    )
    theirs = docker_run("-m", "16m", registry_images.base, "sh", "-c", hog)
    assert ours.stdout.splitlines()[0] == str(16 << 20)
    assert ours.returncode == theirs.returncode == 137


def test_pids_limit_stops_a_fork_bomb(berth: Berth, registry_images: Images, runtime: str) -> None:
    script = (
        "bomb() { bomb | bomb & sleep 3; }; bomb 2>/dev/null & sleep 1.5; "
        "cat /sys/fs/cgroup/pids/pids.max; grep -c . /sys/fs/cgroup/pids/tasks; "
        "grep max /sys/fs/cgroup/pids/pids.events"
    )
    ours = berth.run(
        runtime, "--rm", "--pids-limit", "20", registry_images.base, "sh", "-c", script, timeout=60
    )
    limit, tasks, events = ours.stdout.splitlines()[:3]
    assert limit == "20"
    assert int(tasks) <= 20
    assert int(events.split()[1]) > 0  # forks were refused
    theirs = docker_run("--pids-limit", "20", registry_images.base, "sh", "-c", script)
    assert theirs.stdout.splitlines()[0] == "20"


def test_cpus_set_the_cfs_quota(berth: Berth, registry_images: Images, runtime: str) -> None:
    script = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"
    ours = berth.run(runtime, "--rm", "--cpus", "0.5", registry_images.base, "sh", "-c", script)
    theirs = docker_run("--cpus", "0.5", registry_images.base, "sh", "-c", script)
    assert ours.stdout == theirs.stdout == "50000\n100000\n"


def test_read_only_root(berth: Berth, registry_images: Images, runtime: str) -> None:
    script = "touch /x; echo $?; touch /dev/shm/y && echo shm-ok"
    ours = berth.run(runtime, "--rm", "--read-only", registry_images.base, "sh", "-c", script)
    theirs = docker_run("--read-only", registry_images.base, "sh", "-c", script)
    assert ours.stdout == theirs.stdout == "1\nshm-ok\n"
    assert "Read-only file system" in ours.stderr


def test_bind_mounts(
    berth: Berth, registry_images: Images, runtime: str, host_dir: Path, tmp_path: Path
) -> None:
    (host_dir / "in.txt").write_text("from the host\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    script = "cat /data/in.txt; echo written > /data/out.txt; touch /ro/z; echo ro=$?"
    ours = berth.run(
        runtime,
        "--rm",
        "-v",
        f"{host_dir}:/data",
        "-v",
        f"{ro}:/ro:ro",
        registry_images.base,
        "sh",
        "-c",
        script,
    )
    assert ours.stdout == "from the host\nro=1\n"
    assert (host_dir / "out.txt").read_text() == "written\n"
    assert not (ro / "z").exists()


def test_files_written_in_one_container_are_absent_from_the_next(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    first = berth.run(
        runtime,
        "--verbose",
        registry_images.base,
        "sh",
        "-c",
        "echo secret > /etc/marker && cat /etc/marker",
    )
    assert first.stdout == "secret\n"
    cid = first.stderr.strip()
    assert (berth.root / "containers" / cid / "upper" / "etc" / "marker").read_text() == "secret\n"
    second = berth.run(runtime, "--rm", registry_images.base, "cat", "/etc/marker")
    assert second.returncode == 1
    assert "No such file" in second.stderr
    ps = berth.cli("ps", "-a")
    row = next(line for line in ps.stdout.splitlines() if line.startswith(cid[:12]))
    assert "Exited (0)" in row
    assert runtime in row
    assert cid[:12] not in berth.cli("ps").stdout  # not running
    assert berth.cli("rm", cid[:12]).returncode == 0
    assert cid not in berth.containers()
    assert berth.cli("rm", cid[:12]).returncode == 1


def _cgroup_dirs(cid: str) -> list[str]:
    root = "/sys/fs/cgroup"
    return [p for c in os.listdir(root) if os.path.isdir(p := f"{root}/{c}/berth/{cid}")]


def test_rm_leaves_nothing_behind(berth: Berth, registry_images: Images, runtime: str) -> None:
    before = set(berth.containers())
    ours = berth.run(
        runtime,
        "--rm",
        "--verbose",
        "-m",
        "32m",
        registry_images.base,
        "sh",
        "-c",
        "echo x > /file",
    )
    assert ours.returncode == 0, ours.stderr
    cid = ours.stderr.strip()
    assert set(berth.containers()) == before
    assert not (berth.root / "containers" / cid).exists()
    assert _cgroup_dirs(cid) == []
    with open("/proc/self/mountinfo") as f:
        assert str(berth.root) not in f.read()


@pytest.mark.parametrize("name", ["TERM", "INT"])
def test_signals_reach_the_container(
    berth: Berth, registry_images: Images, runtime: str, name: str
) -> None:
    script = f'trap "echo got-{name}; exit 42" {name}; echo ready; while true; do sleep 0.1; done'
    proc = subprocess.Popen(
        [
            berth_executable(),
            "run",
            "--root",
            str(berth.root),
            "--runtime",
            runtime,
            "--rm",
            registry_images.base,
            "sh",
            "-c",
            script,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(getattr(signal, f"SIG{name}"))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 42, err
    assert out == f"got-{name}\n"


def test_command_not_found_is_127_like_docker(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    ours = berth.run(runtime, "--rm", registry_images.base, "no-such-command")
    theirs = docker_run(registry_images.base, "no-such-command")
    assert ours.returncode == theirs.returncode == 127
    assert re.search("no-such-command.*(not found|No such file)", ours.stderr)
    assert berth.run(runtime, "--rm", registry_images.base, "/etc/passwd").returncode == 126


def test_docker_built_image_runs_as_under_docker(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    ours = berth.run(runtime, "--rm", registry_images.built)
    theirs = docker_run(registry_images.built)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == "built in /work/dir as 0 mode=built\n"


def test_ps_shows_a_running_container_and_rm_f_kills_it(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    argv = [berth_executable(), "run", "--root", str(berth.root), "--runtime", runtime,
            "--verbose", registry_images.base, "sh", "-c",
            "echo ready; while true; do sleep 0.1; done"]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stderr is not None
            cid = proc.stderr.readline().strip()
            assert proc.stdout.readline() == "ready\n"
            ps = berth.cli("ps")
            row = next(line for line in ps.stdout.splitlines() if line.startswith(cid[:12]))
            assert " Up " in row
            assert berth.cli("rm", cid[:12]).returncode == 1  # running: needs -f
            assert berth.cli("rm", "-f", cid[:12]).returncode == 0
            assert proc.wait(timeout=30) == 137  # 128 + SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
    assert cid not in berth.containers()
    assert _cgroup_dirs(cid) == []


def test_stdin_only_with_interactive(berth: Berth, registry_images: Images, runtime: str) -> None:
    piped = berth.run(
        runtime, "--rm", "-i", registry_images.base, "cat", input="to the container\n"
    )
    closed = berth.run(runtime, "--rm", registry_images.base, "cat", input="lost\n")
    assert piped.stdout == "to the container\n"
    assert (closed.returncode, closed.stdout) == (0, "")


def test_many_layers_whiteouts_and_opaque_dirs_as_docker_shows_them(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    script = "ls /layers | wc -l; test -e /layers/5 || echo no-5; cat /layers/59; ls /opaque"
    ours = berth.run(runtime, "--verbose", registry_images.layered, "sh", "-c", script)
    theirs = docker_run(registry_images.layered, "sh", "-c", script)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == "59\nno-5\n59\nnew\n"
    cid = ours.stderr.strip()
    links = berth.root / "containers" / cid / "l"  # 64 lowerdirs did not fit in one page
    assert len(list(links.iterdir())) == 64
    assert berth.cli("rm", cid).returncode == 0


@pytest.mark.parametrize(
    ("options", "script"),
    [
        (["-u", "root"], "grep Cap /proc/self/status"),
        (["-u", "app"], "grep Cap /proc/self/status"),
        (["-u", "root"], "mknod /tmp/disk b 8 0 && head -c1 /tmp/disk; echo rc=$?"),
        # crun (not Berth) adds a /dev/core link that docker's runc does not
        (
            ["-u", "root"],
            "stat -c '%A %t,%T %N' /dev/* | grep -v /dev/core; cat /proc/keys; "
            "ls /sys/firmware | wc -l",
        ),
        (["-u", "root"], "echo 1 > /proc/sys/kernel/ns_last_pid; echo rc=$?"),
    ],
    ids=["caps-root", "caps-user", "device-cgroup", "dev-and-masks", "proc-sys-readonly"],
)
def test_privileges_match_docker(
    berth: Berth, registry_images: Images, runtime: str, options: list[str], script: str
) -> None:
    ours = berth.run(
        runtime, "--rm", *options, "--entrypoint", "/bin/sh", registry_images.app, "-c", script
    )
    theirs = docker_run(*options, "--entrypoint", "/bin/sh", registry_images.app, "-c", script)
    assert ours.stdout == theirs.stdout
    assert ours.stdout
