"""blobstore.hashstate: a hasher saved as bytes and resumed elsewhere gives hashlib's digest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from blobstore.hashstate import ResumableHash


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_resumed_state_gives_hashlibs_digest(algorithm: str) -> None:
    data = os.urandom(300_001)
    hasher = ResumableHash.new(algorithm)
    assert hasher is not None
    hasher.update(data[:12_345])
    resumed = ResumableHash.resume(algorithm, hasher.state())
    assert resumed is not None
    resumed.update(memoryview(data)[12_345:200_000])
    resumed.update(bytearray(data[200_000:]))
    assert resumed.hexdigest() == hashlib.new(algorithm, data).hexdigest()
    assert hasher.hexdigest() == hashlib.new(algorithm, data[:12_345]).hexdigest()


def test_state_resumes_in_another_process() -> None:
    hasher = ResumableHash.new()
    assert hasher is not None
    hasher.update(b"first half, ")
    script = (
        "import sys; from blobstore.hashstate import ResumableHash;"
        "h = ResumableHash.resume('sha256', bytes.fromhex(sys.argv[1]));"
        "h.update(b'second half'); print(h.hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, hasher.state().hex()],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == hashlib.sha256(b"first half, second half").hexdigest()


def test_digest_does_not_end_the_hasher() -> None:
    hasher = ResumableHash.new()
    assert hasher is not None
    hasher.update(b"a")
    assert hasher.hexdigest() == hashlib.sha256(b"a").hexdigest()
    hasher.update(b"b")
    assert hasher.hexdigest() == hashlib.sha256(b"ab").hexdigest()


def test_a_state_of_the_wrong_size_is_refused() -> None:
    assert ResumableHash.resume("sha256", b"short") is None
    assert ResumableHash.resume("md5", b"") is None
    assert ResumableHash.new("md5") is None
