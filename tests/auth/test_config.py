"""The `auth` config section: modes, defaults, and errors that name the key."""

from pathlib import Path
from typing import Any

import pytest

from registry.auth.config import DEFAULT_ISSUER, DEFAULT_SERVICE, parse_auth_config
from registry.auth.scope import ALL_ACTIONS


def test_empty_section_means_open() -> None:
    assert parse_auth_config({}) is None


def test_htpasswd_alone_turns_on_the_token_service() -> None:
    config = parse_auth_config({"htpasswd": {"realm": "r", "path": "/etc/h"}})
    assert config is not None
    assert config.scheme == "token"
    assert config.htpasswd == Path("/etc/h")
    assert config.basic_realm == "r"
    assert config.token is not None
    assert not config.token.external
    assert (config.token.service, config.token.issuer) == (DEFAULT_SERVICE, DEFAULT_ISSUER)
    assert config.token.realm is None
    assert config.token.expiration == 300
    assert config.policy.rules is None
    assert config.policy.repository_actions("anyone", "x") == ALL_ACTIONS
    assert (config.burst, config.per_minute) == (10, 10.0)


def test_basic_scheme_and_full_section() -> None:
    config = parse_auth_config(
        {
            "scheme": "basic",
            "htpasswd": {"path": "/h"},
            "admins": ["root"],
            "access": [
                {"users": ["anonymous"], "repositories": ["public/**"], "actions": ["pull"]},
                {"users": "ci", "repositories": "**", "actions": ["*"]},
            ],
            "ratelimit": {"burst": 3, "per_minute": 1.5},
        }
    )
    assert config is not None
    assert config.scheme == "basic"
    assert config.token is None
    assert config.policy.repository_actions(None, "public/a/b") == {"pull"}
    assert config.policy.repository_actions("ci", "x/y") == ALL_ACTIONS
    assert config.policy.repository_actions("root", "x") == ALL_ACTIONS
    assert config.policy.repository_actions("other", "x") == frozenset()
    assert (config.burst, config.per_minute) == (3, 1.5)


def test_external_issuer() -> None:
    config = parse_auth_config(
        {
            "token": {
                "realm": "https://auth.example.com/token",
                "service": "reg",
                "issuer": "gitlab",
                "rootcertbundle": "/certs/bundle.pem",
                "signingalgorithms": ["RS256"],
                "autoredirect": False,
            }
        }
    )
    assert config is not None
    assert config.token is not None
    assert config.token.external
    assert config.token.algorithms == {"RS256"}
    assert config.htpasswd is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"htpasswd": {}}, "auth.htpasswd.path: required"),
        ({"silly": {}}, r"auth: unknown keys \['silly'\]"),
        ({"htpasswd": {"path": "/h", "extra": 1}}, r"auth.htpasswd: unknown keys \['extra'\]"),
        ({"token": {}}, "auth: set auth.htpasswd.path"),
        ({"token": {"rootcertbundle": "/b"}}, "auth.token.realm: required"),
        ({"htpasswd": {"path": "/h"}, "token": {"jwks": "/j", "realm": "x"}}, "external issuer"),
        ({"scheme": "ldap"}, "auth.scheme: expected 'token' or 'basic'"),
        ({"scheme": "basic", "htpasswd": {"path": "/h"}, "token": {}}, "auth.token: not used"),
        ({"htpasswd": {"path": "/h"}, "token": {"expiration": 10}}, "auth.token.expiration"),
        (
            {"htpasswd": {"path": "/h"}, "token": {"signingalgorithms": ["HS256"]}},
            r"unsupported \['HS256'\]",
        ),
        ({"htpasswd": {"path": "/h"}, "token": {"service": ""}}, "auth.token.service"),
        (
            {
                "htpasswd": {"path": "/h"},
                "access": [{"users": ["u"], "repositories": ["*"], "actions": ["write"]}],
            },
            r"auth.access\[0\].actions: unknown actions \['write'\]",
        ),
        (
            {"htpasswd": {"path": "/h"}, "access": [{"users": ["u"], "actions": ["pull"]}]},
            r"auth.access\[0\].repositories",
        ),
        ({"htpasswd": {"path": "/h"}, "access": {"u": "x"}}, "auth.access: expected a list"),
        ({"htpasswd": {"path": "/h"}, "ratelimit": {"burst": 0}}, "auth.ratelimit.burst"),
        ({"htpasswd": "yes"}, "auth.htpasswd: expected a mapping"),
    ],
)
def test_errors_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_auth_config(section)
