"""Token signing keys: the key Berth generates for its token service, and the keys of
issuers the registry trusts (a PEM certificate bundle or a JWKS file).

Key IDs follow libtrust, as Docker's token servers and Distribution compute them: SHA-256
of the DER SubjectPublicKeyInfo, the first 240 bits in base32, in twelve groups of four.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from registry.auth.jws import PrivateKey, PublicKey, b64url_decode

__all__ = [
    "TrustedKeys",
    "key_id",
    "load_jwks",
    "load_or_create_signing_key",
    "load_rootcertbundle",
    "write_certificate",
]


def key_id(key: PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def _as_public_key(key: object, source: str) -> PublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ValueError(f"{source}: only EC and RSA keys can verify tokens")
    return key


@dataclass
class TrustedKeys:
    """Public keys by key ID, and the certificates an `x5c` chain may end in."""

    by_kid: dict[str, PublicKey] = field(default_factory=dict)
    roots: list[x509.Certificate] = field(default_factory=list)

    def add(self, key: PublicKey, kid: str | None = None) -> None:
        self.by_kid[kid or key_id(key)] = key


def load_rootcertbundle(path: Path) -> TrustedKeys:
    """PEM certificates (Distribution's `rootcertbundle`); bare PEM public keys work too."""
    data = path.read_bytes()
    trusted = TrustedKeys()
    if b"CERTIFICATE-----" in data:
        for cert in x509.load_pem_x509_certificates(data):
            trusted.roots.append(cert)
            trusted.add(_as_public_key(cert.public_key(), str(path)))
    for block in data.split(b"-----END PUBLIC KEY-----")[:-1]:
        pem = block[block.index(b"-----BEGIN PUBLIC KEY-----") :] + b"-----END PUBLIC KEY-----\n"
        trusted.add(_as_public_key(serialization.load_pem_public_key(pem), str(path)))
    if not trusted.by_kid:
        raise ValueError(f"{path}: no certificate or public key found")
    return trusted


def _jwk_public_key(jwk: dict[str, object], source: str) -> PublicKey:
    def number(name: str) -> int:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise ValueError(f"{source}: JWK member {name!r} missing")
        return int.from_bytes(b64url_decode(value), "big")

    if jwk.get("kty") == "EC":
        curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
        curve = curves.get(str(jwk.get("crv")))
        if curve is None:
            raise ValueError(f"{source}: unsupported curve {jwk.get('crv')!r}")
        return ec.EllipticCurvePublicNumbers(number("x"), number("y"), curve).public_key()
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(number("e"), number("n")).public_key()
    raise ValueError(f"{source}: unsupported key type {jwk.get('kty')!r}")


def load_jwks(path: Path) -> TrustedKeys:
    """A JWK Set file (`{"keys": [...]}`); each key's `kid`, or its libtrust ID, names it."""
    document = json.loads(path.read_text(encoding="utf-8"))
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError(f"{path}: not a JWK Set with keys")
    trusted = TrustedKeys()
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise ValueError(f"{path}: each key must be a JSON object")
        kid = jwk.get("kid")
        trusted.add(_jwk_public_key(jwk, str(path)), kid if isinstance(kid, str) else None)
    return trusted


def load_or_create_signing_key(path: Path) -> PrivateKey:
    """Load the PEM private key at `path`, generating an EC P-256 key (mode 0600) if absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            os.fsync(f.fileno())
        try:  # another worker may have won the race: keep its key
            os.link(tmp, path)
        except FileExistsError:
            return load_or_create_signing_key(path)
        finally:
            tmp.unlink()
        return key
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: the token signing key must be EC or RSA")
    return loaded


def write_certificate(key: PrivateKey, path: Path, common_name: str) -> None:
    """A self-signed certificate for `key`, for registries that trust Berth's tokens
    through a `rootcertbundle` (CNCF Distribution, another Berth)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)
