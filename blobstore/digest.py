"""Content digests: `algorithm:encoded`, as the OCI image spec defines them.

Only sha256 and sha512 are accepted; anything else is an `InvalidDigest`, so a digest that
parsed is always one the store can verify.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from blobstore.errors import InvalidDigest

if TYPE_CHECKING:
    import hashlib

_GRAMMAR: Final = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_HEX_LENGTH: Final = {"sha256": 64, "sha512": 128}
_LOWER_HEX: Final = re.compile(r"[a-f0-9]+")

SUPPORTED_ALGORITHMS: Final = tuple(_HEX_LENGTH)


class Digest:
    """A validated digest. `str(d)` gives the canonical `sha256:<hex>` form.

    Immutable; equal, hashed and ordered as the pair (algorithm, hex), as the frozen,
    ordered dataclass it was. Not a dataclass: `berth run` does not load dataclasses and
    inspect (~3.5 ms)."""

    __slots__ = ("algorithm", "hex")

    def __init__(self, algorithm: str, hex: str) -> None:
        self.algorithm: Final = algorithm
        self.hex: Final = hex
        length = _HEX_LENGTH.get(self.algorithm)
        if length is None:
            raise InvalidDigest(str(self), f"unsupported algorithm {self.algorithm!r}")
        if len(self.hex) != length or not _LOWER_HEX.fullmatch(self.hex):
            raise InvalidDigest(
                str(self), f"{self.algorithm} needs {length} lowercase hex characters"
            )

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse `algorithm:encoded`; raises InvalidDigest for anything else."""
        match = _GRAMMAR.fullmatch(value)
        if match is None:
            raise InvalidDigest(value, "not of the form algorithm:encoded")
        return cls(match.group(1), match.group(2))

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of `data`, which is small enough to be in memory (a manifest)."""
        import hashlib  # here: loading OpenSSL costs `berth run`, `ps` and `images` ~3 ms

        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def from_hasher(cls, hasher: hashlib._Hash) -> Digest:
        return cls(hasher.name, hasher.hexdigest())

    def hasher(self) -> hashlib._Hash:
        """A fresh hasher of this digest's algorithm."""
        import hashlib

        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def __repr__(self) -> str:
        return f"Digest(algorithm={self.algorithm!r}, hex={self.hex!r})"

    def __hash__(self) -> int:
        return hash((self.algorithm, self.hex))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return self.algorithm == other.algorithm and self.hex == other.hex

    def __lt__(self, other: Digest) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.algorithm, self.hex) < (other.algorithm, other.hex)

    def __le__(self, other: Digest) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.algorithm, self.hex) <= (other.algorithm, other.hex)

    def __gt__(self, other: Digest) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.algorithm, self.hex) > (other.algorithm, other.hex)

    def __ge__(self, other: Digest) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.algorithm, self.hex) >= (other.algorithm, other.hex)


def is_digest(value: str) -> bool:
    """True when `value` parses as a supported digest (a reference that is a digest, not a tag)."""
    try:
        Digest.parse(value)
    except InvalidDigest:
        return False
    return True
