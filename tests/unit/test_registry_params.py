"""Range, Content-Range and pagination parsing (hypothesis where it pays)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errcode import RegistryError
from registry.http.params import next_link, pagination, parse_content_range, parse_range
from registry.service import ChunkRange, range_header

sizes = st.integers(min_value=0, max_value=10**12)


@given(size=sizes, first=st.integers(0, 10**12), last=st.integers(0, 10**12))
def test_first_last_range(size: int, first: int, last: int) -> None:
    header = f"bytes={first}-{last}"
    if last < first:
        assert parse_range(header, size) is None
    elif first >= size:
        with pytest.raises(ValueError, match="starts past"):
            parse_range(header, size)
    else:
        assert parse_range(header, size) == (first, min(last, size - 1) + 1)


@given(size=sizes, first=st.integers(0, 10**12))
def test_open_ended_range(size: int, first: int) -> None:
    if first >= size:
        with pytest.raises(ValueError, match="starts past"):
            parse_range(f"bytes={first}-", size)
    else:
        assert parse_range(f"bytes={first}-", size) == (first, size)


@given(size=sizes, suffix=st.integers(0, 10**12))
def test_suffix_range(size: int, suffix: int) -> None:
    if suffix == 0 or size == 0:
        with pytest.raises(ValueError, match="suffix"):
            parse_range(f"bytes=-{suffix}", size)
    else:
        start, stop = parse_range(f"bytes=-{suffix}", size) or (None, None)
        assert stop == size
        assert start == max(size - suffix, 0)


@given(size=sizes, header=st.text(max_size=30))
def test_any_header_parses_to_a_valid_span_or_is_ignored_or_416(size: int, header: str) -> None:
    try:
        span = parse_range(header, size)
    except ValueError:
        return
    if span is not None:
        start, stop = span
        assert 0 <= start < stop <= size


@pytest.mark.parametrize(
    "header", ["items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes=x-1", "bytes 0-1"]
)
def test_ignored_ranges(header: str) -> None:
    assert parse_range(header, 100) is None


@given(start=st.integers(0, 10**12), length=st.integers(1, 10**9))
def test_content_range_round_trip(start: int, length: int) -> None:
    end = start + length - 1
    for text in (f"{start}-{end}", f"bytes {start}-{end}", f"bytes={start}-{end}/*"):
        parsed = parse_content_range(text)
        assert parsed == ChunkRange(start, end)
        assert parsed is not None
        assert parsed.length == length


@pytest.mark.parametrize("text", ["5-4", "a-b", "-1", "1-", "0-1-2", "٣-٤"])
def test_malformed_content_range(text: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_content_range(text)
    assert caught.value.code.code == "BLOB_UPLOAD_INVALID"


def test_absent_content_range() -> None:
    assert parse_content_range(None) is None
    assert parse_content_range("  ") is None


@given(size=st.integers(0, 10**12))
def test_range_header_of_an_upload(size: int) -> None:
    assert range_header(size) == f"0-{max(size - 1, 0)}"


def test_pagination() -> None:
    assert pagination({}) == (None, None)
    assert pagination({"n": "10", "last": "b"}) == (10, "b")
    assert pagination({"n": "0"}) == (0, None)
    for bad in ("-1", "x", "1.5", "²", "9999999999"):
        with pytest.raises(RegistryError):
            pagination({"n": bad})


def test_next_link_escapes() -> None:
    link = next_link("/v2/a/b/tags/list", 2, "v1+x")
    assert link == '</v2/a/b/tags/list?n=2&last=v1%2Bx>; rel="next"'
