"""Paths inside a container root never resolve outside it; program look-up for runc/crun."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from runtime.lookup import check_executable
from runtime.paths import secure_join
from runtime.process import ExecError


def test_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    os.symlink("/etc", root / "abs")  # absolute: relative to the container root
    os.symlink("../../../../..", root / "up")
    os.symlink("real", root / "rel")
    assert secure_join(str(root), "/abs/passwd") == str(root / "etc" / "passwd")
    assert secure_join(str(root), "/up/etc") == str(root / "etc")
    assert secure_join(str(root), "/../../x") == str(root / "x")
    assert secure_join(str(root), "rel/new/file") == str(root / "real" / "new" / "file")
    os.symlink("loop", root / "loop")
    with pytest.raises(OSError, match="too many levels"):
        secure_join(str(root), "/loop/x")


def _spec(
    args: list[str],
    env: Sequence[str] = ("PATH=/usr/bin:/bin",),
    mounts: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "process": {"args": args, "env": list(env), "cwd": "/"},
        "mounts": [{"destination": d} for d in mounts],
    }


def test_check_executable(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "bin" / "data").write_text("x")
    os.symlink("/bin/tool", tmp_path / "bin" / "link")
    check_executable(str(tmp_path), _spec(["tool"]))
    check_executable(str(tmp_path), _spec(["/bin/link"]))
    with pytest.raises(ExecError) as missing:
        check_executable(str(tmp_path), _spec(["nope"]))
    assert missing.value.code == 127
    assert str(missing.value) == 'exec: "nope": executable file not found in $PATH'
    with pytest.raises(ExecError) as denied:
        check_executable(str(tmp_path), _spec(["/bin/data"]))
    assert denied.value.code == 126
    with pytest.raises(ExecError):
        check_executable(str(tmp_path), _spec(["tool"], env=("PATH=/sbin",)))
    check_executable(str(tmp_path), _spec(["/opt/x"], mounts=["/opt"]))  # may come from a mount
