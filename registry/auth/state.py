"""What `install` builds once per app: the parsed config, the user database, the token
issuer and verifier, and the login limiter; and the caller's identity per request."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509

from registry.auth.config import AuthConfig
from registry.auth.htpasswd import Htpasswd
from registry.auth.jws import PrivateKey
from registry.auth.keys import (
    TrustedKeys,
    key_id,
    load_jwks,
    load_or_create_signing_key,
    load_rootcertbundle,
    write_certificate,
)
from registry.auth.keystore import load_shared_signing_key
from registry.auth.ratelimit import LoginLimiter
from registry.auth.tokens import Claims, TokenIssuer, TokenVerifier
from registry.db import Database

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
    trusted_proxies: tuple[str, ...] = ()  # http.trustedproxies: whose X-Forwarded-For counts


AUTH = web.AppKey("berth.auth", AuthState)
IDENTITY = web.RequestKey("berth.auth.identity", Identity)


def build_state(
    config: AuthConfig, data_dir: Path, db: Database, trusted_proxies: tuple[str, ...] = ()
) -> AuthState:
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
            if token.signingkey is not None:
                key = load_or_create_signing_key(token.signingkey)
                cert_path = token.signingkey.with_name("token-signing-cert.pem")
            else:  # one key for every replica, in the database
                default_file = data_dir / "auth" / "token-signing-key.pem"
                key = load_shared_signing_key(db.url, seed=default_file)
                cert_path = default_file.with_name("token-signing-cert.pem")
            if not _certifies(cert_path, key):  # for registries that should trust these tokens
                cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                write_certificate(key, cert_path, token.issuer)
            trusted.add(key.public_key())
            issuer = TokenIssuer(key, token.issuer, token.service, token.expiration)
        verifier = TokenVerifier(trusted, token.issuer, token.service, token.algorithms)
    limiter = LoginLimiter(db, config.burst, config.per_minute)
    return AuthState(config, htpasswd, issuer, verifier, limiter, trusted_proxies)


def _certifies(cert_path: Path, key: PrivateKey) -> bool:
    """Whether the certificate at `cert_path` is for `key` (absent: no)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    return key_id(cert.public_key()) == key_id(key.public_key())  # type: ignore[arg-type]  # EC or RSA, as ours


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
