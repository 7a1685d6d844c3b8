"""Compact JWS signing and signature checks for ES256/384/512 and RS256/384/512.

Only asymmetric algorithms are known here, so `none` and the HMAC family can never verify.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = [
    "ALGORITHMS",
    "MalformedToken",
    "PrivateKey",
    "PublicKey",
    "Unverified",
    "algorithm_for",
    "b64url_decode",
    "b64url_encode",
    "decode",
    "sign",
    "signature_valid",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
ALGORITHMS = frozenset({*_CURVES, "RS256", "RS384", "RS512"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class MalformedToken(ValueError):
    """Not a compact JWS: wrong shape, bad base64 or JSON."""


@dataclass(frozen=True, slots=True)
class Unverified:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise MalformedToken("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise MalformedToken("invalid base64url") from exc


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    for alg, curve in _CURVES.items():
        if isinstance(key.curve, curve):
            return alg
    raise ValueError(f"unsupported elliptic curve {key.curve.name}")


def _coordinate_size(alg: str) -> int:
    return {"ES256": 32, "ES384": 48, "ES512": 66}[alg]


def sign(header: Mapping[str, Any], claims: Mapping[str, Any], key: PrivateKey) -> str:
    """Serialise and sign; `alg` and `typ` are set from the key."""
    alg = algorithm_for(key)
    full_header = {"typ": "JWT", "alg": alg, **{k: v for k, v in header.items() if k != "alg"}}
    signing_input = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":")).encode())
        for part in (full_header, claims)
    ).encode("ascii")
    digest = _HASHES[alg[2:]]()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), digest)
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        size = _coordinate_size(alg)
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


def decode(token: str) -> Unverified:
    """Split and parse without checking anything but the shape."""
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("a JWS has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedToken("invalid JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedToken("header and claims must be JSON objects")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return Unverified(header, claims, signing_input, b64url_decode(parts[2]))


def signature_valid(alg: str, key: PublicKey, signing_input: bytes, signature: bytes) -> bool:
    """Whether `signature` is `alg` over `signing_input` by `key`; False for any other alg."""
    if alg not in ALGORITHMS:
        return False
    digest = _HASHES[alg[2:]]()
    try:
        if alg.startswith("RS"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(signature, signing_input, padding.PKCS1v15(), digest)
            return True
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, _CURVES[alg]
        ):
            return False
        size = _coordinate_size(alg)
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False
