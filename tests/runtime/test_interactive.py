"""Interactive containers: `run -it` on a pseudo-terminal the test opens itself, Ctrl-P Ctrl-Q
and `attach`, `start -a`, and `exec` with its options and exit codes, each beside docker
doing the same thing, with every runtime."""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.runtime.conftest import Berth, Images, sh
from tests.support.pty_session import PtySession
from tests.support.server import berth_executable

pytestmark = pytest.mark.e2e

LOOP = "while true; do sleep 0.2; done"
DETACH = b"\x10\x11"  # Ctrl-P Ctrl-Q
TTY_SCRIPT = "tty; stty size; echo $TERM; exit 3"


def _berth(berth: Berth, command: str, *args: str) -> list[str]:
    return [berth_executable(), command, "--root", str(berth.root), *args]


def _exec(berth: Berth, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return sh(*_berth(berth, "exec", *args), check=False, **kw)


def _wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _status(berth: Berth, cid: str) -> str:
    ps = berth.cli("ps", "-a")
    return next((line for line in ps.stdout.splitlines() if line.startswith(cid[:12])), "")


@functools.cache
def _docker_tty_run(image: str) -> tuple[int, bytes]:
    argv = ["docker", "run", "--rm", "-it", "--network", "none", image, "sh", "-c", TTY_SCRIPT]
    with PtySession(argv) as session:
        code = session.wait(timeout=120)
    return code, session.output


def test_run_it_gives_the_container_a_terminal_and_its_exit_code(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    argv = _berth(berth, "run", "--runtime", runtime, "--rm", "-it", registry_images.base,
                  "sh", "-c", TTY_SCRIPT)  # fmt: skip
    with PtySession(argv) as session:
        code = session.wait()
        assert session.cooked()  # the user's terminal is itself again
    docker_code, docker_output = _docker_tty_run(registry_images.base)
    # A 125 is Berth's or docker's own failure, which says why on its terminal.
    assert code == docker_code == 3, (code, docker_code, session.output, docker_output)
    expected = rb"/dev/pts/\d+\r\n33 101\r\nxterm\r\n"
    assert re.fullmatch(expected, session.output), session.output
    # docker sizes its terminal only after the start, so its `stty size` may see 0 0
    assert re.match(rb"/dev/pts/\d+\r\n", docker_output), docker_output
    assert docker_output.endswith(b"\r\nxterm\r\n"), docker_output
    _wait_for(lambda: berth.containers() == [] or all(
        "Exited" in _status(berth, c) or _status(berth, c) == "" for c in berth.containers()
    ))  # fmt: skip


def test_ctrl_p_ctrl_q_detaches_and_attach_comes_back(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    name = f"tty-{uuid.uuid4().hex[:8]}"
    argv = _berth(berth, "run", "--runtime", runtime, "-it", "--name", name,
                  registry_images.base, "sh")  # fmt: skip
    with PtySession(argv) as session:
        session.expect(r"# ")
        session.send(b"echo $((6*7))\r")
        session.expect(r"\r\n42\r\n")
        session.resize(40, 120)  # SIGWINCH -> TIOCSWINSZ on the container's terminal
        session.send(b"stty size\r")
        session.expect(r"\r\n40 120\r\n")
        session.send(DETACH)
        assert session.wait() == 0
        assert session.cooked()
    inspected = json.loads(berth.cli("inspect", name).stdout)[0]
    assert (inspected["Config"]["Tty"], inspected["Config"]["OpenStdin"]) == (True, True)
    cid = inspected["Id"]
    assert " Up " in _status(berth, cid)  # it runs on under its monitor
    with PtySession(_berth(berth, "attach", name)) as again:
        again.wait_raw()
        again.send(b"stty size; exit 7\r")
        again.expect(r"\r\n33 101\r\n")  # the size of the terminal attached now
        assert again.wait() == 7
    assert "Exited (7)" in _status(berth, cid)
    assert berth.cli("rm", name).returncode == 0


def test_detach_keys_can_be_chosen(berth: Berth, registry_images: Images) -> None:
    name = f"keys-{uuid.uuid4().hex[:8]}"
    argv = _berth(berth, "run", "-it", "--detach-keys", "ctrl-a,d", "--name", name,
                  registry_images.base, "sh")  # fmt: skip
    with PtySession(argv) as session:
        session.expect(r"# ")
        session.send(DETACH + b"echo through\r")  # no longer the detach keys: the shell's
        session.expect(r"\r\nthrough\r\n")
        session.send(b"\x01d")
        assert session.wait() == 0
    assert " Up " in _status(berth, json.loads(berth.cli("inspect", name).stdout)[0]["Id"])
    bad = berth.run("berth", "-t", "--detach-keys", "ctrl-1", registry_images.base, "sh")
    assert (bad.returncode, bad.stderr) == (2, "berth run: invalid detach key 'ctrl-1'\n")
    assert berth.cli("rm", "-f", name).returncode == 0


def test_run_d_it_starts_detached_with_a_terminal(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    started = berth.run(runtime, "-d", "-it", registry_images.base, "sh")
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    with PtySession(_berth(berth, "attach", cid)) as attached:
        attached.wait_raw()
        attached.send(b"tty; exit 5\r")
        attached.expect(r"\r\n/dev/pts/\d+\r\n")
        assert attached.wait() == 5
    assert "/dev/pts/" in berth.cli("logs", cid).stdout  # the log has the terminal's output
    assert berth.cli("rm", cid).returncode == 0


def test_start_a_i_gives_the_container_new_input(berth: Berth, registry_images: Images) -> None:
    name = f"cat-{uuid.uuid4().hex[:8]}"
    first = berth.run("berth", "-i", "--name", name, registry_images.base, "cat", input="one\n")
    assert (first.returncode, first.stdout) == (0, "one\n"), first.stderr
    again = sh(*_berth(berth, "start", "-a", "-i", name), check=False, input="two\n")
    assert (again.returncode, again.stdout) == (0, "two\n"), again.stderr
    assert berth.cli("rm", name).returncode == 0


def test_docker_detaches_and_attaches_the_same_way(registry_images: Images) -> None:
    name = f"berthrt-{uuid.uuid4().hex[:8]}"
    argv = ["docker", "run", "-it", "--network", "none", "--name", name, registry_images.base, "sh"]
    try:
        with PtySession(argv) as session:
            session.expect(r"# ", timeout=60)
            session.send(DETACH)
            assert session.wait(timeout=60) == 0
        assert sh("docker", "inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
        with PtySession(["docker", "attach", name]) as again:
            again.wait_raw()
            again.send(b"exit 7\r")
            assert again.wait(timeout=60) == 7
    finally:
        sh("docker", "rm", "-f", name, check=False)


def test_run_it_needs_a_terminal_like_docker(berth: Berth, registry_images: Images) -> None:
    ours = berth.run("berth", "-it", registry_images.base, "true", stdin=subprocess.DEVNULL)
    theirs = sh("docker", "run", "--rm", "-it", "--network", "none", registry_images.base, "true",
                check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    assert ours.returncode == theirs.returncode == 1
    assert "the input device is not a TTY" in ours.stderr
    assert "the input device is not a TTY" in theirs.stderr


def test_start_a_shows_the_output_and_returns_the_code(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    started = berth.run(
        runtime, "-d", registry_images.base, "sh", "-c", "echo out; echo err >&2; exit 6"
    )
    cid = started.stdout.strip()
    assert berth.cli("wait", cid).stdout == "6\n"
    again = sh(*_berth(berth, "start", "-a", cid), check=False)
    assert (again.returncode, again.stdout, again.stderr) == (6, "out\n", "err\n")
    assert berth.cli("logs", cid).stdout == "out\nout\n"
    assert berth.cli("rm", cid).returncode == 0


@pytest.fixture
def web(berth: Berth, registry_images: Images, runtime: str) -> Iterator[str]:
    """A running container of the app image (USER app, WORKDIR /srv/app, ENV GREETING)."""
    started = berth.run(runtime, "-d", registry_images.app, LOOP)
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    yield cid
    assert berth.cli("rm", "-f", cid).returncode == 0


@pytest.fixture(scope="module")
def docker_web(registry_images: Images) -> Iterator[str]:
    name = f"berthrt-{uuid.uuid4().hex[:8]}"
    cid = sh("docker", "run", "-d", "--network", "none", "--name", name, registry_images.app,
             LOOP).stdout.strip()  # fmt: skip
    yield cid
    sh("docker", "rm", "-f", name, check=False)


def test_exec_sees_the_containers_hostname_as_docker_does(
    berth: Berth, web: str, docker_web: str
) -> None:
    ours = _exec(berth, web, "cat", "/etc/hostname")
    theirs = sh("docker", "exec", docker_web, "cat", "/etc/hostname")
    assert (ours.returncode, ours.stdout) == (0, web[:12] + "\n"), ours.stderr
    assert theirs.stdout == docker_web[:12] + "\n"


EXEC_SCRIPT = (
    'echo "$FOO $GREETING"; id; pwd; echo $HOME; grep -E "^(NoNewPrivs|CapEff)" /proc/self/status;'
    " env | grep -v -e ^HOSTNAME= -e ^PWD= -e ^SHLVL= | sort"
)


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["-e", "FOO=bar", "-u", "root", "-w", "/tmp"],
        ["-u", "root:staff", "-e", "GREETING=bye"],
        ["-u", "nobody", "-w", "/"],
        ["-u", "1000:50"],
    ],
    ids=["defaults", "env-root-workdir", "group", "nobody", "numeric"],
)
def test_exec_env_user_and_workdir_match_docker(
    berth: Berth, web: str, docker_web: str, flags: list[str]
) -> None:
    ours = _exec(berth, *flags, web, "sh", "-c", EXEC_SCRIPT)
    theirs = sh("docker", "exec", *flags, docker_web, "sh", "-c", EXEC_SCRIPT, check=False)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    ours_lines = ours.stdout.splitlines()
    theirs_lines = theirs.stdout.splitlines()
    # no_new_privs is on by default in Berth (runtime/README.md), off in docker
    assert [line for line in ours_lines if not line.startswith("NoNewPrivs")] == [
        line for line in theirs_lines if not line.startswith("NoNewPrivs")
    ]
    assert "NoNewPrivs:\t1" in ours_lines


@pytest.mark.parametrize(
    ("command", "expected"),
    [(["sh", "-c", "exit 5"], 5), (["no-such-command"], 127), (["/etc/passwd"], 126),
     (["/no/such/path"], 127), (["-w", "/no/such/dir", "pwd"], 126),
     (["-u", "no-such-user", "id"], 126)],
    ids=["exit-5", "not-found", "not-executable", "no-such-path", "no-such-workdir",
         "no-such-user"],
)  # fmt: skip
def test_exec_exit_codes_match_docker(
    berth: Berth, web: str, docker_web: str, command: list[str], expected: int
) -> None:
    flags = command[:2] if command[0].startswith("-") else []
    command = command[len(flags) :]
    ours = _exec(berth, *flags, web, *command)
    theirs = sh("docker", "exec", *flags, docker_web, *command, check=False)
    assert ours.returncode == expected, ours.stderr
    if expected == 127:  # docker 20.10's exec says 126 for both (its `run` says 127); newer 127
        assert theirs.returncode in (126, 127)
        assert "executable file not found" in theirs.stdout + theirs.stderr or (
            "no such file or directory" in theirs.stdout + theirs.stderr
        )
    else:
        assert theirs.returncode == expected, theirs.stdout + theirs.stderr
    if expected in (126, 127):
        said = "unable to find user no-such-user" if "-u" in flags else "OCI runtime exec failed"
        assert said in ours.stderr


@functools.cache
def _docker_exec_it(container: str) -> tuple[int, bytes]:
    with PtySession(["docker", "exec", "-it", container, "sh", "-c", TTY_SCRIPT]) as session:
        code = session.wait(timeout=120)
    return code, session.output


def test_exec_i_and_it(berth: Berth, web: str, docker_web: str, runtime: str) -> None:
    piped = _exec(berth, "-i", web, "sh", "-c", "cat; exit 4", input="from stdin\n")
    theirs = sh("docker", "exec", "-i", docker_web, "sh", "-c", "cat; exit 4", check=False,
                input="from stdin\n")  # fmt: skip
    assert (piped.returncode, piped.stdout) == (theirs.returncode, theirs.stdout) == (
        4, "from stdin\n"
    )  # fmt: skip
    with PtySession(_berth(berth, "exec", "-it", web, "sh", "-c", TTY_SCRIPT)) as session:
        assert session.wait() == 3
        assert session.cooked()
    if runtime == "berth":  # sized before the exec; runc/crun exec it at once, as docker does
        assert re.fullmatch(rb"/dev/pts/\d+\r\n33 101\r\nxterm\r\n", session.output)
    assert re.match(rb"/dev/pts/\d+\r\n", session.output), session.output
    assert session.output.endswith(b"\r\nxterm\r\n"), session.output
    docker_code, docker_output = _docker_exec_it(docker_web)
    assert docker_code == 3
    assert re.match(rb"/dev/pts/\d+\r\n", docker_output), docker_output
    assert docker_output.endswith(b"\r\nxterm\r\n"), docker_output


def test_exec_d_returns_at_once_and_the_command_runs(berth: Berth, web: str) -> None:
    detached = _exec(berth, "-d", web, "sh", "-c", "echo ran > /tmp/exec-d; sleep 30")
    assert (detached.returncode, detached.stdout) == (0, "")
    _wait_for(lambda: _exec(berth, web, "cat", "/tmp/exec-d").stdout == "ran\n")
    assert "sleep 30" in _exec(berth, web, "ps").stdout  # exec -d returned while it runs


def test_exec_in_a_stopped_container_fails(berth: Berth, registry_images: Images) -> None:
    cid = berth.run("berth", "-d", registry_images.base, "true").stdout.strip()
    assert berth.cli("wait", cid).stdout == "0\n"
    failed = _exec(berth, cid, "true")
    assert failed.returncode == 1
    assert "is not running" in failed.stderr
    assert berth.cli("rm", cid).returncode == 0


def test_attach_without_a_terminal_proxies_signals(berth: Berth, registry_images: Images) -> None:
    script = 'trap "echo got-int; exit 8" INT; while true; do echo tick; sleep 0.2; done'
    cid = berth.run("berth", "-d", registry_images.base, "sh", "-c", script).stdout.strip()
    attached = subprocess.Popen(
        _berth(berth, "attach", cid), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert attached.stdout is not None
    assert attached.stdout.readline() == "tick\n"  # attached, and signals are proxied
    attached.send_signal(signal.SIGINT)  # docker's --sig-proxy: the container gets it
    out, err = attached.communicate(timeout=30)
    assert attached.returncode == 8, err
    assert out.endswith("got-int\n")
    assert set(out.splitlines()[:-1]) <= {"tick"}
    assert berth.cli("rm", cid).returncode == 0


def test_a_killed_run_it_leaves_the_terminal_as_it_was(
    berth: Berth, registry_images: Images
) -> None:
    name = f"term-{uuid.uuid4().hex[:8]}"
    argv = _berth(berth, "run", "-it", "--name", name, registry_images.base, "sh")
    with PtySession(argv) as session:
        session.expect(r"# ")
        assert not session.cooked()  # raw while attached
        session.process.send_signal(signal.SIGTERM)
        assert session.wait() == 128 + signal.SIGTERM
        assert session.cooked()
    cid = json.loads(berth.cli("inspect", name).stdout)[0]["Id"]
    assert " Up " in _status(berth, cid)  # as after a detach: it runs on under its monitor
    assert berth.cli("rm", "-f", name).returncode == 0


def test_run_it_with_a_missing_command_fails_like_docker(
    berth: Berth, registry_images: Images, runtime: str
) -> None:
    argv = _berth(berth, "run", "--runtime", runtime, "--rm", "-it", registry_images.base,
                  "no-such-command")  # fmt: skip
    with PtySession(argv) as session:
        assert session.wait() == 127
    assert b'exec: "no-such-command": executable file not found in $PATH' in session.output
    docker = ["docker", "run", "--rm", "-it", "--network", "none", registry_images.base,
              "no-such-command"]  # fmt: skip
    with PtySession(docker) as theirs:
        assert theirs.wait(timeout=120) == 127
