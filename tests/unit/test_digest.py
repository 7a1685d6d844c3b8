"""Property tests of blobstore.Digest: what parses, what round-trips, what is rejected."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobstore import SUPPORTED_ALGORITHMS, Digest, InvalidDigest, is_digest

LENGTHS = {"sha256": 64, "sha512": 128}
HEX = "0123456789abcdef"
# The OCI image spec's digest grammar; anything outside it must be rejected.
GRAMMAR = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def hex_of(length: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=length, max_size=length)


valid_digests = st.sampled_from(sorted(LENGTHS)).flatmap(
    lambda alg: hex_of(LENGTHS[alg]).map(lambda h: f"{alg}:{h}")
)


def test_supported_algorithms() -> None:
    assert sorted(SUPPORTED_ALGORITHMS) == ["sha256", "sha512"]


@given(valid_digests)
def test_valid_digests_round_trip(text: str) -> None:
    digest = Digest.parse(text)
    assert str(digest) == text
    algorithm, _, encoded = text.partition(":")
    assert (digest.algorithm, digest.hex) == (algorithm, encoded)
    assert Digest.parse(str(digest)) == digest
    assert Digest(algorithm, encoded) == digest
    assert hash(Digest(algorithm, encoded)) == hash(digest)
    assert is_digest(text)


@given(st.binary(max_size=4096), st.sampled_from(["sha256", "sha512"]))
def test_digest_of_content_matches_hashlib(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert str(digest) == f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    hasher = digest.hasher()
    hasher.update(data)
    assert Digest.from_hasher(hasher) == digest


@given(
    st.sampled_from(sorted(LENGTHS)).flatmap(
        lambda alg: (
            st.integers(0, 200)
            .filter(lambda n: n != LENGTHS[alg])
            .flatmap(lambda n: hex_of(n).map(lambda h: f"{alg}:{h}"))
        )
    )
)
def test_wrong_length_is_rejected(text: str) -> None:
    _assert_rejected(text)


@given(
    valid_digests.flatmap(
        lambda text: st.integers(text.index(":") + 1, len(text) - 1).map(
            lambda i: text[:i] + text[i].upper() + text[i + 1 :]
        )
    ).filter(lambda t: t != t.lower())
)
def test_uppercase_hex_is_rejected(text: str) -> None:
    _assert_rejected(text)


@given(
    st.from_regex(r"[a-z0-9]+([.+_-][a-z0-9]+)*", fullmatch=True).filter(
        lambda a: a not in LENGTHS
    ),
    st.from_regex(r"[a-zA-Z0-9=_-]+", fullmatch=True),
)
def test_unknown_algorithms_are_rejected(algorithm: str, encoded: str) -> None:
    _assert_rejected(f"{algorithm}:{encoded}")


@pytest.mark.parametrize(
    "text",
    [
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha384:" + "a" * 96,
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "SHA256:" + "a" * 64,
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "sha256:" + "g" * 64,
        "sha256:" + "a" * 63 + "=",
        "sha256 :" + "a" * 64,
        " sha256:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
        "sha256:" + "a" * 64 + ":",
        "sha256:",
        ":" + "a" * 64,
        "sha256",
        "",
        "sha256:../../" + "a" * 58,
        "sha256::" + "a" * 64,
    ],
)
def test_malformed_examples_are_rejected(text: str) -> None:
    _assert_rejected(text)


@given(st.text(max_size=200) | valid_digests.map(lambda d: d + "\n"))
def test_arbitrary_text_parses_only_as_a_supported_digest(text: str) -> None:
    if not is_digest(text):
        _assert_rejected(text)
        return
    digest = Digest.parse(text)
    assert GRAMMAR.fullmatch(text)
    assert str(digest) == text
    assert len(digest.hex) == LENGTHS[digest.algorithm]


@given(st.sampled_from(sorted(LENGTHS)), st.text(max_size=130))
def test_constructor_validates_like_parse(algorithm: str, encoded: str) -> None:
    text = f"{algorithm}:{encoded}"
    parses = is_digest(text)
    try:
        Digest(algorithm, encoded)
    except InvalidDigest:
        assert not parses
    else:
        assert parses


def test_error_names_the_value_and_reason() -> None:
    with pytest.raises(InvalidDigest, match="md5") as caught:
        Digest.parse("md5:d41d8cd98f00b204e9800998ecf8427e")
    assert caught.value.value == "md5:d41d8cd98f00b204e9800998ecf8427e"
    assert "unsupported algorithm" in caught.value.reason


def test_ordering_is_total_and_by_text() -> None:
    a, b = Digest("sha256", "0" * 64), Digest("sha256", "f" * 64)
    assert sorted([b, a]) == [a, b]


def _assert_rejected(text: str) -> None:
    with pytest.raises(InvalidDigest) as caught:
        Digest.parse(text)
    assert caught.value.value == text
    assert isinstance(caught.value, ValueError)
    assert not is_digest(text)
