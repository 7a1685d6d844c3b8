"""The `auth` config section, read into frozen values. Errors name the key and the value.

Distribution's keys: `htpasswd.{realm,path}` and `token.{realm,service,issuer,
rootcertbundle,jwks,signingalgorithms,autoredirect}`. Berth's own: `scheme`, `admins`,
`access`, `ratelimit`, `token.expiration`, `token.signingkey` (see README, Authentication).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from registry.auth.jws import ALGORITHMS
from registry.auth.policy import Policy, Rule
from registry.auth.scope import ALL_ACTIONS

__all__ = ["AuthConfig", "TokenConfig", "parse_auth_config"]

DEFAULT_SERVICE = "berth-registry"
DEFAULT_ISSUER = "berth-token-service"
_SECTION_KEYS = {"htpasswd", "token", "scheme", "admins", "access", "ratelimit"}
_TOKEN_KEYS = {
    "realm",
    "service",
    "issuer",
    "rootcertbundle",
    "jwks",
    "signingalgorithms",
    "autoredirect",
    "expiration",
    "signingkey",
}


@dataclass(frozen=True, slots=True)
class TokenConfig:
    realm: str | None  # None: <scheme>://<Host>/auth/token of each request
    service: str
    issuer: str
    rootcertbundle: Path | None
    jwks: Path | None
    algorithms: frozenset[str]
    expiration: int
    signingkey: Path | None  # None: <data dir>/auth/token-signing-key.pem

    @property
    def external(self) -> bool:
        """Tokens come from another issuer; the built-in token service is off."""
        return self.rootcertbundle is not None or self.jwks is not None


@dataclass(frozen=True, slots=True)
class AuthConfig:
    scheme: Literal["token", "basic"]
    htpasswd: Path | None
    basic_realm: str
    token: TokenConfig | None  # set exactly when scheme == "token"
    policy: Policy
    burst: int
    per_minute: float


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected a mapping, got {value!r}")
    return value


def _unknown(section: Mapping[str, Any], known: set[str], key: str) -> None:
    extra = sorted(set(section) - known)
    if extra:
        raise ValueError(f"{key}: unknown keys {extra}")


def _str(value: Any, key: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _str_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key}: expected a list of strings, got {value!r}")
    return value


def _number(value: Any, key: str, default: float, minimum: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"{key}: expected a number >= {minimum}, got {value!r}")
    return float(value)


def _path(value: Any, key: str) -> Path | None:
    return None if value is None else Path(_str(value, key))


def _rules(value: Any) -> tuple[Rule, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"auth.access: expected a list of rules, got {value!r}")
    rules = []
    for i, item in enumerate(value):
        key = f"auth.access[{i}]"
        rule = _mapping(item, key)
        _unknown(rule, {"users", "repositories", "actions"}, key)
        actions = _str_list(rule.get("actions"), f"{key}.actions")
        bad = sorted(set(actions) - ALL_ACTIONS - {"*"})
        if bad:
            raise ValueError(f"{key}.actions: unknown actions {bad} (pull, push, delete, *)")
        rules.append(
            Rule(
                frozenset(_str_list(rule.get("users"), f"{key}.users")),
                tuple(_str_list(rule.get("repositories"), f"{key}.repositories")),
                frozenset(actions),
            )
        )
    return tuple(rules)


def _token(section: Mapping[str, Any]) -> TokenConfig:
    _unknown(section, _TOKEN_KEYS, "auth.token")
    algorithms = frozenset(
        _str_list(
            section.get("signingalgorithms", sorted(ALGORITHMS)), "auth.token.signingalgorithms"
        )
    )
    if not algorithms <= ALGORITHMS:
        raise ValueError(
            f"auth.token.signingalgorithms: unsupported "
            f"{sorted(algorithms - ALGORITHMS)} (supported: {sorted(ALGORITHMS)})"
        )
    realm = section.get("realm")
    return TokenConfig(
        realm=None if realm is None else _str(realm, "auth.token.realm"),
        service=_str(section.get("service"), "auth.token.service", DEFAULT_SERVICE),
        issuer=_str(section.get("issuer"), "auth.token.issuer", DEFAULT_ISSUER),
        rootcertbundle=_path(section.get("rootcertbundle"), "auth.token.rootcertbundle"),
        jwks=_path(section.get("jwks"), "auth.token.jwks"),
        algorithms=algorithms,
        expiration=int(_number(section.get("expiration"), "auth.token.expiration", 300, 60)),
        signingkey=_path(section.get("signingkey"), "auth.token.signingkey"),
    )


def parse_auth_config(section: Mapping[str, Any]) -> AuthConfig | None:
    """None for an empty section: the registry is open."""
    section = _mapping(section, "auth")
    if not section:
        return None
    _unknown(section, _SECTION_KEYS, "auth")
    htpasswd = _mapping(section.get("htpasswd"), "auth.htpasswd")
    _unknown(htpasswd, {"realm", "path"}, "auth.htpasswd")
    htpasswd_path = _path(htpasswd.get("path"), "auth.htpasswd.path")
    if "htpasswd" in section and htpasswd_path is None:
        raise ValueError("auth.htpasswd.path: required")
    scheme = section.get("scheme", "token")
    if scheme not in ("token", "basic"):
        raise ValueError(f"auth.scheme: expected 'token' or 'basic', got {scheme!r}")
    token = None
    if scheme == "token":
        token = _token(_mapping(section.get("token"), "auth.token"))
        if token.external and htpasswd_path is not None:
            raise ValueError(
                "auth.htpasswd: not used when tokens come from an external "
                "issuer (auth.token.rootcertbundle or auth.token.jwks)"
            )
        if token.external and token.realm is None:
            raise ValueError("auth.token.realm: required with an external issuer")
        if not token.external and htpasswd_path is None:
            raise ValueError(
                "auth: set auth.htpasswd.path (built-in token service) or "
                "auth.token.rootcertbundle / auth.token.jwks (external issuer)"
            )
    else:
        if "token" in section:
            raise ValueError("auth.token: not used with auth.scheme: basic")
        if htpasswd_path is None:
            raise ValueError("auth.htpasswd.path: required with auth.scheme: basic")
    limits = _mapping(section.get("ratelimit"), "auth.ratelimit")
    _unknown(limits, {"burst", "per_minute"}, "auth.ratelimit")
    return AuthConfig(
        scheme=scheme,
        htpasswd=htpasswd_path,
        basic_realm=_str(htpasswd.get("realm"), "auth.htpasswd.realm", "Berth Registry"),
        token=token,
        policy=Policy(
            _rules(section.get("access")),
            frozenset(_str_list(section.get("admins", []), "auth.admins")),
        ),
        burst=int(_number(limits.get("burst"), "auth.ratelimit.burst", 10, 1)),
        per_minute=_number(limits.get("per_minute"), "auth.ratelimit.per_minute", 10, 0),
    )
