"""A pull from a registry that demands Bearer tokens (Docker token auth spec): CNCF
Distribution with `auth: token`, and a token issuer in the test (aiohttp, ES256 JWTs signed
by a key whose certificate is Distribution's rootcertbundle)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support import images as img
from tests.support.server import RunningServer, berth_executable, free_port, start_distribution

pytestmark = pytest.mark.e2e

SERVICE = "berth-puller-test"
ISSUER = "berth-puller-test-issuer"
USER, PASSWORD = "puller", "s3cret:with:colons"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    requests: list[dict[str, str]] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)  # repositories granted nothing

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def token(self, access: list[dict[str, Any]]) -> str:
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": USER,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "scope": " ".join(request.query.getall("scope", [])),
                "service": request.query.get("service", ""),
                "authorization": request.headers.get("Authorization", ""),
            }
        )
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"details": "bad credentials"}, status=401)
        access = []
        for scope in request.query.getall("scope", []):
            kind, name, actions = scope.split(":")
            if name not in self.denied:
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        return web.json_response({"token": self.token(access), "expires_in": 300})


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def token_registry(tmp_path: Path, issuer: TokenIssuer) -> Iterator[tuple[RunningServer, int]]:
    bundle = tmp_path / "root.pem"
    bundle.write_bytes(issuer.cert_pem())
    token_port = free_port()
    server = start_distribution(
        tmp_path / "registry",
        extra_config=(
            f"auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n"
            f"    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
        ),
    )
    try:
        yield server, token_port
    finally:
        server.stop()


async def _berth(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        berth_executable(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def _serve_tokens_and_push(
    issuer: TokenIssuer,
    token_port: int,
    aiohttp_server: Any,
    registry: RunningServer,
    repository: str,
    layer_count: int,
) -> img.Image:
    """Start the token service, and push an image of `layer_count` layers as `repository:v1`."""
    app = web.Application()
    app.router.add_get("/token", issuer.handle)
    await aiohttp_server(app, port=token_port)
    layers = [
        img.build_layer([img.file(f"layer{i}", bytes([i]) * 1000)]) for i in range(layer_count)
    ]
    image = img.build_image(layers)
    push_token = issuer.token(
        [{"type": "repository", "name": repository, "actions": ["pull", "push"]}]
    )
    await asyncio.to_thread(
        img.push_image,
        registry.url,
        repository,
        "v1",
        image,
        headers={"Authorization": f"Bearer {push_token}"},
    )
    return image


async def test_pull_through_bearer_token_auth(
    token_registry: tuple[RunningServer, int],
    issuer: TokenIssuer,
    tmp_path: Path,
    aiohttp_server: Any,
) -> None:
    registry, token_port = token_registry
    image = await _serve_tokens_and_push(
        issuer, token_port, aiohttp_server, registry, "puller/auth", 3
    )
    reference = f"{registry.host}/puller/auth:v1"
    root = str(tmp_path / "state")
    empty_config = tmp_path / "no-docker-config"
    empty_config.mkdir()

    code, _, err = await _berth(
        "pull", "--root", root, reference, env={"DOCKER_CONFIG": str(empty_config)}
    )
    assert code == 1
    assert err.startswith("berth pull: token service http://127.0.0.1:")
    assert "refused scope 'repository:puller/auth:pull': 401" in err

    issuer.requests.clear()
    code, out, err = await _berth(
        "pull",
        "--root",
        root,
        "--user",
        f"{USER}:{PASSWORD}",
        reference,
        env={"DOCKER_CONFIG": str(empty_config)},
    )
    assert code == 0, err
    assert f"Digest: {image.digest}" in out
    # one token for the pull scope, reused for the manifest, the config and all layers
    assert issuer.requests == [
        {
            "scope": "repository:puller/auth:pull",
            "service": SERVICE,
            "authorization": issuer.requests[0]["authorization"],
        }
    ]

    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {f"http://{registry.host}": {"auth": auth}}})
    )
    other_root = str(tmp_path / "state2")
    code, out, err = await _berth(
        "pull", "--root", other_root, reference, env={"DOCKER_CONFIG": str(docker_config)}
    )
    assert code == 0, err
    assert out.count("downloaded") == 3


async def test_push_asks_for_push_and_mount_scopes(
    token_registry: tuple[RunningServer, int],
    issuer: TokenIssuer,
    tmp_path: Path,
    aiohttp_server: Any,
) -> None:
    """`berth push` to Distribution behind a token service: one token for pull,push of the
    target, and for the mounts one that also names the source (Distribution checks pull
    access to `from`); every layer is mounted from where the image was pulled."""
    registry, token_port = token_registry
    image = await _serve_tokens_and_push(
        issuer, token_port, aiohttp_server, registry, "puller/source", 2
    )
    root = str(tmp_path / "state")
    user = ["--user", f"{USER}:{PASSWORD}"]
    env = {"DOCKER_CONFIG": str(tmp_path / "no-docker-config")}
    code, _, err = await _berth(
        "pull", "--root", root, *user, f"{registry.host}/puller/source:v1", env=env
    )
    assert code == 0, err
    target = f"{registry.host}/puller/copy:v2"
    code, _, err = await _berth("tag", "--root", root, f"{registry.host}/puller/source:v1", target)
    assert code == 0, err

    issuer.requests.clear()
    code, out, err = await _berth("push", "--root", root, *user, target, env=env)
    assert code == 0, err
    for layer in image.layers:
        assert f"{layer.digest[7:19]}: Mounted from puller/source" in out
    assert out.endswith(f"v2: digest: {image.digest} size: {len(image.manifest)}\n")
    assert sorted({r["scope"] for r in issuer.requests}) == [
        "repository:puller/copy:pull,push",
        "repository:puller/copy:pull,push repository:puller/source:pull",
    ]
    assert len(issuer.requests) == 2  # each token cached for its scopes

    # no read access to either source: Distribution refuses the mount (401); the layers go up
    issuer.denied.update({"puller/source", "puller/copy"})
    third = f"{registry.host}/puller/third:v3"
    code, _, err = await _berth("tag", "--root", root, target, third)
    assert code == 0, err
    code, out, err = await _berth("push", "--root", root, *user, third, env=env)
    assert code == 0, err
    for layer in image.layers:
        assert f"{layer.digest[7:19]}: Pushed" in out
    assert out.endswith(f"v3: digest: {image.digest} size: {len(image.manifest)}\n")
