"""A sha256/sha512 hasher whose state can be saved as bytes and resumed in another process.

hashlib cannot serialise a hasher, so an upload continued on another replica would have to read
back everything written so far to check its digest. OpenSSL 3's libcrypto still exports the
low-level SHA256_Init/Update/Final and SHA512_* functions (deprecated, present): their context
is a plain struct of fixed size, saved and restored byte for byte. When libcrypto or those
functions are missing, `ResumableHash.new` returns None and callers hash the content again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

# sizeof(SHA256_CTX): h[8], Nl, Nh, data[16] (32-bit words), num, md_len; SHA512_CTX likewise
# with 64-bit words and a 128-byte block.
_CONTEXT_SIZE: Final = {"sha256": 4 * 8 + 4 + 4 + 64 + 4 + 4, "sha512": 8 * 8 + 8 + 8 + 128 + 4 + 4}
_DIGEST_SIZE: Final = {"sha256": 32, "sha512": 64}
_PREFIX: Final = {"sha256": "SHA256", "sha512": "SHA512"}


@dataclass(frozen=True, slots=True)
class _Functions:
    init: Callable[..., Any]
    update: Callable[..., Any]
    final: Callable[..., Any]


def _load() -> dict[str, _Functions]:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return {}
    try:
        lib = ctypes.CDLL(name)  # CDLL releases the GIL during each call
    except OSError:
        return {}
    found: dict[str, _Functions] = {}
    for algorithm, prefix in _PREFIX.items():
        try:
            init, update, final = (
                getattr(lib, f"{prefix}_{op}") for op in ("Init", "Update", "Final")
            )
        except AttributeError:
            continue
        init.argtypes = [ctypes.c_void_p]
        update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        for fn in (init, update, final):
            fn.restype = ctypes.c_int
        found[algorithm] = _Functions(init, update, final)
    return found


_FUNCTIONS: Final = _load()


class ResumableHash:
    """A hasher like hashlib's (`update`, `hexdigest`, `name`) whose `state()` bytes can be
    handed to `resume()` in any process on a machine with the same libcrypto layout."""

    def __init__(self, algorithm: str, context: ctypes.Array[ctypes.c_char]) -> None:
        self.name = algorithm
        self._fns = _FUNCTIONS[algorithm]
        self._ctx = context

    @classmethod
    def new(cls, algorithm: str = "sha256") -> ResumableHash | None:
        """A fresh hasher, or None when this algorithm cannot be resumed here."""
        if algorithm not in _FUNCTIONS:
            return None
        context = ctypes.create_string_buffer(_CONTEXT_SIZE[algorithm])
        if _FUNCTIONS[algorithm].init(context) != 1:
            return None
        return cls(algorithm, context)

    @classmethod
    def resume(cls, algorithm: str, state: bytes) -> ResumableHash | None:
        """The hasher whose `state()` was `state`; None when it cannot be resumed here."""
        if algorithm not in _FUNCTIONS or len(state) != _CONTEXT_SIZE[algorithm]:
            return None
        return cls(algorithm, ctypes.create_string_buffer(state, len(state)))

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return
        if view.readonly:
            buffer = ctypes.c_char_p(view.tobytes() if not isinstance(data, bytes) else data)
            self._fns.update(self._ctx, buffer, view.nbytes)
        else:
            array = (ctypes.c_char * view.nbytes).from_buffer(view)
            self._fns.update(self._ctx, array, view.nbytes)

    def state(self) -> bytes:
        return self._ctx.raw

    def digest(self) -> bytes:
        # Final destroys the context, so finish a copy and keep this one usable.
        copy = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(_DIGEST_SIZE[self.name])
        self._fns.final(out, copy)
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()
