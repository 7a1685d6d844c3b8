"""JWT issue and verify: every kind of bad token is refused."""

import base64
import datetime
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from registry.auth import jws
from registry.auth.keys import (
    TrustedKeys,
    key_id,
    load_jwks,
    load_or_create_signing_key,
    load_rootcertbundle,
    write_certificate,
)
from registry.auth.scope import Access
from registry.auth.tokens import InvalidToken, TokenIssuer, TokenVerifier

PULL_A = Access("repository", "team/a", frozenset({"pull"}))
PUSH_A = Access("repository", "team/a", frozenset({"push"}))


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def issuer(key: ec.EllipticCurvePrivateKey) -> TokenIssuer:
    return TokenIssuer(key, "berth-issuer", "berth-service", lifetime=300)


@pytest.fixture
def verifier(key: ec.EllipticCurvePrivateKey) -> TokenVerifier:
    trusted = TrustedKeys()
    trusted.add(key.public_key())
    return TokenVerifier(trusted, "berth-issuer", "berth-service")


def claims_of(token: str) -> dict[str, object]:
    return jws.decode(token).claims


def test_issued_token_has_the_spec_fields(
    issuer: TokenIssuer, key: ec.EllipticCurvePrivateKey
) -> None:
    issued = issuer.issue(
        "alice", [Access("repository", "team/a", frozenset({"pull", "push"}))], now=1_700_000_000
    )
    parsed = jws.decode(issued.token)
    assert parsed.header == {"typ": "JWT", "alg": "ES256", "kid": key_id(key.public_key())}
    claims = parsed.claims
    assert {k: claims[k] for k in ("iss", "sub", "aud", "exp", "nbf", "iat")} == {
        "iss": "berth-issuer",
        "sub": "alice",
        "aud": "berth-service",
        "exp": 1_700_000_300,
        "nbf": 1_700_000_000,
        "iat": 1_700_000_000,
    }
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert claims["access"] == [
        {"type": "repository", "name": "team/a", "actions": ["pull", "push"]}
    ]
    assert issued.expires_in == 300
    assert issued.issued_at == "2023-11-14T22:13:20Z"
    assert jws.decode(issuer.issue("alice", []).token).claims["jti"] != claims["jti"]


