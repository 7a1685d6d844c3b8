from typing import Any

import pytest

from runtime import ExecUser, OptionError, RunOptions, Volume, build_spec, command_line
from runtime.defaults import CAPABILITIES, DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS

ROOT = ExecUser(0, 0, (0,), "/root")
IMAGE = {
    "config": {
        "Entrypoint": ["/entry"],
        "Cmd": ["--serve"],
        "Env": ["PATH=/opt/bin:/bin", "A=1", "B=2"],
        "WorkingDir": "/app",
    }
}


def spec(
    options: RunOptions | None = None,
    image: dict[str, Any] = IMAGE,
    user: ExecUser = ROOT,
    **kw: Any,
) -> dict[str, Any]:
    options = options or RunOptions()
    return build_spec(image, options, user, hostname="h1", cgroups_path="/berth/x", **kw)


@pytest.mark.parametrize(
    ("image", "options", "args"),
    [
        ({"Entrypoint": ["/e"], "Cmd": ["c"]}, RunOptions(), ["/e", "c"]),
        ({"Entrypoint": ["/e"], "Cmd": ["c"]}, RunOptions(command=("x", "y")), ["/e", "x", "y"]),
        ({"Cmd": ["sh"]}, RunOptions(command=("ls",)), ["ls"]),
        ({"Entrypoint": ["/e"], "Cmd": ["c"]}, RunOptions(entrypoint="/n"), ["/n"]),
        (
            {"Entrypoint": ["/e"], "Cmd": ["c"]},
            RunOptions(entrypoint="/n", command=("a",)),
            ["/n", "a"],
        ),
        ({"Entrypoint": ["/e"], "Cmd": ["c"]}, RunOptions(entrypoint="", command=("a",)), ["a"]),
    ],
)
def test_entrypoint_and_cmd_combine_like_docker(
    image: dict[str, Any], options: RunOptions, args: list[str]
) -> None:
    assert command_line(image, options) == args


def test_no_command_at_all_is_an_error() -> None:
    with pytest.raises(OptionError, match="no command"):
        command_line({}, RunOptions())


def test_process_from_image_config() -> None:
    process = spec()["process"]
    assert process["args"] == ["/entry", "--serve"]
    assert process["cwd"] == "/app"
    assert process["env"] == ["PATH=/opt/bin:/bin", "HOSTNAME=h1", "A=1", "B=2", "HOME=/root"]
    assert process["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert process["noNewPrivileges"] is True
    assert process["terminal"] is False
    assert process["capabilities"]["bounding"] == list(CAPABILITIES)
    assert "inheritable" not in process["capabilities"]
    assert "rlimits" not in process  # root here cannot raise hard limits


def test_env_overrides_and_passthrough() -> None:
    options = RunOptions(env=("A=9", "NEW=x", "FROM_HOST", "MISSING", "HOME=/h"))
    env = spec(options, host_env={"FROM_HOST": "yes"})["process"]["env"]
    assert env == [
        "PATH=/opt/bin:/bin",
        "HOSTNAME=h1",
        "A=9",
        "B=2",
        "NEW=x",
        "FROM_HOST=yes",
        "HOME=/h",
    ]


def test_default_path_when_the_image_has_none() -> None:
    env = spec(image={"config": {"Cmd": ["x"]}})["process"]["env"]
    assert env[0] == f"PATH={DEFAULT_PATH}"
    assert spec(image={"config": {"Cmd": ["x"]}})["process"]["cwd"] == "/"


def test_workdir_and_user_options_win() -> None:
    user = ExecUser(7, 8, (8, 9), "/home/u")
    process = spec(RunOptions(workdir="/w"), user=user)["process"]
    assert process["cwd"] == "/w"
    assert process["user"] == {"uid": 7, "gid": 8, "additionalGids": [8, 9]}
    assert process["env"][-1] == "HOME=/home/u"


def test_docker_default_mounts_and_volumes() -> None:
    volumes = (Volume("/host/a", "/data"), Volume("/host/b", "/data/ro", True))
    mounts = spec(RunOptions(volumes=volumes))["mounts"]
    destinations = [m["destination"] for m in mounts]
    assert destinations[:7] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    assert mounts[7] == {
        "destination": "/data",
        "type": "bind",
        "source": "/host/a",
        "options": ["rbind", "rprivate"],
    }
    assert mounts[8]["options"] == ["rbind", "rprivate", "ro"]
    sysfs = next(m for m in mounts if m["destination"] == "/sys")
    assert "ro" in sysfs["options"]


def test_a_volume_replaces_a_default_mount_at_the_same_place() -> None:
    mounts = spec(RunOptions(volumes=(Volume("/x", "/dev/shm"),)))["mounts"]
    shm = [m for m in mounts if m["destination"] == "/dev/shm"]
    assert shm == [
        {
            "destination": "/dev/shm",
            "type": "bind",
            "source": "/x",
            "options": ["rbind", "rprivate"],
        }
    ]


def test_namespaces_by_network_mode() -> None:
    types = [n["type"] for n in spec()["linux"]["namespaces"]]
    assert sorted(types) == ["ipc", "mount", "network", "pid", "uts"]
    host = [n["type"] for n in spec(RunOptions(network="host"))["linux"]["namespaces"]]
    assert "network" not in host
    assert "pid" in host


def test_resources_masked_and_readonly_paths() -> None:
    options = RunOptions(memory=64 << 20, cpu_quota=(50_000, 100_000), pids_limit=20)
    linux = spec(options)["linux"]
    assert linux["cgroupsPath"] == "/berth/x"
    assert linux["resources"]["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert linux["resources"]["cpu"] == {"quota": 50_000, "period": 100_000}
    assert linux["resources"]["pids"] == {"limit": 20}
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    plain = spec()["linux"]["resources"]
    assert set(plain) == {"devices"}
    assert spec(RunOptions(pids_limit=-1))["linux"]["resources"].keys() == {"devices"}


def test_root_hostname_and_version() -> None:
    document = spec(RunOptions(read_only=True))
    assert document["root"] == {"path": "rootfs", "readonly": True}
    assert document["hostname"] == "h1"
    assert document["ociVersion"].startswith("1.0")
