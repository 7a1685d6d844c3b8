"""Detached containers under their monitor: `berth run -d`, `logs`, `stop`, `ps -a`, `rm -f`
and lookup by name, beside docker doing the same where the comparison says something."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.runtime.conftest import Berth, Images, sh

pytestmark = pytest.mark.e2e

LOOP = "while true; do sleep 0.1; done"


def _run_d(berth: Berth, runtime: str, *args: str) -> str:
    started = berth.run(runtime, "-d", *args)
    assert started.returncode == 0, started.stderr
    cid = str(started.stdout).strip()
    assert len(cid) == 64
    assert cid in berth.containers()
    return cid


def _row(berth: Berth, ref: str, *flags: str) -> str:
    ps = berth.cli("ps", *flags)
    assert ps.returncode == 0, ps.stderr
    return next((line for line in ps.stdout.splitlines() if line.startswith(ref[:12])), "")


def _wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_run_d_returns_at_once_and_logs_show_the_output(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    script = "echo out; echo err >&2; sleep 1; echo later; " + LOOP
    cid = _run_d(berth, runtime, registry_images.base, "sh", "-c", script)
    try:
        # `berth run -d` has exited; its container still runs and writes to its log
        assert " Up " in _row(berth, cid)
        _wait_for(lambda: "later" in berth.cli("logs", cid[:12]).stdout)
        logs = berth.cli("logs", cid[:12])
        assert (logs.returncode, logs.stdout, logs.stderr) == (0, "out\nlater\n", "err\n")
        tail = berth.cli("logs", "--tail", "1", cid)
        assert (tail.stdout, tail.stderr) == ("later\n", "")
        stamped = berth.cli("logs", "-t", cid).stdout.splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == ["out", "later"]
        assert all(line[:4].isdigit() and line.split(" ")[0].endswith("Z") for line in stamped)
    finally:
        assert berth.cli("rm", "-f", cid).returncode == 0
    assert cid not in berth.containers()


def test_stop_kills_after_the_timeout_and_ps_a_shows_the_exit(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    # PID 1 without a handler ignores SIGTERM: docker stop waits -t seconds, then SIGKILLs
    name = f"stop-{uuid.uuid4().hex[:8]}"
    cid = _run_d(berth, runtime, "--name", name, registry_images.base, "sh", "-c", LOOP)
    begun = time.monotonic()
    stopped = berth.cli("stop", "-t", "1", name)
    took = time.monotonic() - begun
    assert (stopped.returncode, stopped.stdout) == (0, f"{name}\n"), stopped.stderr
    assert 1 <= took < 10
    assert _row(berth, cid) == ""  # ps without -a lists running ones only
    row = _row(berth, cid, "-a")
    assert "Exited (137)" in row
    assert row.endswith(name)
    assert berth.cli("rm", name).returncode == 0
    assert cid not in berth.containers()


def test_stop_with_a_term_handler_exits_with_its_code(
    berth: Berth, registry_images: Images
) -> None:
    script = "trap 'echo bye; exit 3' TERM; echo ready; " + LOOP
    cid = _run_d(berth, "berth", registry_images.base, "sh", "-c", script)
    _wait_for(lambda: "ready" in berth.cli("logs", cid).stdout)
    begun = time.monotonic()
    assert berth.cli("stop", "-t", "10", cid).returncode == 0
    assert time.monotonic() - begun < 5  # well before the SIGKILL
    assert "Exited (3)" in _row(berth, cid, "-a")
    assert berth.cli("logs", cid).stdout == "ready\nbye\n"
    docker_name = f"berthrt-{uuid.uuid4().hex[:8]}"
    sh("docker", "run", "-d", "--network", "none", "--name", docker_name,
       registry_images.base, "sh", "-c", script)  # fmt: skip
    try:
        _wait_for(lambda: "ready" in sh("docker", "logs", docker_name).stdout)
        sh("docker", "stop", "-t", "10", docker_name)
        inspected = sh("docker", "inspect", "-f", "{{.State.ExitCode}}", docker_name)
        assert inspected.stdout.strip() == "3"
        assert sh("docker", "logs", docker_name).stdout == "ready\nbye\n"
    finally:
        sh("docker", "rm", "-f", docker_name, check=False)
    assert berth.cli("rm", cid).returncode == 0


def test_logs_follow_ends_when_the_container_exits(berth: Berth, registry_images: Images) -> None:
    script = "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 4"
    cid = _run_d(berth, "berth", registry_images.base, "sh", "-c", script)
    followed = berth.cli("logs", "-f", cid)
    assert (followed.returncode, followed.stdout) == (0, "1\n2\n3\n")
    assert "Exited (4)" in _row(berth, cid, "-a")
    assert berth.cli("rm", cid).returncode == 0


def test_rm_f_removes_a_running_container_and_frees_its_name(
    berth: Berth, registry_images: Images
) -> None:
    name = f"rmf-{uuid.uuid4().hex[:8]}"
    cid = _run_d(berth, "berth", "--name", name, registry_images.base, "sh", "-c", LOOP)
    taken = berth.run("berth", "-d", "--name", name, registry_images.base, "true")
    assert taken.returncode == 125
    assert f'"/{name}" is already in use by container "{cid}"' in taken.stderr
    assert berth.cli("rm", name).returncode == 1  # running: needs -f
    assert berth.cli("rm", "-f", name).returncode == 0
    assert cid not in berth.containers()
    assert berth.cli("logs", name).returncode == 1
    again = _run_d(berth, "berth", "--name", name, registry_images.base, "true")
    assert berth.cli("rm", "-f", name).returncode == 0
    assert again not in berth.containers()


def test_run_d_with_a_missing_command_fails_like_docker(
    berth: Berth, registry_images: Images
) -> None:
    ours = berth.run("berth", "-d", registry_images.base, "no-such-command")
    theirs = sh("docker", "run", "-d", "--rm", "--network", "none", registry_images.base,
                "no-such-command", check=False)  # fmt: skip
    assert ours.returncode == theirs.returncode == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in ours.stderr
    assert ours.stdout == ""


def test_run_d_rm_removes_the_container_when_it_exits(
    berth: Berth, registry_images: Images
) -> None:
    cid = _run_d(berth, "berth", "--rm", registry_images.base, "sh", "-c", "sleep 0.5")
    _wait_for(lambda: cid not in berth.containers())


def test_kill_wait_start_and_restart(berth: Berth, registry_images: Images, runtime: str) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    script = "echo run; trap 'exit 5' USR1; " + LOOP
    cid = _run_d(berth, runtime, "--name", name, registry_images.base, "sh", "-c", script)
    try:
        _wait_for(lambda: berth.cli("logs", name).stdout == "run\n")
        killed = berth.cli("kill", "-s", "USR1", name)
        assert (killed.returncode, killed.stdout) == (0, f"{name}\n"), killed.stderr
        waited = berth.cli("wait", name)
        assert (waited.returncode, waited.stdout) == (0, "5\n")
        assert berth.cli("kill", name).returncode == 1  # not running
        started = berth.cli("start", name)
        assert (started.returncode, started.stdout) == (0, f"{name}\n"), started.stderr
        assert " Up " in _row(berth, cid)
        _wait_for(lambda: berth.cli("logs", name).stdout == "run\nrun\n")
        assert berth.cli("restart", "-t", "1", name).returncode == 0
        _wait_for(lambda: berth.cli("logs", name).stdout == "run\n" * 3)
        assert " Up " in _row(berth, cid)
        assert berth.cli("kill", name).returncode == 0
        assert berth.cli("wait", cid[:12]).stdout == "137\n"
    finally:
        assert berth.cli("rm", "-f", name).returncode == 0


def test_unknown_containers_fail_with_one_line(berth: Berth) -> None:
    for command in (["stop"], ["kill"], ["start"], ["wait"], ["logs"], ["rm", "-f"]):
        failed = berth.cli(*command, "no-such-container")
        assert failed.returncode == 1, command
        assert failed.stderr == f"berth {command[0]}: no such container: no-such-container\n"


def test_restart_on_failure_restarts_exactly_n_times_like_docker(
    berth: Berth, registry_images: Images
) -> None:
    script = "echo try; exit 1"
    cid = _run_d(berth, "berth", "--restart", "on-failure:2", registry_images.base, "sh", "-c",
                 script)  # fmt: skip
    waited = berth.cli("wait", cid)
    assert (waited.returncode, waited.stdout) == (0, "1\n")
    assert berth.cli("logs", cid).stdout == "try\n" * 3
    assert "Exited (1)" in _row(berth, cid, "-a")
    assert berth.cli("rm", cid).returncode == 0
    name = f"berthrt-{uuid.uuid4().hex[:8]}"
    sh("docker", "run", "-d", "--network", "none", "--restart", "on-failure:2", "--name", name,
       registry_images.base, "sh", "-c", script)  # fmt: skip
    try:
        inspect = ["docker", "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", name]
        _wait_for(lambda: sh(*inspect).stdout.strip() == "2 exited")
        assert sh("docker", "logs", name).stdout == "try\n" * 3
    finally:
        sh("docker", "rm", "-f", name, check=False)


def test_restart_always_ends_with_stop(berth: Berth, registry_images: Images) -> None:
    script = "echo up; sleep 0.2"
    cid = _run_d(berth, "berth", "--restart", "always", registry_images.base, "sh", "-c", script)
    _wait_for(lambda: berth.cli("logs", cid).stdout.count("up") >= 3)
    assert berth.cli("stop", "-t", "1", cid).returncode == 0
    count = berth.cli("logs", cid).stdout.count("up")
    time.sleep(1)
    assert berth.cli("logs", cid).stdout.count("up") == count  # no restart after stop
    assert "Exited (" in _row(berth, cid, "-a")
    assert berth.cli("rm", cid).returncode == 0


def test_restart_policy_errors(berth: Berth, registry_images: Images) -> None:
    bad = berth.run("berth", "-d", "--restart", "sometimes", registry_images.base, "true")
    assert bad.returncode == 2
    assert "invalid restart policy 'sometimes'" in bad.stderr
    both = berth.run("berth", "-d", "--rm", "--restart", "always", registry_images.base, "true")
    assert (both.returncode, both.stderr) == (
        125,
        "berth run: conflicting options: --restart and --rm\n",
    )


def test_inspect_shows_what_docker_inspect_shows(berth: Berth, registry_images: Images) -> None:
    import json

    args = ["--restart", "on-failure:1", registry_images.base, "sh", "-c", "exit 2"]
    name = f"insp-{uuid.uuid4().hex[:8]}"
    cid = _run_d(berth, "berth", "--name", name, *args)
    assert berth.cli("wait", name).stdout == "2\n"
    ours = json.loads(berth.cli("inspect", name).stdout)[0]
    docker_name = f"berthrt-{uuid.uuid4().hex[:8]}"
    sh("docker", "run", "-d", "--network", "none", "--name", docker_name, *args)
    try:
        inspect = ["docker", "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", docker_name]
        _wait_for(lambda: sh(*inspect).stdout.strip() == "1 exited")
        theirs = json.loads(sh("docker", "inspect", docker_name).stdout)[0]
    finally:
        sh("docker", "rm", "-f", docker_name, check=False)

    def view(c: dict[str, Any]) -> tuple[Any, ...]:
        s = c["State"]
        return (c["Path"], c["Args"], c["RestartCount"], c["HostConfig"]["RestartPolicy"],
                s["Status"], s["Running"], s["Pid"], s["ExitCode"], c["Name"][0])  # fmt: skip

    assert view(ours) == view(theirs)
    assert ours["Id"] == cid
    assert ours["Name"] == f"/{name}"
    assert ours["Created"] < ours["State"]["StartedAt"] <= ours["State"]["FinishedAt"]
    assert ours["State"]["FinishedAt"].endswith("Z")
    assert berth.cli("rm", name).returncode == 0


def test_log_opt_rotates_the_log(berth: Berth, registry_images: Images) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"
    cid = _run_d(berth, "berth", "--log-opt", "max-size=2k", "--log-opt", "max-file=2",
                 registry_images.base, "sh", "-c", script)  # fmt: skip
    assert berth.cli("wait", cid).stdout == "0\n"
    logs = berth.cli("logs", cid).stdout.splitlines()
    assert logs[-1] == "line 299"
    assert logs == [f"line {n}" for n in range(300 - len(logs), 300)]
    assert len(logs) < 100
    files = sorted(p.name for p in (berth.root / "containers" / cid).glob("container.log*"))
    assert files == ["container.log", "container.log.1"]
    bad = berth.run("berth", "-d", "--log-opt", "max-age=1h", registry_images.base, "true")
    assert (bad.returncode, bad.stderr) == (
        125,
        "berth run: unknown log option 'max-age': use max-size, max-file\n",
    )
    assert berth.cli("rm", cid).returncode == 0


def test_a_container_without_name_gets_one_as_with_docker(
    berth: Berth, registry_images: Images
) -> None:
    cid = _run_d(berth, "berth", registry_images.base, "sh", "-c", "echo hi")
    assert berth.cli("wait", cid).stdout == "0\n"
    name = _row(berth, cid, "-a").split()[-1]
    adjective, _, noun = name.partition("_")
    assert adjective.isalpha()
    assert noun.rstrip("0123456789").isalpha()
    assert berth.cli("logs", name).stdout == "hi\n"
    assert berth.cli("rm", name).returncode == 0
    assert cid not in berth.containers()


def test_rm_f_of_a_run_d_rm_container_succeeds(berth: Berth, registry_images: Images) -> None:
    # its monitor removes it as it dies: `rm -f` must not then fail to find it
    cid = _run_d(berth, "berth", "--rm", registry_images.base, "sh", "-c", LOOP)
    removed = berth.cli("rm", "-f", cid)
    assert (removed.returncode, removed.stdout, removed.stderr) == (0, f"{cid}\n", "")
    _wait_for(lambda: cid not in berth.containers())
