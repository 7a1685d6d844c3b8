import pytest

from runtime import ExecUser, UserError, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
app:x:1000:1000:app:/home/app:/bin/sh
svc:x:200:300::/srv:/bin/false
broken line
"""
GROUP = """root:x:0:
wheel:x:10:root,app
staff:x:50:app
app:x:1000:
svcgrp:x:300:
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ExecUser(0, 0, (0, 10), "/root")),
        ("", ExecUser(0, 0, (0, 10), "/root")),
        ("root", ExecUser(0, 0, (0, 10), "/root")),
        ("app", ExecUser(1000, 1000, (1000, 10, 50), "/home/app")),
        ("1000", ExecUser(1000, 1000, (1000, 10, 50), "/home/app")),
        ("app:staff", ExecUser(1000, 50, (50,), "/home/app")),
        ("app:77", ExecUser(1000, 77, (77,), "/home/app")),
        ("1234", ExecUser(1234, 0, (0,), "/")),
        ("1234:1234", ExecUser(1234, 1234, (1234,), "/")),
        ("svc", ExecUser(200, 300, (300,), "/srv")),
        ("root:app", ExecUser(0, 1000, (1000,), "/root")),
    ],
)
def test_users_resolve_as_docker_resolves_them(spec: str, expected: ExecUser) -> None:
    assert resolve_user(spec, PASSWD, GROUP) == expected


def test_unknown_names_are_errors() -> None:
    with pytest.raises(UserError, match="unable to find user nope"):
        resolve_user("nope", PASSWD, GROUP)
    with pytest.raises(UserError, match="unable to find group nope"):
        resolve_user("app:nope", PASSWD, GROUP)


def test_images_without_passwd_accept_numeric_ids_only() -> None:
    assert resolve_user("5:6", None, None) == ExecUser(5, 6, (6,), "/")
    assert resolve_user(None, None, None) == ExecUser(0, 0, (0,), "/")
    with pytest.raises(UserError):
        resolve_user("app", None, None)
