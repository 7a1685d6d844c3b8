"""HTTPS: `berth serve` with http.tls and auth on, a private CA that dockerd is told to trust
through /etc/docker/certs.d/HOST:PORT/ca.crt, and `berth pull` trusting it via SSL_CERT_FILE.

The registry runs on a test host of its own: a network namespace this module creates, joined
to the root namespace by a veth pair with a /30 from the benchmarking range 198.18.0.0/15.
dockerd (root namespace) reaches it over the veth; dockerd treats 127.0.0.0/8 as an insecure
registry and would skip certificate checks there, so loopback would prove nothing. The
namespace, the veth pair, the server and the certs.d directory are removed afterwards, also
when a test fails."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
BENCHMARK_RANGE = ipaddress.IPv4Network("198.18.0.0/15")


@dataclass(frozen=True)
class NetnsHost:
    """A network namespace joined to the root namespace by a veth pair."""

    netns: str
    host_link: str
    host_address: str  # the root namespace's end
    address: str  # the test host's end


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network with an address or a route in the root namespace."""
    networks = []
    for line in run(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines():
        words = line.split()
        networks.append(ipaddress.ip_interface(words[words.index("inet") + 1]).network)
    for line in run(["ip", "-4", "-o", "route", "show", "table", "all"]).stdout.splitlines():
        for word in line.split()[:2]:  # "[TYPE] PREFIX ..."
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.ip_network(word))
                break
    return [n for n in networks if isinstance(n, ipaddress.IPv4Network)]


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of 198.18.0.0/15 that nothing on this machine uses: from 198.18.7.0/30 on,
    offset by the pid so that concurrent runs start apart."""
    subnets = list(BENCHMARK_RANGE.subnets(new_prefix=30))
    in_use = [n for n in _networks_in_use() if n.prefixlen > 0]
    first = (448 + os.getpid()) % len(subnets)  # subnets[448] is 198.18.7.0/30
    for i in range(len(subnets)):
        subnet = subnets[(first + i) % len(subnets)]
        if not any(subnet.overlaps(n) for n in in_use):
            return subnet
    raise AssertionError("no free /30 left in 198.18.0.0/15")


@contextlib.contextmanager
def netns_host(tag: str) -> Iterator[NetnsHost]:
    """Create namespace berthtls-TAG and veth pair btlsTAGh/btlsTAGp (link names: at most 15
    bytes); delete both on exit, whatever happened."""
    subnet = _free_subnet()
    host_ip, peer_ip = (str(a) for a in subnet.hosts())
    host = NetnsHost(f"berthtls-{tag}", f"btls{tag}h", host_ip, peer_ip)
    peer_link = f"btls{tag}p"
    with contextlib.ExitStack() as cleanup:
        run(["ip", "netns", "add", host.netns])
        cleanup.callback(run, ["ip", "netns", "del", host.netns], check=False)
        run(["ip", "link", "add", host.host_link, "type", "veth", "peer", "name", peer_link])
        # Deleting one end deletes the pair; explicit, because namespace teardown is async.
        cleanup.callback(run, ["ip", "link", "del", host.host_link], check=False)
        run(["ip", "link", "set", peer_link, "netns", host.netns])
        run(["ip", "addr", "add", f"{host_ip}/30", "dev", host.host_link])
        run(["ip", "link", "set", host.host_link, "up"])
        run(["ip", "-n", host.netns, "addr", "add", f"{peer_ip}/30", "dev", peer_link])
        run(["ip", "-n", host.netns, "link", "set", peer_link, "up"])
        run(["ip", "-n", host.netns, "link", "set", "lo", "up"])
        yield host


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, ip: str) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for `ip` (its only SAN), signed by it."""
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
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
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


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it may have workers); SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _remove_certs_dir(certs_dir: Path, made_certs_d: bool) -> None:
    shutil.rmtree(certs_dir, ignore_errors=True)
    if made_certs_d:
        with contextlib.suppress(OSError):  # another test may be using it: leave it then
            CERTS_D.rmdir()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`berth serve` over HTTPS with auth inside its own network namespace; yields
    (HOST:PORT, CA certificate). Tests create CERTS_D/HOST:PORT; teardown removes it."""
    base = tmp_path_factory.mktemp("tls")
    with contextlib.ExitStack() as cleanup:
        host = cleanup.enter_context(netns_host(str(os.getpid())))
        ca, cert, key = make_certificates(base, host.address)
        config = write_config(base, {"http": {"tls": {"certificate": str(cert), "key": str(key)}}})
        port = free_port()  # any port is free in the new namespace; this one is ephemeral
        address = f"{host.address}:{port}"
        cleanup.callback(_remove_certs_dir, CERTS_D / address, not CERTS_D.exists())
        log_path = base / "berth-tls.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *("ip", "netns", "exec", host.netns),
                    berth_executable(),
                    "serve",
                    "--config",
                    str(config),
                    "--data-dir",
                    str(base / "data"),
                    "--addr",
                    address,
                    "--workers",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        cleanup.callback(_stop, process)
        # Polled from the root namespace, over the veth, as dockerd will connect.
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                resp = requests.get(f"https://{address}/v2/", verify=str(ca), timeout=2)
                assert resp.status_code == 401
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield address, ca


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
