"""HTTPS: `berth serve` with http.tls and auth on, a private CA that dockerd is told to trust
through /etc/docker/certs.d/HOST:PORT/ca.crt, and `berth pull` trusting it via SSL_CERT_FILE.

The registry is addressed by this machine's non-loopback address: dockerd treats 127.0.0.0/8
as an insecure registry and would skip certificate checks there, proving nothing."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.auth.e2e_support import IMAGE_PREFIX, USERS, docker_for, write_config
from tests.support.clients import run
from tests.support.server import berth_executable, free_port

pytestmark = pytest.mark.e2e

CERTS_D = Path("/etc/docker/certs.d")


def host_address() -> str:
    out = run(["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout.split()
    addresses = [out[i + 1].split("/")[0] for i, word in enumerate(out) if word == "inet"]
    assert addresses, "this test needs a non-loopback IPv4 address"
    return addresses[0]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, ip: str) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for `ip` and 127.0.0.1, signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Berth test CA"))
        .issuer_name(_name("Berth test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(ip))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address(ip)),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`berth serve` over HTTPS with auth; yields (HOST:PORT, CA certificate)."""
    ip = host_address()
    ca, cert, key = make_certificates(tmp_path, ip)
    config = write_config(tmp_path, {"http": {"tls": {"certificate": str(cert), "key": str(key)}}})
    port = free_port()
    log_path = tmp_path / "berth-tls.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                berth_executable(),
                "serve",
                "--config",
                str(config),
                "--data-dir",
                str(tmp_path / "data"),
                "--addr",
                f"0.0.0.0:{port}",
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    host = f"{ip}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                resp = requests.get(f"https://{host}/v2/", verify=str(ca), timeout=2)
                assert resp.status_code == 401
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield host, ca
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def image(tmp_path: Path) -> Iterator[str]:
    context = tmp_path / "ctx"
    context.mkdir()
    shutil.copy2("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(
        f"FROM scratch\nCOPY busybox /bin/busybox\nLABEL marker={uuid.uuid4().hex}\n"
    )
    tag = f"{IMAGE_PREFIX}/tls:{uuid.uuid4().hex[:8]}"
    run(["docker", "build", "-q", "-t", tag, str(context)], timeout=300)
    yield tag
    run(["docker", "rmi", "-f", tag], check=False)


def test_docker_push_over_tls_with_a_trusted_ca(
    tls_registry: tuple[str, Path], image: str, tmp_path: Path
) -> None:
    host, ca = tls_registry
    certs_dir = CERTS_D / host
    for docker in docker_for(tmp_path):
        untrusted = docker.login(host, "alice", USERS["alice"], check=False)
        assert untrusted.returncode != 0
        assert "certificate" in untrusted.stderr  # x509: unknown authority
        certs_dir.mkdir(parents=True)
        try:
            shutil.copy(ca, certs_dir / "ca.crt")
            assert "Login Succeeded" in docker.login(host, "alice", USERS["alice"]).stdout
            ref = docker.tag(image, f"{host}/authe2e/tls/app:1")
            assert "digest: sha256:" in docker("push", ref).stdout
            docker("rmi", ref)
            docker.tags.remove(ref)
            assert "Downloaded newer image" in docker("pull", ref).stdout
            docker.tags.append(ref)

            # berth pull trusts the same CA through OpenSSL's SSL_CERT_FILE, and reads the
            # credentials docker login stored.
            root = tmp_path / "berth-root"
            refused = run(
                [berth_executable(), "pull", "--root", str(root), ref], env=docker.env, check=False
            )
            assert refused.returncode != 0
            assert "certificate" in refused.stderr.lower()
            pulled = run(
                [berth_executable(), "pull", "--root", str(root), ref],
                env={**docker.env, "SSL_CERT_FILE": str(ca)},
            )
            assert "Digest: sha256:" in pulled.stdout
        finally:
            shutil.rmtree(certs_dir)
