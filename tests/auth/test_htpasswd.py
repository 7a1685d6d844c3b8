"""htpasswd files: parsing, checking, reloading, and `berth htpasswd add`."""

import os
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import pytest

from registry.auth.htpasswd import Htpasswd, parse_htpasswd, set_password


def entry(user: str, password: str, prefix: bytes = b"$2b$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4))
    return f"{user}:{(prefix + hashed[4:]).decode()}"


def test_parse_keeps_bcrypt_entries_only(caplog: pytest.LogCaptureFixture) -> None:
    text = "\n".join(
        [
            "# comment",
            "",
            entry("alice", "a", b"$2y$"),
            entry("bob", "b", b"$2a$"),
            "md5:$apr1$abc$def",
            "sha:{SHA}xyz",
            "garbage",
            entry("anonymous", "x"),
        ]
    )
    users = parse_htpasswd(text, "f")
    assert sorted(users) == ["alice", "bob"]
    assert "only bcrypt" in caplog.text
    assert "$apr1$" not in caplog.text  # hashes are not logged


def test_check_right_wrong_unknown(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "s3cret", b"$2y$") + "\n")
    users = Htpasswd(path)
    assert users.check("alice", "s3cret")
    assert users.check("alice", "s3cret")  # second time from the verified cache
    assert not users.check("alice", "wrong")
    assert not users.check("mallory", "s3cret")
    assert not users.check("alice", "x" * 100)  # over bcrypt's 72 bytes: refused, no crash


async def test_verify_is_async(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "pw") + "\n")
    assert await Htpasswd(path).verify("alice", "pw")


def test_missing_file_means_no_users(tmp_path: Path) -> None:
    users = Htpasswd(tmp_path / "absent")
    assert users.users() == frozenset()
    assert not users.check("alice", "pw")


def test_reload_on_change_invalidates_cached_logins(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "old") + "\n")
    users = Htpasswd(path)
    assert users.check("alice", "old")
    path.write_text(entry("alice", "new") + "\n" + entry("bob", "b") + "\n")
    future = time.time() + 5
    os.utime(path, (future, future))
    assert not users.check("alice", "old")
    assert users.check("alice", "new")
    assert users.check("bob", "b")


def test_set_password_creates_0600_and_updates_in_place(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "htpasswd"
    assert set_password(path, "alice", "one", cost=4) is True
    assert (path.stat().st_mode & 0o777) == 0o600
    assert set_password(path, "bob", "two", cost=4) is True
    assert set_password(path, "alice", "three", cost=4) is False
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "bob"]
    users = Htpasswd(path)
    assert users.check("alice", "three")
    assert not users.check("alice", "one")
    assert users.check("bob", "two")
    assert [p.name for p in path.parent.iterdir()] == ["htpasswd"]  # no temp file left


@pytest.mark.parametrize("user", ["", "a:b", "a b", "anonymous", "tab\tx"])
def test_set_password_refuses_bad_names(tmp_path: Path, user: str) -> None:
    with pytest.raises(ValueError, match=r"anonymous|invalid user"):
        set_password(tmp_path / "h", user, "pw", cost=4)


def berth(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "berth", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_command_add_from_stdin(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    result = berth(
        "htpasswd", "add", "--file", str(path), "--password-stdin", "alice", stdin="pa ss\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Added user alice in {path}\n"
    assert "pa ss" not in result.stdout + result.stderr
    result = berth("htpasswd", "add", "-f", str(path), "--password-stdin", "alice", stdin="other\n")
    assert result.stdout == f"Updated user alice in {path}\n"
    assert Htpasswd(path).check("alice", "other")


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    result = berth("htpasswd", "add", "-f", str(path), "--password-stdin", "bad:name", stdin="x\n")
    assert result.returncode == 1
    assert result.stderr.startswith("berth htpasswd: invalid user name")
    result = berth("htpasswd", "add", "-f", str(path), "--password-stdin", "u", stdin="\n")
    assert (result.returncode, result.stderr) == (1, "berth htpasswd: empty password\n")
    result = berth("htpasswd", "add", "-f", str(path), "u")  # stdin is not a terminal
    assert result.returncode == 1
    assert "--password-stdin" in result.stderr
    assert not path.exists()


@pytest.mark.e2e
def test_apache_htpasswd_interoperates(tmp_path: Path) -> None:
    """Entries `htpasswd -B` writes are read by Berth, and Berth's entries verify with it."""
    path = tmp_path / "htpasswd"
    subprocess.run(
        ["htpasswd", "-cbB", str(path), "apache", "from-apache"], check=True, capture_output=True
    )
    assert path.read_text().startswith("apache:$2y$")
    assert Htpasswd(path).check("apache", "from-apache")
    set_password(path, "berth", "from-berth", cost=5)
    subprocess.run(
        ["htpasswd", "-vb", str(path), "berth", "from-berth"], check=True, capture_output=True
    )
    wrong = subprocess.run(
        ["htpasswd", "-vb", str(path), "berth", "nope"], capture_output=True, check=False
    )
    assert wrong.returncode != 0
    users = Htpasswd(path)
    assert users.check("apache", "from-apache")
    assert users.check("berth", "from-berth")
