"""runtime.logfile: the json-file log a container monitor writes and `berth logs` reads."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from runtime import logfile


def _copy(log: Path, out: bytes, err: bytes) -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(out_w, out)
    os.write(err_w, err)
    os.close(out_w)
    os.close(err_w)
    logfile.copy_streams({out_r: "stdout", err_r: "stderr"}, log)


def test_lines_are_entries_in_docker_json_file_format(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    _copy(log, b"one\ntwo\nno newline", b"oops\n")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((r["stream"], r["log"]) for r in records) == [
        ("stderr", "oops\n"),
        ("stdout", "no newline"),
        ("stdout", "one\n"),
        ("stdout", "two\n"),
    ]
    stamp = records[0]["time"]
    assert stamp.endswith("Z")
    assert len(stamp) == len("2026-11-30T09:06:13.123456789Z")
    entries = list(logfile.read(log))
    assert b"".join(e.data for e in entries if e.stream == "stdout") == b"one\ntwo\nno newline"
    assert [e.data for e in logfile.read(log, tail=1)] == [entries[-1].data]


def test_a_long_line_is_cut_as_docker_cuts_it(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    line = b"x" * (logfile.MAX_LINE * 2 + 10)
    _copy(log, line + b"\n", b"")  # a pipe holds 64 KiB, more than this
    sizes = [len(e.data) for e in logfile.read(log)]
    assert sizes == [logfile.MAX_LINE, logfile.MAX_LINE, 11]


def test_follow_yields_what_comes_until_done(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    _copy(log, b"first\n", b"")
    lines = iter(logfile.follow(log, lambda: log.stat().st_size > 200, interval=0.01))
    assert next(lines).data == b"first\n"
    with open(log, "ab") as f:
        f.write(b'{"log": "second\\n", "stream": "stderr", "time": "t"}\n')
        f.write(b'{"log": "third\\n", "stream": "stdout", "time": "t"}\n' * 3)
    rest = list(lines)
    assert [(e.stream, e.data) for e in rest[:2]] == [
        ("stderr", b"second\n"),
        ("stdout", b"third\n"),
    ]
    assert len(rest) == 4


def test_rotation_keeps_max_files_and_reads_across_them(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    rotation = logfile.Rotation.parse(["max-size=1k", "max-file=3"])
    assert rotation == logfile.Rotation(1024, 3)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(out_w, b"".join(b"line %d\n" % n for n in range(200)))
    os.close(out_w)
    os.close(err_w)
    logfile.copy_streams({out_r: "stdout", err_r: "stderr"}, log, rotation)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "container.log",
        "container.log.1",
        "container.log.2",
    ]
    assert all(p.stat().st_size < 1024 + 100 for p in tmp_path.iterdir())
    data = [e.data for e in logfile.read(log)]
    assert data[-1] == b"line 199\n"
    assert data == [b"line %d\n" % n for n in range(200 - len(data), 200)]  # in order, no gaps
    assert len(data) < 60
    assert [e.data for e in logfile.read(log, tail=2)] == [b"line 198\n", b"line 199\n"]
    followed = [e.data for e in logfile.follow(log, lambda: True)]
    assert followed == data


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["max-size=1k", "colour=red"], "unknown log option 'colour'"),
        (["max-file=2"], "max-file needs max-size"),
        (["max-size=1k", "max-file=0"], "invalid max-file '0'"),
        (["max-size=lots"], "invalid size: 'lots'"),
    ],
)
def test_rotation_options_are_checked(options: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        logfile.Rotation.parse(options)
