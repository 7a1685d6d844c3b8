"""A registry on 127.0.0.1 that speaks only HTTPS (self-signed certificate) is pulled from
without flags, as Docker does for its default insecure registries: HTTPS first, without
certificate checks, and plain HTTP only when HTTPS fails (every other test covers that)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.puller.conftest import Berth
from tests.support import images as img
from tests.support.server import free_port
from tests.support.tls import self_signed

pytestmark = pytest.mark.e2e


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """CNCF Distribution serving HTTPS only on 127.0.0.1; yields (host, certificate)."""
    cert, key = self_signed(tmp_path)
    host = f"127.0.0.1:{free_port()}"
    config = tmp_path / "tls.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {tmp_path / 'data'}}}\n"
        f"http:\n  addr: {host}\n  tls:\n    certificate: {cert}\n    key: {key}\n"
    )
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    log = open(tmp_path / "tls.log", "wb")  # noqa: SIM115  (closed below)
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"https://{host}/v2/", timeout=2, context=context)
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, (tmp_path / "tls.log").read_text()
                time.sleep(0.1)
        yield host, cert
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_https_only_loopback_registry(
    tls_registry: tuple[str, Path], berth: Berth, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, cert = tls_registry
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # for the pushing helper only
    image = img.build_image([img.build_layer([img.file("over-tls", b"encrypted")])])
    img.push_image(f"https://{host}", "puller/tls", "v1", image)
    reference = f"{host}/puller/tls:v1"
    monkeypatch.delenv("SSL_CERT_FILE")  # berth pull trusts nothing extra

    pulled = berth("pull", reference)
    assert f"Digest: {image.digest}" in pulled.stdout

    forced = berth("pull", "--plain-http", reference, check=False)
    assert forced.returncode == 1
    assert forced.stderr.startswith(
        f"berth pull: GET http://{host}/v2/puller/tls/manifests/v1: 400"
    )
