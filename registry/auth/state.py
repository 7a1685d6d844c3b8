"""What `install` builds once per app: the parsed config, the user database, the token
issuer and verifier, and the login limiter; and the caller's identity per request."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from registry.auth.config import AuthConfig
from registry.auth.htpasswd import Htpasswd
from registry.auth.keys import (
    TrustedKeys,
    load_jwks,
    load_or_create_signing_key,
    load_rootcertbundle,
    write_certificate,
)
from registry.auth.ratelimit import LoginLimiter
from registry.auth.tokens import Claims, TokenIssuer, TokenVerifier

__all__ = ["AUTH", "IDENTITY", "AuthState", "Identity", "basic_credentials", "build_state"]

log = logging.getLogger("berth.auth")


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller: `user` None when anonymous; `claims` when it presented a bearer token."""

    user: str | None
    claims: Claims | None = None


@dataclass(frozen=True, slots=True)
class AuthState:
    config: AuthConfig
    htpasswd: Htpasswd | None
    issuer: TokenIssuer | None  # the built-in token service, when it is on
    verifier: TokenVerifier | None
    limiter: LoginLimiter


AUTH = web.AppKey("berth.auth", AuthState)
IDENTITY = web.RequestKey("berth.auth.identity", Identity)


def build_state(config: AuthConfig, data_dir: Path) -> AuthState:
    htpasswd = Htpasswd(config.htpasswd) if config.htpasswd is not None else None
    if htpasswd is not None and not htpasswd.users():
        log.warning("%s has no usable entries: nobody can log in", config.htpasswd)
    issuer = verifier = None
    token = config.token
    if token is not None:
        trusted = TrustedKeys()
        if token.external:
            if token.rootcertbundle is not None:
                trusted = load_rootcertbundle(token.rootcertbundle)
            if token.jwks is not None:
                trusted.by_kid.update(load_jwks(token.jwks).by_kid)
        else:
            key_path = token.signingkey or data_dir / "auth" / "token-signing-key.pem"
            key = load_or_create_signing_key(key_path)
            cert_path = key_path.with_name("token-signing-cert.pem")
            if not cert_path.exists():  # for registries that should trust these tokens
                write_certificate(key, cert_path, token.issuer)
            trusted.add(key.public_key())
            issuer = TokenIssuer(key, token.issuer, token.service, token.expiration)
        verifier = TokenVerifier(trusted, token.issuer, token.service, token.algorithms)
    return AuthState(
        config, htpasswd, issuer, verifier, LoginLimiter(config.burst, config.per_minute)
    )


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` value; None if malformed."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 underneath
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep and user else None
