"""Bearer tokens as the Docker token spec defines them: issuing and verifying JWTs.

A token is accepted only if all of these hold: its header has no `crit` (RFC 7515 requires
refusing critical extensions one does not implement, and Berth implements none); its `alg`
is an allowed asymmetric algorithm; its signing key is trusted (by `kid`, by a `jwk` header
whose key is trusted, or by an `x5c` chain ending in a trusted certificate); the signature
is valid; `iss` is the configured issuer and `aud` names this service; the current time
lies within `nbf`..`exp` give or take a small leeway; and `access` is well formed. Whether
its access covers a request is the caller's question (`Claims.covers`).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import itertools
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from registry.auth import jws
from registry.auth.keys import TrustedKeys, _jwk_public_key, key_id
from registry.auth.scope import Access

__all__ = ["Claims", "InvalidToken", "IssuedToken", "TokenIssuer", "TokenVerifier"]

LEEWAY = 30


class InvalidToken(Exception):
    """Why a token was refused (safe to show the caller: it names no secret)."""


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    access: tuple[Access, ...]

    def covers(self, required: Access) -> bool:
        return any(granted.covers(required) for granted in self.access)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    key: jws.PrivateKey
    issuer: str
    service: str
    lifetime: int = 300

    def issue(
        self, subject: str, access: Sequence[Access], now: float | None = None
    ) -> IssuedToken:
        now_s = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now_s + self.lifetime,
            "nbf": now_s,
            "iat": now_s,
            "jti": secrets.token_urlsafe(18),
            "access": [a.claim() for a in access],
        }
        token = jws.sign({"kid": key_id(self.key.public_key())}, claims, self.key)
        issued_at = datetime.datetime.fromtimestamp(now_s, datetime.UTC)
        return IssuedToken(token, self.lifetime, issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _parse_access(value: Any) -> tuple[Access, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidToken("access claim must be a list")
    entries = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidToken("access entries must be objects")
        type_, name, actions = item.get("type"), item.get("name"), item.get("actions")
        if (
            not isinstance(type_, str)
            or not isinstance(name, str)
            or not isinstance(actions, list)
            or not all(isinstance(a, str) for a in actions)
        ):
            raise InvalidToken("access entry needs type, name and a list of actions")
        entries.append(Access(type_.split("(")[0], name, frozenset(actions)))
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    trusted: TrustedKeys
    issuer: str
    service: str
    algorithms: frozenset[str] = jws.ALGORITHMS

    def verify(self, token: str, now: float | None = None) -> Claims:
        try:
            parsed = jws.decode(token)
        except jws.MalformedToken as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if "crit" in parsed.header:  # RFC 7515 4.1.11: no extension is understood here
            raise InvalidToken("token header names critical extensions this registry lacks")
        alg = parsed.header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms & jws.ALGORITHMS:
            raise InvalidToken(f"signing algorithm {alg!r} is not accepted")
        key = self._signing_key(parsed.header)
        if not jws.signature_valid(alg, key, parsed.signing_input, parsed.signature):
            raise InvalidToken("invalid signature")
        claims = parsed.claims
        if claims.get("iss") != self.issuer:
            raise InvalidToken("token issuer is not trusted")
        aud = claims.get("aud")
        if not (aud == self.service or (isinstance(aud, list) and self.service in aud)):
            raise InvalidToken("token audience is not this registry")
        self._check_times(claims, time.time() if now is None else now)
        subject = claims.get("sub", "")
        if not isinstance(subject, str):
            raise InvalidToken("sub claim must be a string")
        return Claims(subject, _parse_access(claims.get("access")))

    @staticmethod
    def _check_times(claims: dict[str, Any], now: float) -> None:
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise InvalidToken("token has no expiry")
        if now > exp + LEEWAY:
            raise InvalidToken("token has expired")
        if nbf is not None:
            if not isinstance(nbf, int | float) or isinstance(nbf, bool):
                raise InvalidToken("nbf claim must be a number")
            if now < nbf - LEEWAY:
                raise InvalidToken("token is not valid yet")

    def _signing_key(self, header: dict[str, Any]) -> jws.PublicKey:
        if "x5c" in header:
            return self._chain_key(header["x5c"])
        if "jwk" in header:
            if not isinstance(header["jwk"], dict):
                raise InvalidToken("jwk header must be an object")
            try:
                key = _jwk_public_key(header["jwk"], "token jwk header")
            except (ValueError, jws.MalformedToken) as exc:
                raise InvalidToken(str(exc)) from exc
            if key_id(key) not in self.trusted.by_kid:
                raise InvalidToken("token signing key is not trusted")
            return self.trusted.by_kid[key_id(key)]
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token names no signing key (kid, jwk or x5c)")
        trusted = self.trusted.by_kid.get(kid)
        if trusted is None:
            raise InvalidToken("token signing key is not trusted")
        return trusted

    def _chain_key(self, x5c: Any) -> jws.PublicKey:
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise InvalidToken("x5c header must be a list of certificates")
        try:
            chain = [
                x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c
            ]
        except (ValueError, binascii.Error) as exc:
            raise InvalidToken("invalid x5c certificate") from exc
        now = datetime.datetime.now(datetime.UTC)
        for cert in chain:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise InvalidToken("x5c certificate is outside its validity period")
        try:
            for child, parent in itertools.pairwise(chain):
                child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise InvalidToken("x5c chain does not verify") from exc
        if not _ends_in(chain[-1], self.trusted.roots):
            raise InvalidToken("x5c chain does not end in a trusted certificate")
        key = chain[0].public_key()
        if not isinstance(key, jws.PublicKey):
            raise InvalidToken("x5c leaf key is neither EC nor RSA")
        return key


def _ends_in(last: x509.Certificate, roots: Iterable[x509.Certificate]) -> bool:
    for root in roots:
        if last == root:
            return True
        try:
            last.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
