"""How `-v`, `--mount` and `--tmpfs` are read (docker's rules); the e2e tests in
test_volumes.py check the same specs against dockerd and in running containers."""

from collections.abc import Callable

import pytest

from runtime.mountspec import (
    MountRequest,
    check_unique,
    parse_mount_flag,
    parse_tmpfs_flag,
    parse_volume_flag,
)
from runtime.options import OptionError


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("/h:/d", MountRequest("bind", "/h", "/d", propagation="rprivate")),
        ("/h:/d:ro", MountRequest("bind", "/h", "/d", True, "rprivate", mode="ro")),
        ("/h:/d:ro,rslave", MountRequest("bind", "/h", "/d", True, "rslave", mode="ro,rslave")),
        ("data:/d", MountRequest("volume", "data", "/d")),
        ("data:/d:ro", MountRequest("volume", "data", "/d", True, mode="ro")),
        ("data:/d:nocopy", MountRequest("volume", "data", "/d", nocopy=True, mode="nocopy")),
        ("/d", MountRequest("volume", "", "/d")),
        ("/d:ro", MountRequest("volume", "", "/d", True, mode="ro")),
    ],
)
def test_volume_flag(spec: str, want: MountRequest) -> None:
    assert parse_volume_flag(spec) == want


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("type=bind,src=/h,dst=/d,ro", MountRequest("bind", "/h", "/d", True, "rprivate",
                                                    flag="--mount")),
        ("type=bind,source=/h,target=/d,readonly=false,bind-propagation=rshared",
         MountRequest("bind", "/h", "/d", False, "rshared", flag="--mount")),
        ("src=v1,destination=/d,volume-nocopy",
         MountRequest("volume", "v1", "/d", nocopy=True, mode="z", flag="--mount")),
        ("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
         MountRequest("tmpfs", "", "/t", options=("nosuid", "nodev", "noexec", "size=1048576",
                                                   "mode=1770"), flag="--mount")),
    ],
)  # fmt: skip
def test_mount_flag(spec: str, want: MountRequest) -> None:
    assert parse_mount_flag(spec) == want


def test_tmpfs_flag_lifts_a_default_the_options_contradict() -> None:
    got = parse_tmpfs_flag("/t:exec,size=64k,uid=1000")
    assert got.options == ("nosuid", "nodev", "exec", "size=64k", "uid=1000")
    assert not got.readonly
    assert parse_tmpfs_flag("/t:ro").readonly


@pytest.mark.parametrize(
    ("parse", "spec", "message"),
    [
        (parse_volume_flag, "a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        (parse_volume_flag, "/h:/d:z", "invalid mode: z (no SELinux relabeling here)"),
        (parse_volume_flag, "/h:/d:nocopy",
         "invalid mode: nocopy (only for volumes): '/h:/d:nocopy'"),
        (parse_volume_flag, "v:/d:rshared",
         "invalid mode: rshared (only for bind mounts): 'v:/d:rshared'"),
        (parse_volume_flag, "rel", "invalid mount path: 'rel' mount path must be absolute"),
        (parse_mount_flag, "type=volume,src=v,dst=/d,ro=2",
         'invalid argument "type=volume,src=v,dst=/d,ro=2" for "--mount" flag: '
         "invalid value for ro: 2"),
        (parse_tmpfs_flag, "/t:size", 'invalid tmpfs option ["size"]'),
    ],
)  # fmt: skip
def test_errors(parse: Callable[[str], MountRequest], spec: str, message: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse(spec)
    assert str(caught.value) == message


def test_duplicate_targets_are_found_through_trailing_slashes() -> None:
    with pytest.raises(OptionError, match="Duplicate mount point: /d"):
        check_unique([parse_volume_flag("/h:/d"), parse_tmpfs_flag("/d/")])
