"""Repository names, tags and references, checked by the distribution spec's grammar."""

from __future__ import annotations

import functools
import re
from typing import Final

from blobstore import Digest, InvalidDigest
from registry.errcode import DIGEST_INVALID, NAME_INVALID, TAG_INVALID, RegistryError

_COMPONENT: Final = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN: Final = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_PATTERN: Final = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
NAME_MAX_LENGTH: Final = 255


def is_repository_name(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and NAME_PATTERN.fullmatch(name) is not None


def is_tag(tag: str) -> bool:
    return TAG_PATTERN.fullmatch(tag) is not None


def check_name(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise NAME_INVALID."""
    if not is_repository_name(name):
        raise RegistryError(NAME_INVALID, detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(TAG_INVALID, detail={"tag": tag})
    return tag


def parse_digest(value: str) -> Digest:
    """Parse a digest from a URL or query; raise DIGEST_INVALID (400) when malformed."""
    try:
        return _parsed(value)
    except InvalidDigest as exc:
        raise RegistryError(
            DIGEST_INVALID, detail={"digest": value, "reason": exc.reason}
        ) from None


def parse_reference(value: str) -> Digest | str:
    """A manifest reference: a digest when it has a colon, otherwise a tag."""
    if ":" in value:
        return parse_digest(value)
    return check_tag(value)


# A blob HEAD or GET parses the digest of its URL, and a pull asks for the same few digests
# over and over: a digest parsed once (Digest is immutable) costs a dict lookup the next time.
# A malformed one raises, and is not remembered.
_parsed: Final = functools.lru_cache(maxsize=4096)(Digest.parse)