def test_valid_token_verifies_and_covers_its_scope(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    claims = verifier.verify(issuer.issue("alice", [PULL_A]).token)
    assert claims.subject == "alice"
    assert claims.covers(PULL_A)
    assert not claims.covers(PUSH_A)  # out of scope
    assert not claims.covers(Access("repository", "team/b", frozenset({"pull"})))


def test_key_id_is_libtrust_format(key: ec.EllipticCurvePrivateKey) -> None:
    kid = key_id(key.public_key())
    groups = kid.split(":")
    assert len(groups) == 12
    assert all(len(g) == 4 and g.isalnum() and g.upper() == g for g in groups)


def refused(verifier: TokenVerifier, token: str, reason: str, now: float | None = None) -> None:
    with pytest.raises(InvalidToken, match=reason):
        verifier.verify(token, now=now)


def test_tampered_claims_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    header, payload, signature = issuer.issue("alice", [PULL_A]).token.split(".")
    claims = json.loads(jws.b64url_decode(payload))
    claims["access"][0]["actions"] = ["pull", "push"]
    forged = jws.b64url_encode(json.dumps(claims).encode())
    refused(verifier, f"{header}.{forged}.{signature}", "invalid signature")


def test_tampered_signature_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    header, payload, signature = issuer.issue("alice", [PULL_A]).token.split(".")
    raw = bytearray(jws.b64url_decode(signature))
    raw[10] ^= 0x01
    refused(verifier, f"{header}.{payload}.{jws.b64url_encode(bytes(raw))}", "invalid signature")
    refused(verifier, f"{header}.{payload}.", "invalid signature")


def test_expired_refused_beyond_leeway(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("alice", [PULL_A], now=1_000_000).token
    assert verifier.verify(token, now=1_000_000 + 300 + 20).subject == "alice"  # within leeway
    refused(verifier, token, "expired", now=1_000_000 + 300 + 31)


def test_not_yet_valid_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("alice", [PULL_A], now=2_000_000).token
    assert verifier.verify(token, now=2_000_000 - 20).subject == "alice"
    refused(verifier, token, "not valid yet", now=2_000_000 - 31)


def test_wrong_audience_refused(key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier) -> None:
    token = TokenIssuer(key, "berth-issuer", "other-registry").issue("alice", [PULL_A]).token
    refused(verifier, token, "audience")


def test_audience_list_accepted(key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier) -> None:
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    token = jws.sign(
        {"kid": key_id(key.public_key())},
        {
            "iss": "berth-issuer",
            "aud": ["x", "berth-service"],
            "sub": "u",
            "exp": now + 60,
            "access": [],
        },
        key,
    )
    assert verifier.verify(token).subject == "u"


def test_wrong_issuer_refused(key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier) -> None:
    token = TokenIssuer(key, "evil-issuer", "berth-service").issue("alice", [PULL_A]).token
    refused(verifier, token, "issuer")


def test_wrong_key_refused(verifier: TokenVerifier) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = TokenIssuer(other, "berth-issuer", "berth-service").issue("alice", [PULL_A]).token
    refused(verifier, token, "not trusted")


def test_wrong_key_claiming_the_trusted_kid_refused(
    key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    token = jws.sign(
        {"kid": key_id(key.public_key())},
        {
            "iss": "berth-issuer",
            "aud": "berth-service",
            "sub": "alice",
            "exp": now + 60,
            "access": [PUSH_A.claim()],
        },
        other,
    )
    refused(verifier, token, "invalid signature")


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    return ".".join(jws.b64url_encode(json.dumps(p).encode()) for p in (header, claims))


def test_alg_none_refused(key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier) -> None:
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    claims = {
        "iss": "berth-issuer",
        "aud": "berth-service",
        "sub": "alice",
        "exp": now + 60,
        "access": [PUSH_A.claim()],
    }
    for alg in ("none", "None", "NONE"):
        token = _unsigned({"alg": alg, "typ": "JWT", "kid": key_id(key.public_key())}, claims)
        refused(verifier, token + ".", "not accepted")


def test_hmac_with_the_public_key_as_secret_refused(
    key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier
) -> None:
    """The classic algorithm-confusion forgery."""
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    signing_input = _unsigned(
        {"alg": "HS256", "typ": "JWT", "kid": key_id(key.public_key())},
        {
            "iss": "berth-issuer",
            "aud": "berth-service",
            "sub": "alice",
            "exp": now + 60,
            "access": [PUSH_A.claim()],
        },
    )
    secret = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    refused(verifier, f"{signing_input}.{jws.b64url_encode(mac)}", "not accepted")


def test_disallowed_algorithm_refused(key: ec.EllipticCurvePrivateKey) -> None:
    trusted = TrustedKeys()
    trusted.add(key.public_key())
    verifier = TokenVerifier(trusted, "i", "s", algorithms=frozenset({"RS256"}))
    refused(verifier, TokenIssuer(key, "i", "s").issue("u", []).token, "not accepted")


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30", "W10.e30.AA"])
def test_malformed_refused(verifier: TokenVerifier, token: str) -> None:
    refused(verifier, token, "malformed|names no signing key|not accepted")


def test_missing_expiry_refused(key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier) -> None:
    token = jws.sign(
        {"kid": key_id(key.public_key())},
        {"iss": "berth-issuer", "aud": "berth-service", "sub": "u"},
        key,
    )
    refused(verifier, token, "no expiry")


def test_malformed_access_refused(key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier) -> None:
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    token = jws.sign(
        {"kid": key_id(key.public_key())},
        {
            "iss": "berth-issuer",
            "aud": "berth-service",
            "sub": "u",
            "exp": now + 60,
            "access": [{"type": "repository", "name": "x", "actions": "pull"}],
        },
        key,
    )
    refused(verifier, token, "access entry")


@pytest.mark.parametrize("curve_or_rsa", ["P-384", "P-521", "RSA"])
def test_other_key_types_round_trip(curve_or_rsa: str) -> None:
    key: jws.PrivateKey
    if curve_or_rsa == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP384R1() if curve_or_rsa == "P-384" else ec.SECP521R1())
    trusted = TrustedKeys()
    trusted.add(key.public_key())
    token = TokenIssuer(key, "i", "s").issue("u", [PULL_A]).token
    assert TokenVerifier(trusted, "i", "s").verify(token).covers(PULL_A)


def test_signing_key_created_once_0600(tmp_path: Path) -> None:
    path = tmp_path / "auth" / "key.pem"
    first = load_or_create_signing_key(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    second = load_or_create_signing_key(path)
    assert key_id(first.public_key()) == key_id(second.public_key())
    assert sorted(p.name for p in path.parent.iterdir()) == ["key.pem"]


def test_rootcertbundle_and_jwks_trust_external_issuers(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_certificate(ec_key, tmp_path / "ec.crt", "issuer")
    pub = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "bundle.pem").write_bytes((tmp_path / "ec.crt").read_bytes() + pub)
    bundle = load_rootcertbundle(tmp_path / "bundle.pem")
    assert set(bundle.by_kid) == {key_id(ec_key.public_key()), key_id(rsa_key.public_key())}
    for key in (ec_key, rsa_key):
        token = TokenIssuer(key, "ext", "reg").issue("u", [PULL_A]).token
        assert TokenVerifier(bundle, "ext", "reg").verify(token).subject == "u"

    numbers = ec_key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "kid": "my-key-1",
        "x": jws.b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": jws.b64url_encode(numbers.y.to_bytes(32, "big")),
    }
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    jwks = load_jwks(tmp_path / "jwks.json")
    token = jws.sign(
        {"kid": "my-key-1"}, {"iss": "ext", "aud": "reg", "sub": "u", "exp": 4_000_000_000}, ec_key
    )
    assert TokenVerifier(jwks, "ext", "reg").verify(token).subject == "u"
    default_kid = TokenIssuer(ec_key, "ext", "reg").issue("u", []).token
    refused(TokenVerifier(jwks, "ext", "reg"), default_kid, "not trusted")


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer_name: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def test_x5c_chain_to_a_trusted_root(tmp_path: Path) -> None:
    root_key, leaf_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("root", root_key, "root", root_key, ca=True)
    leaf = _cert("signer", leaf_key, "root", root_key, ca=False)
    rogue_root = _cert("root", rogue_key, "root", rogue_key, ca=True)
    rogue_leaf = _cert("signer", leaf_key, "root", rogue_key, ca=False)
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    verifier = TokenVerifier(load_rootcertbundle(tmp_path / "root.pem"), "ext", "reg")

    def x5c(*certs: x509.Certificate) -> list[str]:
        return [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certs
        ]

    claims = {"iss": "ext", "aud": "reg", "sub": "u", "exp": 4_000_000_000}
    assert verifier.verify(jws.sign({"x5c": x5c(leaf)}, claims, leaf_key)).subject == "u"
    assert verifier.verify(jws.sign({"x5c": x5c(leaf, root)}, claims, leaf_key)).subject == "u"
    refused(
        verifier,
        jws.sign({"x5c": x5c(rogue_leaf, rogue_root)}, claims, leaf_key),
        "does not end in a trusted",
    )
    refused(verifier, jws.sign({"x5c": x5c(leaf)}, claims, rogue_key), "invalid signature")
    refused(verifier, jws.sign({"x5c": ["!!"]}, claims, leaf_key), "invalid x5c")


def test_key_id_matches_the_spec_example(tmp_path: Path) -> None:
    """jwt.md's example key has the libtrust key ID the spec prints for it."""
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q",
        "y": "dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc",
    }
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    trusted = load_jwks(tmp_path / "jwks.json")
    assert list(trusted.by_kid) == ["PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"]


def test_jwk_header_must_name_a_trusted_key(
    key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier
) -> None:
    def jwk_of(k: ec.EllipticCurvePrivateKey) -> dict[str, str]:
        numbers = k.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": jws.b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": jws.b64url_encode(numbers.y.to_bytes(32, "big")),
        }

    claims = {"iss": "berth-issuer", "aud": "berth-service", "sub": "u", "exp": 4_000_000_000}
    assert verifier.verify(jws.sign({"jwk": jwk_of(key)}, claims, key)).subject == "u"
    rogue = ec.generate_private_key(ec.SECP256R1())
    refused(verifier, jws.sign({"jwk": jwk_of(rogue)}, claims, rogue), "not trusted")
