"""The `berth` command table: every command is served by the module it names, `--help` lists
them all without importing any, and the listing commands stay clear of the heavy imports
(asyncio, aiohttp, SQLAlchemy, the executor's ctypes). Timings are bench/run_startup.py's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from berth.cli import COMMANDS, _unlisted, build_parser

HEAVY = (
    *("asyncio", "aiohttp", "sqlalchemy", "ctypes", "registry", "zstandard", "runtime.launch"),
    *("aiobotocore", "botocore", "prometheus_client", "jinja2", "rich", "yaml"),
)

_PROBE = """
import sys
from berth.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)))
"""


def _modules_after(*argv: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split("\n")[-2].split())


def test_every_command_module_is_in_the_table() -> None:
    assert _unlisted() == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_is_registered_by_its_module(name: str) -> None:
    parser = build_parser([name])
    subparsers = next(a for a in parser._actions if a.dest == "command")
    sub = subparsers.choices[name]  # type: ignore[index]  # argparse keeps choices untyped
    assert callable(sub.get_default("handler")) or sub._subparsers is not None, name


def test_help_lists_every_command_and_imports_none() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, "--help"], capture_output=True, text=True, check=True
    )
    for name, (_, help_text) in COMMANDS.items():
        assert name in proc.stdout
        assert help_text.split()[0] in proc.stdout
    loaded = set(proc.stdout.split("\n")[-2].split())
    assert not {m for m in loaded if m.startswith(("berth.commands.", *HEAVY))}


@pytest.mark.parametrize("command", ["ps", "images"])
def test_listing_commands_stay_light(command: str, tmp_path: Path) -> None:
    loaded = _modules_after(command, "--root", str(tmp_path))
    assert f"berth.commands.{'containers' if command == 'ps' else 'images'}" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == []


def test_run_loads_neither_asyncio_nor_the_http_client(tmp_path: Path) -> None:
    """`berth run` of a pulled image: asyncio and aiohttp load only if it has to pull."""
    code = (
        "import sys, berth.commands.run as r, puller;"
        "s = puller.ImageStore(sys.argv[1]); s.find('a/b:c');"
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(out.split())
    assert "runtime.launch" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("asyncio", "aiohttp", "zstandard")}
    assert "_hashlib" not in loaded  # OpenSSL: only to hash something
    assert not loaded & {"dataclasses", "inspect"}  # ~3.5 ms: records are NamedTuples or slots
    # the terminal and attach code loads only for -t, attach and exec
    terminal = ("runtime.attach", "runtime.relay", "runtime.terminal", "runtime.console")
    assert not loaded & {*terminal, "runtime.nsenter", "runtime.exec_in", "termios", "tty"}
    assert not {m for m in loaded if m.startswith("runtime.network")}  # only for bridge networks


def test_network_ls_stays_light(tmp_path: Path) -> None:
    loaded = _modules_after("network", "ls", "--root", str(tmp_path))
    assert "runtime.network.store" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY) == []
    assert "runtime.network.proxy" not in loaded  # asyncio: only where ports are published
