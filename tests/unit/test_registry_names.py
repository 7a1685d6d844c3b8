"""Repository names and tags against the distribution spec's grammar (hypothesis)."""

from __future__ import annotations

import re
from unittest.mock import ANY

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errcode import RegistryError
from registry.names import check_name, is_repository_name, is_tag, parse_digest, parse_reference

SPEC_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
separator = st.sampled_from([".", "_", "__", "-", "--", "---"])
component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    alnum,
    st.lists(st.tuples(separator, alnum), max_size=3),
)
valid_names = (
    st.lists(component, min_size=1, max_size=5).map("/".join).filter(lambda n: len(n) <= 255)
)


@given(valid_names)
def test_generated_spec_names_are_accepted(name: str) -> None:
    assert is_repository_name(name)
    assert check_name(name) == name


@given(st.text(max_size=40))
def test_any_text_is_accepted_exactly_when_the_spec_regex_matches(name: str) -> None:
    expected = SPEC_NAME.fullmatch(name) is not None and len(name) <= 255
    assert is_repository_name(name) == expected


@given(st.text(max_size=140))
def test_tags_follow_the_spec_regex(tag: str) -> None:
    assert is_tag(tag) == (SPEC_TAG.fullmatch(tag) is not None)


@pytest.mark.parametrize(
    "name",
    ["..", "a/..", "../a", "a/../b", "a/./b", ".", "/a", "a/", "a//b", "A", "a\n", "a b", "a\\b"],
)
def test_traversal_and_malformed_names_are_name_invalid(name: str) -> None:
    with pytest.raises(RegistryError) as caught:
        check_name(name)
    assert caught.value.code.code == "NAME_INVALID"
    assert caught.value.code.status == 400


def test_name_length_limit() -> None:
    assert is_repository_name("a" * 255)
    assert not is_repository_name("a" * 256)


def test_reference_is_digest_or_tag() -> None:
    digest = "sha256:" + "a" * 64
    assert str(parse_reference(digest)) == digest
    assert parse_reference("v1.0") == "v1.0"
    with pytest.raises(RegistryError) as caught:
        parse_reference("sha256:short")
    assert caught.value.code.code == "DIGEST_INVALID"
    with pytest.raises(RegistryError):
        parse_reference("-bad")


def test_a_digest_asked_again_parses_the_same_and_a_malformed_one_is_refused_every_time() -> None:
    digest = "sha256:" + "b" * 64
    first, again = parse_digest(digest), parse_digest(digest)
    assert first == again
    assert str(again) == digest
    assert (again.algorithm, again.hex) == ("sha256", "b" * 64)
    for _ in range(2):  # a refusal is not remembered as a digest
        with pytest.raises(RegistryError) as caught:
            parse_digest("sha256:" + "B" * 64)
        assert caught.value.code.code == "DIGEST_INVALID"
        assert caught.value.detail == {"digest": "sha256:" + "B" * 64, "reason": ANY}
