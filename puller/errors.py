"""Domain errors of the puller.

PullerError
├── InvalidPlatform        a --platform value that is not os/arch[/variant]
├── UnsupportedManifest    schema1, unknown media type, or no matching platform
├── ImageNotFound          no local image record for a reference
├── ContentMissing         a push needs a blob the local content store no longer holds
├── LayerRejected          a layer tries to escape its snapshot, or is malformed
│   ├── LayerTooLarge      a layer unpacks past the configured size cap
│   └── DecompressionBomb  a layer inflates more than the allowed ratio over its compressed size
└── DiffIDMismatch         the uncompressed layer does not hash to the config's diff_id

The registry client's own errors (`InvalidReference`, `RegistryError`, `AuthenticationFailed`,
`NotFound`: registry_client.errors) are raised through the puller as they are; a caller catches
`PullerError` and `registry_client.errors.ClientError`.

Every message names the reference, digest or path concerned, so the CLI prints it as is.
"""

from __future__ import annotations

from registry_client.errors import AuthenticationFailed, InvalidReference, NotFound, RegistryError

__all__ = [
    "AuthenticationFailed",
    "ContentMissing",
    "DecompressionBomb",
    "DiffIDMismatch",
    "ImageNotFound",
    "InvalidPlatform",
    "InvalidReference",
    "LayerRejected",
    "LayerTooLarge",
    "NotFound",
    "PullerError",
    "RegistryError",
    "UnsupportedManifest",
]


class PullerError(Exception):
    """Base of every error the puller raises on purpose."""


class InvalidPlatform(PullerError, ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"invalid platform {value!r}: expected os/arch[/variant]")
        self.value = value


class UnsupportedManifest(PullerError):
    pass


class ImageNotFound(PullerError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no local image {reference}")
        self.reference = reference


class ContentMissing(PullerError):
    def __init__(self, digest: object) -> None:
        super().__init__(
            f"blob {digest} is not in the local content store (deleted by hand?): "
            "pull the image again"
        )


class LayerRejected(PullerError):
    """A layer that would write outside its snapshot, or that cannot be applied."""


class LayerTooLarge(LayerRejected):
    def __init__(self, digest: object, limit: int) -> None:
        super().__init__(f"layer {digest} unpacks to more than {limit} bytes (size cap)")
        self.limit = limit


class DecompressionBomb(LayerRejected):
    def __init__(self, digest: object, ratio: float, unpacked: int, compressed: int) -> None:
        super().__init__(
            f"layer {digest} inflates more than {ratio:g}x ({unpacked} bytes from the first "
            f"{compressed} compressed): refused as a decompression bomb (see --max-expansion)"
        )
        self.ratio = ratio


class DiffIDMismatch(PullerError):
    def __init__(self, expected: object, actual: object) -> None:
        super().__init__(f"uncompressed layer is {actual}, but the image config says {expected}")
        self.expected = expected
        self.actual = actual
